"""A real webhook receiver: a small ASGI app under uvicorn on a free port, in the test's own loop.

It records every request (headers, body, the status it answered), answers the statuses queued in
`failures` first and 200 after, and can be stopped and started again on the same port to play a
receiver that is down (connections refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.support.servers import free_port

#: Long enough for a batch window and a retry or two on a busy machine.
WAIT_TIMEOUT = 20.0
ID_HEADER = "x-revurb-webhook-id"


@dataclass
class Delivery:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    body: str
    status: int
    path: str = "/hooks"

    @property
    def payload(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded

    @property
    def ids(self) -> list[str]:
        return self.headers[ID_HEADER].split(",")


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    failures: deque[int] = field(default_factory=deque)
    deliveries: list[Delivery] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = self.failures.popleft() if self.failures else 200
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        self.deliveries.append(Delivery(headers, body.decode(), status, scope["path"]))
        self._arrived.set()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def start(self) -> None:
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    def accepted(self, path: str | None = None) -> list[Delivery]:
        """2xx deliveries (to `path`, if given), the first of each id (a receiver drops the rest)."""
        seen: set[str] = set()
        unique: list[Delivery] = []
        for delivery in self.deliveries:
            if path is not None and delivery.path != path:
                continue
            key = delivery.headers[ID_HEADER]
            if delivery.status == 200 and key not in seen:
                seen.add(key)
                unique.append(delivery)
        return unique

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every accepted event (sent to `path`, if given), in arrival order."""
        return [event for delivery in self.accepted(path) for event in delivery.payload["events"]]

    async def wait_for(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = WAIT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Wait until the accepted events satisfy `done`; returns them."""
        async with asyncio.timeout(timeout):
            while not done(self.events()):
                self._arrived.clear()
                await self._arrived.wait()
        return self.events()

    async def assert_no_more(self, within: float = 0.3) -> None:
        """No request arrives within `within` seconds (a duplicate or a stray event would)."""
        before = len(self.deliveries)
        await asyncio.sleep(within)
        assert self.deliveries[before:] == []

    async def wait_count(self, count: int, timeout: float = WAIT_TIMEOUT) -> list[dict[str, Any]]:
        return await self.wait_for(lambda events: len(events) >= count, timeout)


@contextlib.asynccontextmanager
async def running_receiver(*failures: int) -> AsyncIterator[Receiver]:
    receiver = Receiver(failures=deque(failures))
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
