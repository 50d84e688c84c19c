"""A bystander: an ordinary client subscribed to a channel of its own, and a publisher triggering an
event to it at a steady pace through the HTTP API, both running while a test attacks the server.

Afterwards it says whether every trigger was answered 200 and every event arrived, in order, and
the longest wait it saw (trigger to answer, trigger to delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from tests.support.api_client import pusher_query
from tests.support.pusher_socket import PusherSocket, dumps
from tests.support.servers import RunningServer

#: Time between two triggers.
INTERVAL = 0.02
#: Events the publisher sends at least, however short the attack.
MIN_EVENTS = 10
#: The longest wait a bystander may see and still count as served. The 100 ms the issue asks for is
#: measured in bench/ (a timing bound in a test on a shared machine would fail at random); this
#: bound catches a server that stops serving others while it is attacked (seconds, before the fix).
STALL_LIMIT = 1.0


@dataclass
class Seen:
    sent: dict[int, float] = field(default_factory=dict)
    answered: dict[int, tuple[int, float]] = field(default_factory=dict)
    received: list[int] = field(default_factory=list)
    arrived: dict[int, float] = field(default_factory=dict)

    def longest_answer(self) -> float:
        return max((at - self.sent[i] for i, (_, at) in self.answered.items()), default=0.0)

    def longest_delivery(self) -> float:
        return max((at - self.sent[i] for i, at in self.arrived.items()), default=0.0)


class Bystander:
    """`async with Bystander(server) as seen:` runs it around an attack; `check()` asserts it was served."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.channel = f"bystander-{uuid.uuid4().hex[:10]}"
        self.seen = Seen()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._socket: PusherSocket | None = None
        self._client = httpx.AsyncClient(timeout=10.0)

    async def __aenter__(self) -> Bystander:
        server = self.server
        self._socket = await PusherSocket.connect(server.ws_url(), server.key, server.secret)
        await self._socket.join(self.channel)
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._publish())]
        await asyncio.sleep(INTERVAL * 3)  # a few events before the attack starts
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        while len(self.seen.answered) < MIN_EVENTS and not self._tasks[1].done():
            await asyncio.sleep(INTERVAL)
        self._stop.set()
        publisher = self._tasks[1]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(publisher, 15)
        deadline = time.monotonic() + 5
        while len(self.seen.received) < len(self.seen.sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._socket is not None:
            await self._socket.close()
        await self._client.aclose()

    def check(self) -> None:
        """Every trigger answered 200, every event delivered in order, no wait over `STALL_LIMIT`."""
        seen = self.seen
        count = len(seen.sent)
        assert count >= MIN_EVENTS, f"the publisher sent only {count} events"
        assert {status for status, _ in seen.answered.values()} == {200}
        assert len(seen.answered) == count
        assert seen.received == list(range(count))
        assert seen.longest_answer() < STALL_LIMIT, f"a trigger waited {seen.longest_answer():.3f} s"
        assert seen.longest_delivery() < STALL_LIMIT, f"an event waited {seen.longest_delivery():.3f} s"

    async def _publish(self) -> None:
        server = self.server
        path = f"/apps/{server.app_id}/events"
        index = 0
        while not self._stop.is_set():
            body = dumps({"name": "tick", "channels": [self.channel], "data": str(index)}).encode()
            query = pusher_query("POST", path, body, {}, server.key, server.secret)
            self.seen.sent[index] = time.monotonic()
            response = await self._client.post(
                f"{server.http_url}{path}",
                params=query,
                content=body,
                headers={"content-type": "application/json"},
            )
            self.seen.answered[index] = (response.status_code, time.monotonic())
            index += 1
            await asyncio.sleep(INTERVAL)

    async def _receive(self) -> None:
        assert self._socket is not None
        while True:
            frame = await self._socket.recv_event("tick", timeout=30)
            index = int(frame["data"])
            self.seen.arrived[index] = time.monotonic()
            self.seen.received.append(index)
