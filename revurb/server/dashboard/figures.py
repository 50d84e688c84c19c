"""The overview's figures: once a second, this node's counters turned into rates, kept for 15 minutes.

Nothing here touches the delivery path. The sampler reads the same plain counters as `/metrics`
(`channels/tally.py`, `api/tally.py`, the backend's `bus_stats`) through `snapshot_of`, subtracts
the previous reading and keeps the result in a bounded ring per node. Other nodes' rings are
filled from what they share through Redis (`share.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypedDict

from revurb.server.metrics import AppSnapshot, Snapshot
from revurb.wire.codes import ErrorCode

logger = logging.getLogger("revurb.server.dashboard")

#: Seconds between two samples, and how many are kept (15 minutes).
SAMPLE_SECONDS = 1.0
HISTORY = 900
#: Apps charted per sample at most (the ones with the most connections); the rest only count in
#: the node's totals. Bounds the ring's memory whatever the app provider holds.
MAX_APPS = 64
#: Figures of an app, in this order in each sample.
APP_FIELDS = (
    "connections",
    "messages_in",
    "messages_out",
    "bytes_out",
    "api_requests",
    "api_errors",
    "channels",
    "presence_members",
    "slow_closed",
)
#: Figures of a node as a whole, in this order in each sample.
NODE_FIELDS = ("api_requests", "api_errors", "bus_published", "bus_received", "bus_lag", "bus_queued")
_SLOW = str(int(ErrorCode.OVER_CAPACITY))
_ERROR_STATUS = 400


class Sample(TypedDict):
    """One second of one node: when (epoch seconds), the node's figures and each app's."""

    t: float
    node: list[float]
    apps: dict[str, list[float]]


class NodeFigures:
    """One node as the dashboard shows it: name, bus state and its last 15 minutes."""

    def __init__(self, node_id: str, name: str) -> None:
        self.id = node_id
        self.name = name
        self.samples: deque[Sample] = deque(maxlen=HISTORY)
        self.bus: dict[str, Any] = {}
        #: `time.monotonic()` when this node's figures last changed (remote nodes only).
        self.seen = time.monotonic()

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None


def _app_figures(now: AppSnapshot, before: AppSnapshot | None, seconds: float) -> list[float]:
    def rate(total: int, earlier: int) -> float:
        return round(max(0, total - earlier) / seconds, 2)

    sent = now["sent_local"] + now["sent_remote"]
    sent_bytes = now["bytes_local"] + now["bytes_remote"]
    slow = now["closed"].get(_SLOW, 0)
    if before is None:
        old = {"frames_in": 0, "sent": 0, "bytes": 0, "api": 0, "errors": 0, "slow": 0}
    else:
        old = {
            "frames_in": before["frames_in"],
            "sent": before["sent_local"] + before["sent_remote"],
            "bytes": before["bytes_local"] + before["bytes_remote"],
            "api": before["api_requests"],
            "errors": before["api_errors"],
            "slow": before["closed"].get(_SLOW, 0),
        }
    return [
        now["connections"],
        rate(now["frames_in"], old["frames_in"]),
        rate(sent, old["sent"]),
        rate(sent_bytes, old["bytes"]),
        rate(now["api_requests"], old["api"]),
        rate(now["api_errors"], old["errors"]),
        now["channels"],
        now["presence_members"],
        rate(slow, old["slow"]),
    ]


def _requests(snapshot: Snapshot) -> tuple[int, int]:
    total = errors = 0
    for _, status, n in snapshot["requests"]:
        total += n
        if status >= _ERROR_STATUS:
            errors += n
    return total, errors


def figures(now: Snapshot, before: Snapshot | None, seconds: float, at: float) -> Sample:
    """The rates between two snapshots (`before` None: the first sample, rates of 0)."""
    seconds = max(seconds, 1e-6)
    earlier = before["apps"] if before is not None else {}
    busiest = sorted(now["apps"].items(), key=lambda item: -item[1]["connections"])[:MAX_APPS]
    apps = {app_id: _app_figures(app, earlier.get(app_id), seconds) for app_id, app in busiest}
    requests, errors = _requests(now)
    old_requests, old_errors = _requests(before) if before is not None else (requests, errors)
    bus, old_bus = now["bus"], (before["bus"] if before is not None else now["bus"])
    node = [
        round(max(0, requests - old_requests) / seconds, 2),
        round(max(0, errors - old_errors) / seconds, 2),
        round(max(0, bus["published"] - old_bus["published"]) / seconds, 2),
        round(max(0, bus["received"] - old_bus["received"]) / seconds, 2),
        round(bus["lag_seconds"], 3),
        bus["queued"],
    ]
    return {"t": round(at, 3), "node": node, "apps": apps}


class Sampler:
    """Lifespan part: a sample of this node every second into its `NodeFigures`."""

    def __init__(
        self, own: NodeFigures, source: Callable[[], Snapshot], bus: Callable[[], dict[str, Any]]
    ) -> None:
        self.own = own
        self.source = source
        self.bus = bus
        self._previous: tuple[Snapshot, float] | None = None
        self._task: asyncio.Task[None] | None = None

    def sample(self, now: float | None = None) -> Sample:
        """Take one sample now (the loop calls this every second)."""
        now = time.monotonic() if now is None else now
        snapshot = self.source()
        before, at = self._previous if self._previous is not None else (None, now)
        sample = figures(snapshot, before, now - at if before is not None else SAMPLE_SECONDS, time.time())
        self._previous = (snapshot, now)
        self.own.bus = self.bus()
        self.own.add(sample)
        return sample

    async def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            # On a fixed grid, so a slow second does not shift every later sample.
            next_at = max(next_at + SAMPLE_SECONDS, loop.time())
            await asyncio.sleep(next_at - loop.time())
            try:
                self.sample()
            except Exception:
                logger.exception("dashboard sample failed")
