"""Every node's figures on every node's dashboard: a small summary shared through Redis.

With scaling on, each node writes its newest samples into one Redis hash (`{prefix}:dashboard:nodes`,
a field per node) every `share_interval` seconds and reads everyone else's in the same round trip.
That is the only Redis work the overview does: nothing per message or per socket. A node that stops
sharing is dropped from the view after a few intervals and its field deleted. The summary also
says which apps this node's consoles watch, so the others start sending their entries (`relay.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

from redis.exceptions import RedisError

from revurb.config import ScalingSettings
from revurb.server.dashboard.figures import NodeFigures, Sample
from revurb.wire import frames

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("revurb.server.dashboard")

#: Samples one summary carries at most (a node that fell behind sends its newest).
MAX_SAMPLES = 30
#: Summaries missed before a node is taken off the view, and the shortest time that may take.
STALE_INTERVALS = 4
STALE_MIN_SECONDS = 3.0
#: The hash outlives its last writer by this much, so a cluster that is gone leaves nothing.
KEY_TTL_SECONDS = 120
#: Seconds Redis may take to answer before the share counts as failed.
COMMAND_TIMEOUT = 3.0
FAULTS = (RedisError, OSError)


def nodes_key(scaling: ScalingSettings) -> str:
    return f"{scaling.channel}:dashboard:nodes"


class Summary(TypedDict):
    """What one node shares each interval."""

    id: str
    name: str
    bus: dict[str, Any]
    samples: list[Sample]
    #: Apps a console on that node watches: the others send it their entries.
    watching: list[str]


def redis_client(scaling: ScalingSettings, name: str) -> Redis:
    """A client built from the same scaling settings as the backend's (Sentinel included), for the
    dashboard's own keys."""
    from revurb.scaling.connect import connect, options_from

    return connect(options_from(scaling), COMMAND_TIMEOUT, name)


class ClusterShare:
    """Lifespan part: shares this node's summary and keeps the other nodes' figures."""

    def __init__(
        self,
        scaling: ScalingSettings,
        interval: float,
        own: NodeFigures,
        watching: Callable[[], list[str]],
    ) -> None:
        self.key = nodes_key(scaling)
        self.interval = interval
        self.own = own
        self.watching = watching
        self.others: dict[str, NodeFigures] = {}
        #: Apps a console on another node watches.
        self.watched_elsewhere: set[str] = set()
        #: Whether the last share reached Redis (the page says so when not).
        self.connected = False
        self._client = redis_client(scaling, f"revurb-dashboard-{own.id}")
        self._shared_until = 0.0
        self._stale = max(STALE_MIN_SECONDS, STALE_INTERVALS * interval)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.connected:
            try:
                await self._client.hdel(self.key, self.own.id)
            except FAULTS as error:
                logger.warning("could not remove this node's dashboard summary: %s", error)
        await self._client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.share()
            except FAULTS as error:
                if self.connected:
                    logger.warning("dashboard: cannot share figures through Redis: %s", error)
                self.connected = False
            except Exception:
                logger.exception("dashboard: sharing figures failed")
            await asyncio.sleep(self.interval)

    def summary(self) -> Summary:
        fresh = [sample for sample in self.own.samples if sample["t"] > self._shared_until]
        return {
            "id": self.own.id,
            "name": self.own.name,
            "bus": self.own.bus,
            "samples": fresh[-MAX_SAMPLES:],
            "watching": self.watching(),
        }

    async def share(self) -> None:
        """Write this node's summary and read everyone's, in one round trip."""
        summary = self.summary()
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self.key, self.own.id, frames.dumps(summary))
        pipe.expire(self.key, KEY_TTL_SECONDS)
        pipe.hgetall(self.key)
        _, _, entries = await pipe.execute()
        if summary["samples"]:
            self._shared_until = summary["samples"][-1]["t"]
        if not self.connected:
            logger.info("dashboard: sharing figures through Redis")
        self.connected = True
        gone = self.take(entries, time.monotonic())
        if gone:
            await self._client.hdel(self.key, *gone)

    def take(self, entries: dict[str, str], now: float) -> list[str]:
        """Apply the other nodes' summaries; returns the ids of nodes that stopped sharing."""
        watched: set[str] = set()
        for node_id, raw in entries.items():
            if node_id == self.own.id:
                continue
            try:
                summary: Summary = frames.loads(raw)
            except frames.JSONDecodeError:
                logger.warning("dashboard: ignoring an unreadable summary of node %s", node_id)
                continue
            node = self.others.get(node_id)
            if node is None:
                node = self.others[node_id] = NodeFigures(node_id, summary["name"])
                node.seen = now
            last = node.latest()
            fresh = [s for s in summary["samples"] if last is None or s["t"] > last["t"]]
            for sample in fresh:
                node.add(sample)
            if fresh:
                node.seen = now
                node.bus = summary["bus"]
            if now - node.seen < self._stale:
                watched.update(summary.get("watching", []))
        self.watched_elsewhere = watched
        gone = [node_id for node_id, node in self.others.items() if now - node.seen >= self._stale]
        for node_id in gone:
            del self.others[node_id]
        return [node_id for node_id in gone if node_id in entries]
