"""The events-per-second window of `event_rate.py`, kept in Redis for every node of the cluster.

A module of its own so that only a server with scaling on imports the Redis client.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.exceptions import RedisError

from revurb.scaling.event_rate import EventRate

if TYPE_CHECKING:
    from revurb.config import ScalingSettings

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


def redis_event_rate(scaling: ScalingSettings) -> RedisEventRate:
    """The window in the Redis that `scaling` names; the client connects on first use."""
    client = Redis.from_url(scaling.url(), username=scaling.redis_username, password=scaling.redis_password)
    return RedisEventRate(client, scaling.channel)
