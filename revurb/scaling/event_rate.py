"""How many events an app's HTTP API may accept per second (Soketi's `max_backend_events_per_sec`).

A fixed one-second window per app. On one process the count is kept here; with scaling on it is
kept in Redis, so the limit holds for the whole cluster, at the price of one round trip (one small
script) per limited request. Apps without a limit cost nothing, and nothing is asked of Redis.
If Redis cannot be reached the request is let through (and that is logged): a rate limit must not
take the API down with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from revurb.config import Settings

logger = logging.getLogger("revurb.scaling")

#: Seconds a window's key outlives its second in Redis (clocks of nodes differ a little).
_KEY_TTL = 2
#: Adds `points` to this second's count unless that would pass the limit; the count so far, or -1.
_TAKE = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if used > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return -1
end
return used
"""


class EventRate:
    """Counts the events each app's API accepted in the current second, on this process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}

    async def take(self, app_id: str, points: int, limit: int) -> bool:
        """Count `points` more events for the app if that stays within `limit` this second."""
        second = int(self._clock())
        start, used = self._windows.get(app_id, (second, 0))
        if start != second:
            used = 0
        if used + points > limit:
            return False
        self._windows[app_id] = (second, used + points)
        return True

    async def close(self) -> None:
        return None


class RedisEventRate(EventRate):
    """The same window, kept in Redis for every node of the cluster."""

    def __init__(self, client: Redis, prefix: str) -> None:
        super().__init__()
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_TAKE)
        self._failing = False

    async def take(self, app_id: str, points: int, limit: int) -> bool:
        key = f"{self._prefix}:event-rate:{app_id}:{int(self._clock())}"
        try:
            used = await self._script(keys=[key], args=[points, limit, _KEY_TTL])
        except (RedisError, OSError) as error:
            if not self._failing:
                logger.warning("event rate limit not applied while Redis is unreachable: %s", error)
            self._failing = True
            return True
        self._failing = False
        return int(used) >= 0

    async def close(self) -> None:
        await self._client.aclose()


def event_rate_for(settings: Settings) -> EventRate:
    """Redis-backed when scaling is on (the client connects on first use), else on this process."""
    scaling = settings.scaling
    if not scaling.enabled:
        return EventRate()
    from redis.asyncio import Redis

    client = Redis.from_url(scaling.url(), username=scaling.redis_username, password=scaling.redis_password)
    return RedisEventRate(client, scaling.channel)
