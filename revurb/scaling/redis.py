"""The Redis backend: a pub/sub bus between nodes, and the cluster state kept in Redis structures.

Delivery is at most once per healthy link and in order: publishes go through one bounded outbox
that is paused while Redis is unreachable and flushed, in order, once every node that was listening
before the fault listens again (or a grace period has passed). State changes are applied to this
node's `Mirror` first, then to Redis atomically (Lua); after any fault the node replaces its share
in Redis with the mirror, so a Redis restart without persistence does not empty the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from revurb.scaling import lua
from revurb.scaling.base import BusMessage, BusStats, Node
from revurb.scaling.outbox import Outbox
from revurb.scaling.redis_state import FAULTS, RedisOptions, RedisState, connect
from revurb.wire import frames

__all__ = ["RedisBackend", "RedisOptions", "backend_from_settings"]

if TYPE_CHECKING:
    from revurb.config import Settings

logger = logging.getLogger("revurb.scaling")

BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0
PUBLISH_BATCH = 256
#: How long other nodes remember that they swept a node (so it announces its users on return).
TOMBSTONE_SECONDS = 3600
#: How long `stop()` waits for queued publishes (member_removed of the last sockets) to go out.
STOP_FLUSH_SECONDS = 2.0
#: Bus message type a node sends when it (re)joins; handled by the backends, never by the registry.
HELLO = "hello"
#: Heartbeat ticks (a quarter interval each) over which the bus listener count is remembered.
LISTENER_WINDOW_TICKS = 8
#: How long start-up waits for Redis before serving degraded.
START_WAIT_SECONDS = 5.0


def backend_from_settings(settings: Settings) -> RedisBackend:
    """The Redis backend `create_app` uses when `scaling.enabled`."""
    scaling = settings.scaling
    return RedisBackend(
        RedisOptions(
            url=scaling.redis_url,
            host=scaling.redis_host,
            port=scaling.redis_port,
            username=scaling.redis_username,
            password=scaling.redis_password,
            db=scaling.redis_db,
            prefix=scaling.channel,
            heartbeat_interval=scaling.heartbeat_interval,
            queue_size=scaling.queue_size,
        )
    )


class RedisBackend(RedisState):
    """Cluster state and the bus on Redis, surviving Redis faults without losing local service."""

    def __init__(self, options: RedisOptions) -> None:
        super().__init__(options)
        interval = options.heartbeat_interval
        self._tick = interval / 4
        self._ttl_ms = max(1, int(interval * 1500))
        self._backoff_cap = min(BACKOFF_CAP, interval)
        self._grace = 2 * interval + self._backoff_cap
        self._sub = connect(options, None, f"revurb-{self.node_id}-bus")
        register = self._cmd.register_script
        self._sweep = register(lua.SWEEP)
        self._leave = register(lua.LEAVE)
        self._reassert = register(lua.REASSERT)
        self._heartbeat = register(lua.HEARTBEAT)
        self._outbox = Outbox(options.queue_size)
        self._flush_allowed = asyncio.Event()
        self._subscribed = False
        #: Bus listeners (PUBSUB NUMSUB) seen on recent healthy ticks; a flush after a fault waits for
        #: the highest of them, so a count taken while Redis was shutting down does not lower the bar.
        self._listeners_recent: deque[int] = deque([1], maxlen=LISTENER_WINDOW_TICKS)
        self._node: Node | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._recovery: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._published = 0
        self._received = 0

    # Lifecycle

    async def start(self, node: Node) -> None:
        self._node = node
        self._publisher = self._spawn(self._publish_forever())
        self._spawn(self._listen_forever())
        self._spawn(self._heartbeat_forever())
        # Serve with the cluster view from the first request if Redis is there; degraded if not.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush_allowed.wait(), min(self._grace, START_WAIT_SECONDS))
        if not self._healthy:
            logger.warning("Redis is unreachable at start: serving this node alone until it is back")

    async def stop(self) -> None:
        for task in list(self._tasks):
            if task is not self._publisher:
                task.cancel()
        if self._recovery is not None:
            self._recovery.cancel()
        if self._healthy:
            try:
                async with self._state_lock:
                    removed = await self._leave(args=[self.prefix, self.node_id])
                self._announce_removed(removed)
            except FAULTS as error:
                logger.warning("could not remove this node's share from Redis: %s", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), STOP_FLUSH_SECONDS)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._healthy = False  # sockets still closing after this are this node's business only
        for client in (self._cmd, self._sub):
            try:
                await client.aclose()
            except FAULTS as error:
                logger.debug("closing a Redis client failed: %s", error)

    async def _drained(self) -> None:
        while len(self._outbox) and self._healthy:
            await asyncio.sleep(0.01)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def health(self) -> dict[str, Any]:
        status = {
            "driver": "redis",
            "node": self.node_id,
            "connected": self._healthy,
            "queued": len(self._outbox),
            "dropped": self._outbox.dropped,
        }
        if self._healthy:
            return {"scaling": status}
        return {"health": "DEGRADED", "scaling": status}

    def bus_stats(self) -> BusStats:
        queued = len(self._outbox)
        return {
            "published": self._published,
            "received": self._received,
            "lag_seconds": self._outbox.oldest_age(),
            "queued": queued,
            "dropped": self._outbox.dropped_total,
        }

    # The bus

    def publish(self, message: BusMessage) -> None:
        header = {key: value for key, value in message.items() if key != "frame"}
        header["node"] = self.node_id
        self._outbox.put(frames.dumps(header) + "\n" + message.get("frame", ""))

    async def _publish_forever(self) -> None:
        while True:
            await self._outbox.wait()
            await self._flush_allowed.wait()
            last, batch = self._outbox.peek(PUBLISH_BATCH)
            try:
                async with self._cmd.pipeline(transaction=False) as pipe:
                    for payload in batch:
                        pipe.publish(self.prefix, payload)
                    await pipe.execute()
            except FAULTS as error:
                self._failed("publish", error)
                continue
            except Exception:
                # Not a connection fault: retrying would fail the same way, so drop the batch.
                logger.exception("could not publish %d bus messages: dropped", len(batch))
            self._outbox.done(last)
            self._published += len(batch)

    async def _listen_forever(self) -> None:
        backoff = BACKOFF_BASE
        while True:
            pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.prefix)
                self._subscribed = True
                backoff = BACKOFF_BASE
                self._schedule_recovery()
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._receive(message["data"])
            except FAULTS as error:
                self._failed("listener", error)
            except Exception:
                logger.exception("bus listener failed")
                self._failed("listener", RuntimeError("listener failed"))
            finally:
                self._subscribed = False
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except FAULTS as error:
                    logger.debug("closing the bus subscription failed: %s", error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_cap)

    def _receive(self, data: str) -> None:
        header, _, frame = data.partition("\n")
        try:
            message = frames.loads(header)
            if message.get("node") == self.node_id or self._node is None:
                return
            if message.get("type") == HELLO:
                self._spawn(self._count_listeners())
                return
            if frame:
                message["frame"] = frame
            self._received += 1
            self._node.on_bus_message(message)
        except Exception:
            logger.exception("could not deliver a bus message: %.200s", data)

    # Faults and recovery

    def _failed(self, where: str, error: BaseException) -> None:
        self._flush_allowed.clear()
        super()._failed(where, error)

    def _schedule_recovery(self) -> None:
        if self._recovery is None or self._recovery.done():
            self._recovery = self._spawn(self._recover())

    async def _recover(self) -> None:
        """Re-assert this node's share, wait for the other listeners, then let the outbox flush."""
        try:
            async with self._state_lock:
                swept, added, removed = await self._reassert(
                    args=[self.prefix, self.node_id, self._ttl_ms, self._mirror.to_json(), _now_ms()]
                )
                self._healthy = True
            if swept:
                logger.warning("this node had been declared dead: announcing its users again")
                self._announce_added(added)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._grace
            # Tell the others a listener (re)joined, so a flush of theirs after a fault waits for it.
            await self._cmd.publish(self.prefix, frames.dumps({"type": HELLO, "node": self.node_id}) + "\n")
            listeners = await self._listeners()
            expected = max(self._listeners_recent)
            while listeners < expected and loop.time() < deadline:
                await asyncio.sleep(0.05)
                listeners = await self._listeners()
        except FAULTS as error:
            self._failed("recovery", error)
            return
        except Exception:
            logger.exception("re-asserting this node's share failed")
            return
        self._listeners_recent.append(listeners)
        dropped = self._outbox.take_dropped()
        logger.info(
            "Redis connected: node %s registered, %d queued publishes to flush, %d dropped, %d stale members",
            self.node_id,
            len(self._outbox),
            dropped,
            len(removed) // 3,
        )
        self._flush_allowed.set()

    async def _count_listeners(self) -> None:
        try:
            self._listeners_recent.append(await self._listeners())
        except FAULTS as error:
            self._failed("listener count", error)

    async def _listeners(self) -> int:
        counts = await self._cmd.pubsub_numsub(self.prefix)
        return int(counts[0][1]) if counts else 0

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                await self._beat()
            except FAULTS as error:
                self._failed("heartbeat", error)
            except Exception:
                logger.exception("heartbeat failed")

    async def _beat(self) -> None:
        registered = await self._heartbeat(args=[self.prefix, self.node_id, self._ttl_ms])
        if not registered or not self._healthy:
            if self._subscribed:
                self._schedule_recovery()
            return
        if self._flush_allowed.is_set():
            self._listeners_recent.append(await self._listeners())
        known: set[str] = await self._cmd.smembers(f"{self.prefix}:nodes")  # type: ignore[assignment]
        nodes = [node for node in known if node != self.node_id]
        if not nodes:
            return
        async with self._cmd.pipeline(transaction=False) as pipe:
            for node in nodes:
                pipe.exists(f"{self.prefix}:node:{node}")
            alive = await pipe.execute()
        for node, exists in zip(nodes, alive, strict=True):
            if not exists:
                removed = await self._sweep(args=[self.prefix, node, TOMBSTONE_SECONDS])
                if removed:
                    logger.warning("node %s stopped beating: removed %d members", node, len(removed) // 3)
                self._announce_removed(removed)

    def _announce_removed(self, flat: list[str]) -> None:
        grouped: dict[tuple[str, str], list[str]] = {}
        for i in range(0, len(flat), 3):
            grouped.setdefault((flat[i], flat[i + 1]), []).append(flat[i + 2])
        for (app_id, channel), users in grouped.items():
            if self._node is not None:
                self._node.on_members_changed(app_id, channel, {}, users)

    def _announce_added(self, flat: list[str]) -> None:
        grouped: dict[tuple[str, str], dict[str, Any]] = {}
        for i in range(0, len(flat), 4):
            grouped.setdefault((flat[i], flat[i + 1]), {})[flat[i + 2]] = frames.loads(flat[i + 3])
        for (app_id, channel), users in grouped.items():
            if self._node is not None:
                self._node.on_members_changed(app_id, channel, users, [])

    # State


def _now_ms() -> int:
    return int(time.time() * 1000)
