"""How many events an app's HTTP API may accept per second (Soketi's `max_backend_events_per_sec`).

A fixed one-second window per app. On one process the count is kept here; with scaling on it is
kept in Redis, so the limit holds for the whole cluster, at the price of one round trip (one small
script) per limited request. Apps without a limit cost nothing, and nothing is asked of Redis.
If Redis cannot be reached the request is let through (and that is logged): a rate limit must not
take the API down with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from revurb.config import Settings


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


def event_rate_for(settings: Settings) -> EventRate:
    """Redis-backed when scaling is on (the client connects on first use), else on this process."""
    scaling = settings.scaling
    if not scaling.enabled:
        return EventRate()
    # Imported only with scaling on: a single server never loads the Redis client (about 8 MB).
    from revurb.scaling.event_rate_redis import redis_event_rate

    return redis_event_rate(scaling)
