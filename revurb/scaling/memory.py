"""The single-process backend: cluster state is this process's state; there is no bus."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from revurb.scaling.base import CACHE_TTL_SECONDS, Backend, BusMessage, CachedEvent


class MemoryBackend(Backend):
    """Keeps counts, rosters and cached events in dictionaries."""

    def __init__(self, cache_ttl: float = CACHE_TTL_SECONDS) -> None:
        super().__init__()
        self._cache_ttl = cache_ttl
        self._connections: dict[str, int] = defaultdict(int)
        self._subscriptions: dict[str, dict[str, int]] = defaultdict(dict)
        # app -> channel -> user id -> [user info, sockets]
        self._rosters: dict[str, dict[str, dict[str, list[Any]]]] = defaultdict(dict)
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}

    def publish(self, message: BusMessage) -> None:
        return None

    async def add_connection(self, app_id: str) -> int:
        self._connections[app_id] += 1
        return self._connections[app_id]

    async def remove_connection(self, app_id: str) -> None:
        self._connections[app_id] = max(0, self._connections[app_id] - 1)

    async def connection_count(self, app_id: str) -> int:
        return self._connections.get(app_id, 0)

    async def add_subscriber(self, app_id: str, channel: str) -> int:
        counts = self._subscriptions[app_id]
        counts[channel] = counts.get(channel, 0) + 1
        return counts[channel]

    async def remove_subscriber(self, app_id: str, channel: str) -> int:
        counts = self._subscriptions[app_id]
        remaining = counts.get(channel, 0) - 1
        if remaining > 0:
            counts[channel] = remaining
            return remaining
        counts.pop(channel, None)
        return 0

    async def subscription_count(self, app_id: str, channel: str) -> int:
        return self._subscriptions[app_id].get(channel, 0)

    async def occupied_channels(self, app_id: str) -> dict[str, int]:
        return dict(self._subscriptions[app_id])

    async def add_member(self, app_id: str, channel: str, user_id: str, user_info: Any) -> bool:
        roster = self._rosters[app_id].setdefault(channel, {})
        entry = roster.get(user_id)
        if entry is None:
            roster[user_id] = [user_info, 1]
            return True
        entry[0] = user_info
        entry[1] += 1
        return False

    async def remove_member(self, app_id: str, channel: str, user_id: str) -> bool:
        rosters = self._rosters[app_id]
        roster = rosters.get(channel, {})
        entry = roster.get(user_id)
        if entry is None:
            return False
        entry[1] -= 1
        if entry[1] > 0:
            return False
        del roster[user_id]
        if not roster:
            rosters.pop(channel, None)
        return True

    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        roster = self._rosters[app_id].get(channel, {})
        return {user_id: entry[0] for user_id, entry in roster.items()}

    async def cache_put(self, app_id: str, channel: str, frame: str) -> None:
        self._cache[(app_id, channel)] = (frame, time.monotonic() + self._cache_ttl)

    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None:
        cached = self._cache.get((app_id, channel))
        if cached is None:
            return None
        frame, expires = cached
        remaining = expires - time.monotonic()
        if remaining <= 0:
            del self._cache[(app_id, channel)]
            return None
        return {"frame": frame, "ttl": int(remaining)}
