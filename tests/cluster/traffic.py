"""Traffic for fault tests: one caller triggering on a fixed schedule, and what each subscriber got.

The caller is a backend as it really behaves: it sends event n+1 once event n was answered (so the
answers define the order a subscriber must see), on a fixed schedule that starts before the fault
and never waits for the servers to report a health state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from tests.support.api_client import encode_body, pusher_query
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import RunningServer

#: A trigger may wait out a Redis pause; the caller gives it this long before counting it failed.
TRIGGER_TIMEOUT = 15.0


@dataclass
class Caller:
    """Triggers `tick` events numbered 0, 1, ... on `channel`, through `nodes` in turn."""

    nodes: Sequence[RunningServer]
    channel: str
    every: float = 0.05
    accepted: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    slowest: float = 0.0
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=TRIGGER_TIMEOUT) as http:
            started = time.monotonic()
            n = 0
            while not self._stop.is_set():
                node = self.nodes[n % len(self.nodes)]
                sent = time.monotonic()
                try:
                    response = await trigger_tick(http, node, self.channel, n)
                    if response.status_code == 200:
                        self.accepted.append(n)
                    else:
                        self.refused.append((n, f"{response.status_code} {response.text}"))
                except httpx.HTTPError as error:
                    self.refused.append((n, repr(error)))
                self.slowest = max(self.slowest, time.monotonic() - sent)
                n += 1
                await asyncio.sleep(max(0.0, started + n * self.every - time.monotonic()))


async def trigger_tick(http: httpx.AsyncClient, node: RunningServer, channel: str, n: int) -> httpx.Response:
    path = f"/apps/{node.app_id}/events"
    body = encode_body({"name": "tick", "channels": [channel], "data": json.dumps({"n": n})})
    query = pusher_query("POST", path, body, {}, node.key, node.secret)
    return await http.post(
        f"{node.http_url}{path}", params=query, content=body, headers={"content-type": "application/json"}
    )


class Inbox:
    """Reads every frame a subscriber gets in the background; keeps the tick numbers in order."""

    def __init__(self, socket: PusherSocket, channel: str) -> None:
        self.socket = socket
        self.channel = channel
        self.ticks: list[int] = []
        self.others: list[dict[str, object]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = json.loads(await self.socket.ws.recv())
                if frame.get("event") == "tick" and frame.get("channel") == self.channel:
                    self.ticks.append(json.loads(frame["data"])["n"])
                else:
                    self.others.append(frame)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def problems(accepted: Sequence[int], got: Sequence[int]) -> list[str]:
    """What is wrong with one subscriber's ticks: accepted events missing, duplicates, inversions."""
    found: list[str] = []
    seen = set(got)
    missing = [n for n in accepted if n not in seen]
    if missing:
        found.append(f"{len(missing)} accepted events missing: {missing[:20]}")
    duplicates = sorted({n for n in got if got.count(n) > 1})
    if duplicates:
        found.append(f"duplicated: {duplicates[:20]}")
    inversions = [(a, b) for a, b in zip(got, got[1:], strict=False) if b < a]
    if inversions:
        found.append(f"{len(inversions)} inversions, first {inversions[:5]}")
    return found


async def settle(inboxes: Sequence[Inbox], accepted: Sequence[int], timeout: float) -> None:
    """Wait until every inbox holds every accepted event, or `timeout` passes."""
    wanted = set(accepted)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(wanted <= set(inbox.ticks) for inbox in inboxes):
            await asyncio.sleep(0.3)  # let any duplicate arrive too
            return
        await asyncio.sleep(0.05)
