"""A node's share of the cluster state in Redis, handled in bounded steps: re-assert, sweep, leave.

Each step is one short script (see `lua_share.py`); sizes are chosen so that a step over even a
very large share keeps Redis busy for a few milliseconds at most (docs/scaling.md has the figures).
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from revurb.scaling import lua_share
from revurb.scaling.mirror import Mirror

#: Presence sockets (user, channel) re-asserted per script call.
PRESENCE_CHUNK = 1000
#: Socket and subscription counts re-asserted per call.
COUNT_CHUNK = 1000
#: Cache payloads re-asserted per call.
CACHE_CHUNK = 200
#: Index entries (each a channel's share) removed per call when sweeping or leaving.
DROP_CHUNK = 20


class Share:
    """Runs the share scripts of one node against one client."""

    def __init__(self, client: Redis, prefix: str, node_id: str, bus_max: int) -> None:
        self.client = client
        self.prefix = prefix
        self.node_id = node_id
        self.bus_max = bus_max
        register = client.register_script
        self._claim = register(lua_share.SWEEP_CLAIM)
        self._leave = register(lua_share.LEAVE)
        self._drop = register(lua_share.SHARE_DROP)
        self._start = register(lua_share.REASSERT_START)
        self._drop_entries = register(lua_share.REASSERT_DROP)
        self._counts = register(lua_share.REASSERT_COUNTS)
        self._presence = register(lua_share.REASSERT_PRESENCE)
        self._cache = register(lua_share.REASSERT_CACHE)

    async def reassert(self, mirror: Mirror, ttl_ms: int) -> bool:
        """Register this node and make its share in Redis exactly `mirror`; True if it had been
        swept (its users were announced gone, and are now announced back)."""
        p, node = self.prefix, self.node_id
        swept, held = await self._start(args=[p, node, ttl_ms])
        stale = sorted(set(held) - mirror.index_entries())
        for start in range(0, len(stale), DROP_CHUNK):
            await self._drop_entries(args=[p, self.bus_max, node, *stale[start : start + DROP_CHUNK]])
        for chunk in mirror.count_chunks(COUNT_CHUNK):
            await self._counts(args=[p, node, chunk])
        for chunk in mirror.presence_chunks(PRESENCE_CHUNK):
            await self._presence(args=[p, self.bus_max, node, chunk])
        now = int(time.time() * 1000)
        for chunk in mirror.cache_chunks(CACHE_CHUNK):
            await self._cache(args=[p, now, chunk])
        return bool(swept)

    async def sweep(self, node: str, tombstone_seconds: int) -> bool:
        """Claim a node whose heartbeat expired and remove its share; False if another node did."""
        if not await self._claim(args=[self.prefix, node, tombstone_seconds]):
            return False
        await self.drop(node)
        return True

    async def leave(self) -> None:
        await self._leave(args=[self.prefix, self.node_id])
        await self.drop(self.node_id)

    async def drop(self, node: str) -> None:
        """Remove a claimed node's share, a bounded part per call, until none is left."""
        while await self._drop(args=[self.prefix, self.bus_max, node, DROP_CHUNK]):
            pass

    async def unfinished(self) -> list[str]:
        """Nodes whose removal was claimed but not finished (the claimer died or stopped)."""
        found = {str(node) for node in await self.client.smembers(f"{self.prefix}:sweeping")}
        return sorted(found - {self.node_id})
