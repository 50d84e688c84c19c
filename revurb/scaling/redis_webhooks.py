"""Webhook events in Redis: one stream for the cluster, read through one consumer group.

Occupancy and membership events are appended by the scripts that decide them (`lua_webhooks.py`);
events one node alone sees (client events, cache misses, counts) are appended by that node. One
node at a time delivers: the one holding the lease (renewed as it reads, lost `claim_after`
seconds after it dies), so a receiver gets the events in the stream's order. Each entry it reads
stays pending until it acknowledges it, after a delivery or after giving up; it renews its hold
on what it still delivers (XCLAIM, which resets the entry's idle time). The next leader first
takes over the entries idle longer than `claim_after` (XAUTOCLAIM): a dead node's undelivered ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from revurb.scaling.base import WebhookEntry, WebhookEvent
from revurb.scaling.lua_webhooks import GROUP, LEASE, LEASE_DROP, LEASE_TAKE, STREAM, STREAM_MAX
from revurb.wire import frames

logger = logging.getLogger("revurb.scaling")

#: Entries read or claimed per call, and renewed or acknowledged per command.
TAKE_COUNT = 256
#: Longest a blocking read waits, in seconds (the client's own timeout allows for it).
BLOCK_SECONDS = 1.0
#: An entry held this fraction of `claim_after` is looked for by other nodes this often.
CLAIM_CHECKS = 3


class RedisWebhooks:
    """The webhook stream of one node: append, take (new or abandoned), hold, acknowledge."""

    def __init__(self, client: Redis, reader: Redis, prefix: str, node_id: str, queue_size: int) -> None:
        self._client = client
        self._reader = reader
        self._stream = f"{prefix}:{STREAM}"
        self._lease = f"{prefix}:{LEASE}"
        self._take_lease = client.register_script(LEASE_TAKE)
        self._drop_lease = client.register_script(LEASE_DROP)
        self._leader = False
        self._node = node_id
        #: Events this node recorded and has not appended yet (Redis was down, or not yet flushed).
        self._unsent: deque[tuple[str, str]] = deque(maxlen=queue_size)
        self._ready = asyncio.Event()
        self._group_ready = False
        self._claim_after_ms = 10_000
        self._claim_at = 0.0
        self.enabled = False

    def enable(self, claim_after: float) -> None:
        self.enabled = True
        self._claim_after_ms = max(1, int(claim_after * 1000))

    def put(self, app_id: str, event: WebhookEvent) -> None:
        if not self.enabled:
            return
        if len(self._unsent) == self._unsent.maxlen:
            logger.warning("webhook events waiting for Redis are over their bound: the oldest is dropped")
        self._unsent.append((app_id, frames.dumps(event)))
        self._ready.set()

    async def wait_unsent(self) -> None:
        await self._ready.wait()
        self._ready.clear()

    def has_unsent(self) -> bool:
        return bool(self._unsent)

    async def flush(self) -> None:
        """Append what this node recorded; raises a fault of Redis (the events stay queued)."""
        batch = list(self._unsent)[:TAKE_COUNT]
        if not batch:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for app_id, event in batch:
                pipe.xadd(self._stream, {"a": app_id, "e": event}, maxlen=STREAM_MAX, approximate=True)
            await pipe.execute()
        for _ in batch:
            self._unsent.popleft()
        if self._unsent:
            self._ready.set()

    async def take(self, wait: float) -> list[WebhookEntry]:
        """For the lease holder: entries abandoned by a dead node when it is time to look, else
        new ones (blocking). Another node waits `wait` seconds and takes nothing."""
        await self._ensure_group()
        loop = asyncio.get_running_loop()
        if not await self._take_lease(keys=[self._lease], args=[self._node, self._claim_after_ms]):
            if self._leader:
                logger.info("another node delivers the cluster's webhooks now")
            self._leader = False
            await asyncio.sleep(wait)
            return []
        if not self._leader:
            logger.info("this node delivers the cluster's webhooks now")
            self._leader = True
            self._claim_at = 0.0  # what the last one left is sent first
        if loop.time() >= self._claim_at:
            self._claim_at = loop.time() + self._claim_after_ms / 1000 / CLAIM_CHECKS
            claimed: Any = await self._client.xautoclaim(
                self._stream, GROUP, self._node, self._claim_after_ms, "0-0", count=TAKE_COUNT
            )
            entries = _entries(claimed[1])
            if entries:
                logger.info("took over %d webhook events another node did not deliver", len(entries))
                return entries
        block = max(1, int(min(wait, BLOCK_SECONDS) * 1000))
        try:
            reply: Any = await self._reader.xreadgroup(
                GROUP, self._node, {self._stream: ">"}, count=TAKE_COUNT, block=block
            )
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._group_ready = False  # Redis lost it (a restart without persistence): made again
            return []
        return [entry for _, found in reply or () for entry in _entries(found)]

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def release(self) -> None:
        """Give the lease up (stopping), so another node delivers from now on."""
        if self._leader:
            self._leader = False
            await self._drop_lease(keys=[self._lease], args=[self._node])

    async def hold(self, ids: list[str]) -> None:
        for start in range(0, len(ids), TAKE_COUNT):
            chunk: list[Any] = ids[start : start + TAKE_COUNT]
            await self._client.xclaim(self._stream, GROUP, self._node, 0, chunk, justid=True)

    async def ack(self, ids: list[str]) -> None:
        for start in range(0, len(ids), TAKE_COUNT):
            chunk = ids[start : start + TAKE_COUNT]
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.xack(self._stream, GROUP, *chunk)
                pipe.xdel(self._stream, *chunk)
                await pipe.execute()


def _entries(found: Any) -> list[WebhookEntry]:
    entries: list[WebhookEntry] = []
    for entry_id, fields in found or ():
        if not fields:
            continue  # trimmed away while pending (XAUTOCLAIM answers these too)
        try:
            event = cast(WebhookEvent, frames.loads(fields["e"]))
            entries.append(WebhookEntry(entry_id, fields["a"], event))
        except (KeyError, ValueError):
            logger.exception("unreadable webhook entry %s: %.200s", entry_id, fields)
    return entries
