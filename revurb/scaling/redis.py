"""The Redis backend: a bus on a Redis stream, and the cluster state kept in Redis structures.

Every node writes its messages to one stream (`P:bus`) and reads the stream from the last entry
it has seen, its own entries included, so Redis's order is everyone's order, and a node whose link
dropped reads what it missed when it is back. While Redis is known to be down, a node delivers to
its own sockets at once and queues its messages; they follow once Redis is back. Any fault (a
refused or reset connection, or Redis silent for `timeout` seconds) makes the link DOWN; one
recovery loop then reconnects with capped backoff until it succeeds, re-asserts this node's
share of the state, and lets the bus and the queue go on. Nothing waits for another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from revurb.scaling import bus, lua
from revurb.scaling.base import BusMessage, BusStats, Node, Receipt, WebhookEntry, WebhookEvent
from revurb.scaling.connect import RedisOptions, connect, options_from
from revurb.scaling.outbox import Outbox, Outgoing
from revurb.scaling.read_pace import ReadPace
from revurb.scaling.redis_state import FAULTS, RedisState
from revurb.scaling.redis_webhooks import BLOCK_SECONDS, RedisWebhooks
from revurb.scaling.share import Share

__all__ = ["RedisBackend", "RedisOptions", "backend_from_settings"]

if TYPE_CHECKING:
    from revurb.config import Settings

logger = logging.getLogger("revurb.scaling")

BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0
#: Messages written to the stream per pipeline.
PUBLISH_BATCH = 256
#: How long one XREAD blocks waiting for new entries (how many it asks for: `read_pace.py`).
READ_BLOCK_MS = 1000
#: While entries arrive less than BUSY_GAP apart, the reader waits READ_LINGER before its next
#: XREAD, so a burst reaches each socket in one write (one frame per entry, one write per burst).
BUSY_GAP = 0.005
READ_LINGER = 0.001
#: How long other nodes remember that they swept a node (so it announces its users on return).
TOMBSTONE_SECONDS = 3600
#: How long `stop()` waits for queued messages (member_removed of the last sockets) to go out.
STOP_FLUSH_SECONDS = 2.0
#: How long `stop()` waits for a cancelled loop before it cancels it again (see `_cancel_loops`).
STOP_RECANCEL_SECONDS = 0.5
STOP_RECANCEL_TIMES = 10
#: How long start-up waits for Redis before serving degraded.
START_WAIT_SECONDS = 5.0
#: A node's heartbeat key outlives its last beat by this many intervals.
TTL_INTERVALS = 1.5


class Link(enum.Enum):
    """This node's link to Redis."""

    DOWN = "down"  # unknown or lost: deliver locally, queue, recover
    UP = "up"


def backend_from_settings(settings: Settings) -> RedisBackend:
    """The Redis backend `create_app` uses when `scaling.enabled`."""
    return RedisBackend(options_from(settings.scaling))


class RedisBackend(RedisState):
    """Cluster state and the bus on Redis, surviving Redis faults without losing local service."""

    def __init__(self, options: RedisOptions) -> None:
        super().__init__(options)
        interval = self.options.heartbeat_interval
        self._tick = interval / 4
        self._ttl_ms = max(1, int(interval * TTL_INTERVALS * 1000))
        self._backoff_cap = min(BACKOFF_CAP, interval)
        # After an outage every heartbeat key may have expired (Redis kept its data: AOF, a
        # promoted replica). A live peer is back within one backoff step of Redis, and beating
        # within its TTL: until then a missing key is no sign of death.
        self._sweep_grace = self._backoff_cap + interval * TTL_INTERVALS
        self._stream = f"{self.prefix}:bus"
        # The bus connection blocks in XREAD: it may stay silent for the block time, no longer.
        self._bus = connect(
            self.options, READ_BLOCK_MS / 1000 + self.options.timeout, f"revurb-{self.node_id}-bus"
        )
        self._heartbeat = self._cmd.register_script(lua.HEARTBEAT)
        # Webhook reads block too; the client is made now, its connection only when webhooks are on.
        self._hooks_reader = connect(
            self.options, BLOCK_SECONDS + self.options.timeout, f"revurb-{self.node_id}-webhooks"
        )
        self._webhooks = RedisWebhooks(
            self._cmd, self._hooks_reader, self.prefix, self.node_id, self.options.queue_size
        )
        self._share = Share(self._cmd, self.prefix, self.node_id, self._bus_max)
        self._outbox = Outbox(self.options.queue_size)
        self._dedupe = bus.Dedupe(self.node_id)
        self._pace = ReadPace()
        self._seq = 0
        self._link = Link.DOWN
        #: Bumped at every recovery: a fault seen by work started before it is old news.
        self._generation = 0
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self._last_id: str | None = None
        self._run_id: str | None = None
        self._peers: set[str] = set()
        #: After a recovery: (peers to wait for, loop time to stop waiting) before reconciling.
        self._reconcile: tuple[set[str], float] | None = None
        #: Loop time from which a peer whose heartbeat key is gone is declared dead.
        self._sweep_from = 0.0
        self._node: Node | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._published = 0
        self._received = 0
        #: Set by `stop()`: the loops end instead of going round again.
        self._stopping = False

    # Lifecycle

    async def start(self, node: Node) -> None:
        self._node = node
        self._spawn(self._recover_forever())
        self._spawn(self._publish_forever())
        self._spawn(self._read_forever())
        self._spawn(self._heartbeat_forever())
        # Serve with the cluster view from the first request if Redis is there; degraded if not.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._up.wait(), min(2 * self.options.heartbeat_interval, START_WAIT_SECONDS)
            )
        if self._link is Link.DOWN:
            logger.warning("Redis is unreachable at start: serving this node alone until it is back")

    async def stop(self) -> None:
        for part in self.before_stop:
            try:
                await part()
            except Exception:
                logger.exception("a part stopping before the Redis backend failed")
        if self._link is Link.UP:
            try:
                await self._webhooks.release()
                async with self._state_lock:
                    await asyncio.wait_for(self._share.leave(), STOP_FLUSH_SECONDS)
            except (*FAULTS, TimeoutError) as error:
                logger.warning("could not remove this node's share from Redis: %s", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), STOP_FLUSH_SECONDS)
        await self._cancel_loops()
        self._healthy = False  # sockets still closing after this are this node's business only
        self._link = Link.DOWN
        for client in (self._cmd, self._bus, self._hooks_reader):
            try:
                await client.aclose()
            except FAULTS as error:
                logger.debug("closing a Redis client failed: %s", error)

    async def _cancel_loops(self) -> None:
        """Cancel the background loops and wait until every one has ended.

        On Python 3.11 a cancellation that arrives as redis-py's read timeout expires can be
        swallowed (`asyncio.timeout` turns both into one TimeoutError), and the loop would go round
        again into a blocking XREAD: so the loops also check `_stopping`, and a loop still running
        after a moment is cancelled again.
        """
        self._stopping = True
        for _ in range(STOP_RECANCEL_TIMES):
            pending = [task for task in self._tasks if not task.done()]
            if not pending:
                return
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=STOP_RECANCEL_SECONDS)
        logger.warning("%d Redis loops did not end when cancelled", sum(not t.done() for t in self._tasks))

    async def _drained(self) -> None:
        while len(self._outbox) and self._link is Link.UP:
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
            "connected": self._link is Link.UP,
            "queued": len(self._outbox),
            "dropped": self._outbox.dropped,
            "bus_lag_seconds": round(self._pace.lag_seconds, 3),
        }
        if self._link is Link.UP:
            return {"scaling": status}
        return {"health": "DEGRADED", "scaling": status}

    def bus_stats(self) -> BusStats:
        return {
            "published": self._published,
            "received": self._received,
            "lag_seconds": self._outbox.oldest_age(),
            "read_lag_seconds": self._pace.lag_seconds,
            "queued": len(self._outbox),
            "dropped": self._outbox.dropped_total,
        }

    # The bus: writing

    def publish(self, message: BusMessage) -> Receipt:
        self._seq += 1
        header: dict[str, Any] = {key: value for key, value in message.items() if key != "frame"}
        header["node"] = self.node_id
        header["seq"] = self._seq
        item = self._outbox.put(bus.encode(header, message.get("frame", "")), message, self._seq)
        if self._link is Link.DOWN:
            self._deliver_own([item])
            item.placed.set_result(None)  # queued while Redis is known to be down: placed
        return item.placed

    async def _publish_forever(self) -> None:
        while not self._stopping:
            await self._outbox.wait()
            await self._up.wait()
            generation = self._generation
            batch = self._outbox.peek(PUBLISH_BATCH)
            try:
                # One transaction: the batch lands in one piece, right after the entry read first.
                async with self._cmd.pipeline(transaction=True) as pipe:
                    pipe.xrevrange(self._stream, count=1)
                    for item in batch:
                        pipe.xadd(
                            self._stream, {bus.FIELD: item.payload}, maxlen=self._bus_max, approximate=True
                        )
                    before, *_ = await pipe.execute()
            except FAULTS as error:
                self._failed("publish", error, generation)
                continue
            except Exception:
                # Not a connection fault: retrying would fail the same way, so drop the batch.
                logger.exception("could not publish %d bus messages: dropped", len(batch))
                before = None
            self._outbox.sent(batch)
            self._published += len(batch)
            if before is not None and self._read_up_to(before[0][0] if before else None):
                # Everything ahead of the batch in the cluster's order is delivered here already:
                # the batch may follow at once, without waiting to be read back.
                self._deliver_own(batch)

    def _read_up_to(self, entry_id: str | None) -> bool:
        """True if this node has delivered the bus up to `entry_id` (None: the bus was empty)."""
        if entry_id is None:
            return True
        return self._last_id is not None and bus.parse_id(self._last_id) >= bus.parse_id(entry_id)

    def _deliver_own(self, items: list[Outgoing]) -> None:
        """This node's own messages not yet delivered here are, now, in order (Redis is down, or
        they are next in the cluster's order)."""
        for item in items:
            if item.seq > self._dedupe.own_delivered:
                self._dedupe.own_delivered = item.seq
                self._deliver(item.message)

    # The bus: reading

    async def _read_forever(self) -> None:
        loop = asyncio.get_running_loop()
        last_reply = 0.0
        while not self._stopping:
            await self._up.wait()
            generation = self._generation
            count = self._pace.count
            try:
                reply: Any = await self._bus.xread(
                    {self._stream: self._last_id or "$"}, count=count, block=READ_BLOCK_MS
                )
            except FAULTS as error:
                self._pace.cut()
                self._failed("bus", error, generation)
                continue
            read = size = 0
            for _, entries in reply or ():
                read += len(entries)
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    size += len(fields.get(bus.FIELD, ""))
                    self._receive(entry_id, fields)
            self._pace.read(read, size, self._last_id)
            now = loop.time()
            if read and read < count and now - last_reply < BUSY_GAP:
                await asyncio.sleep(READ_LINGER)
            last_reply = now

    def _receive(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            message = bus.decode(entry_id, fields[bus.FIELD])
            if self._dedupe.fresh(message):
                if message.get("node") != self.node_id:
                    self._received += 1  # from the other nodes (its own come back too)
                self._deliver(message)
        except Exception:
            logger.exception("could not deliver bus entry %s: %.200s", entry_id, fields)

    def _deliver(self, message: BusMessage) -> None:
        if self._node is not None:
            self._node.on_bus_message(message)

    # Webhooks (see `redis_webhooks.py`)

    def enable_webhooks(self, claim_after: float) -> None:
        if self._webhooks.enabled:
            return
        self._webhooks.enable(claim_after)
        self._spawn(self._append_webhooks_forever())

    def webhook(self, app_id: str, event: WebhookEvent) -> None:
        self._webhooks.put(app_id, event)

    async def take_webhooks(self, wait: float) -> list[WebhookEntry]:
        if self._link is not Link.UP:
            await asyncio.sleep(wait)
            return []
        generation = self._generation
        try:
            return await self._webhooks.take(wait)
        except FAULTS as error:
            self._failed("webhooks", error, generation)
            return []

    async def hold_webhooks(self, ids: list[str]) -> None:
        await self._webhook_call("renew the hold on", self._webhooks.hold, ids)

    async def ack_webhooks(self, ids: list[str]) -> None:
        await self._webhook_call("acknowledge", self._webhooks.ack, ids)

    async def _webhook_call(self, what: str, call: Any, ids: list[str]) -> None:
        """A hold or acknowledgement that fails is not retried: at worst another node takes the
        events over after `claim_after` and sends them again (the receiver sees the same id)."""
        if not ids or self._link is not Link.UP:
            return
        try:
            await call(ids)
        except FAULTS as error:
            logger.warning("could not %s %d webhook events: %s", what, len(ids), error)

    async def _append_webhooks_forever(self) -> None:
        while not self._stopping:
            if not self._webhooks.has_unsent():
                await self._webhooks.wait_unsent()
            await self._up.wait()
            generation = self._generation
            try:
                await self._webhooks.flush()
            except FAULTS as error:
                self._failed("webhooks", error, generation)

    # Faults and recovery

    def _failed(self, where: str, error: BaseException, generation: int | None = None) -> None:
        """Redis did not answer: deliver locally and queue until the recovery loop is through."""
        if generation is not None and generation != self._generation:
            return  # a fault of a link already given up and replaced
        super()._failed(where, error)
        if self._link is Link.DOWN:
            return
        self._link = Link.DOWN
        self._up.clear()
        self._down.set()
        self._deliver_own(self._outbox.unsent_and_recent(self._dedupe.own_delivered))
        self._outbox.place_all()

    async def _recover_forever(self) -> None:
        backoff = BACKOFF_BASE
        while not self._stopping:
            await self._down.wait()
            try:
                await self._recover()
                backoff = BACKOFF_BASE
                continue
            except FAULTS as error:
                logger.info("Redis still unreachable (%s): retrying in %.1f s", error or "lost", backoff)
            except Exception:
                logger.exception("recovering the Redis link failed: retrying in %.1f s", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_cap)

    async def _recover(self) -> None:
        """Fresh connections, this node's share re-asserted, then the bus and the queue go on."""
        for client in (self._cmd, self._bus, self._hooks_reader):
            # Whatever the pools held when Redis went away (half-read replies, dead sockets) goes.
            await client.connection_pool.disconnect()
        run_id = (await self._cmd.info("server"))["run_id"]
        if self._last_id is None:
            newest: Any = await self._cmd.xrevrange(self._stream, count=1)
            self._last_id = newest[0][0] if newest else "0-0"
        async with self._state_lock:
            swept = await self._share.reassert(self._mirror, self._ttl_ms)
            self._healthy = True
        replayed = 0
        if self._run_id is not None and run_id != self._run_id:
            # Another Redis (restarted, or a promoted replica) may lack what was sent last.
            replayed = self._outbox.replay()
        self._run_id = run_id
        self._generation += 1
        self._link = Link.UP
        self._down.clear()
        self._up.set()
        loop = asyncio.get_running_loop()
        self._reconcile = (set(self._peers), loop.time() + 2 * self.options.heartbeat_interval)
        self._sweep_from = loop.time() + self._sweep_grace
        logger.info(
            "Redis connected: node %s registered%s, %d queued messages to send (%d sent again), %d dropped",
            self.node_id,
            " (it had been declared dead: its users are announced again)" if swept else "",
            len(self._outbox),
            replayed,
            self._outbox.take_dropped(),
        )

    # Liveness

    async def _heartbeat_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._tick)
            if self._link is not Link.UP:
                continue
            generation = self._generation
            try:
                await self._beat()
            except FAULTS as error:
                self._failed("heartbeat", error, generation)
            except Exception:
                logger.exception("heartbeat failed")

    async def _beat(self) -> None:
        if not await self._heartbeat(args=[self.prefix, self.node_id, self._ttl_ms]):
            # Expired, swept, or Redis lost its data while this link stayed up: register again.
            async with self._state_lock:
                swept = await self._share.reassert(self._mirror, self._ttl_ms)
            logger.warning(
                "node %s was not registered%s: re-asserted its share",
                self.node_id,
                " (it had been declared dead)" if swept else "",
            )
        known = {str(node) for node in await self._cmd.smembers(f"{self.prefix}:nodes")}
        peers = sorted(known - {self.node_id})
        alive: list[int] = []
        if peers:
            async with self._cmd.pipeline(transaction=False) as pipe:
                for peer in peers:
                    pipe.exists(f"{self.prefix}:node:{peer}")
                alive = await pipe.execute()
        sweeping = asyncio.get_running_loop().time() >= self._sweep_from
        for peer, exists in zip(peers, alive, strict=True):
            if not exists and sweeping and await self._share.sweep(peer, TOMBSTONE_SECONDS):
                logger.warning("node %s stopped beating: removed its share", peer)
        for peer in await self._share.unfinished():
            if not await self._cmd.exists(f"{self.prefix}:node:{peer}"):
                await self._share.drop(peer)
        self._peers = {peer for peer, exists in zip(peers, alive, strict=True) if exists}
        await self._trim()
        await self._reconcile_when_ready()
        self._dedupe.forget_silent()

    async def _trim(self) -> None:
        """Keep `history_seconds` of bus history (and at most `history_size` entries, on every write)."""
        if self._last_id is None:
            return
        newest_ms = bus.parse_id(self._last_id)[0]
        oldest = newest_ms - int(self.options.history_seconds * 1000)
        if oldest > 0:
            await self._cmd.xtrim(self._stream, minid=f"{oldest}-0", approximate=True)

    async def _reconcile_when_ready(self) -> None:
        """Once the nodes that were there before the outage are back (or had their time), bring
        this node's presence sockets in line with Redis."""
        if self._reconcile is None or self._node is None:
            return
        waiting_for, until = self._reconcile
        if waiting_for - self._peers and asyncio.get_running_loop().time() < until:
            return
        if await self._node.reconcile():
            self._reconcile = None
