"""The bounded queue of bus messages waiting to be published, in order."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque

logger = logging.getLogger("revurb.scaling")


class Outbox:
    """FIFO of encoded messages; when full, the oldest is dropped and counted."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.dropped = 0
        #: Every message dropped since start (`dropped` restarts at each recovery).
        self.dropped_total = 0
        self._items: deque[tuple[int, str, float]] = deque()
        self._seq = itertools.count()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, payload: str) -> None:
        if len(self._items) >= self.size:
            self._items.popleft()
            self.dropped += 1
            self.dropped_total += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning(
                    "bus queue full (%d messages): dropped the oldest, %d dropped so far",
                    self.size,
                    self.dropped,
                )
        self._items.append((next(self._seq), payload, time.monotonic()))
        self._ready.set()

    async def wait(self) -> None:
        """Return once there is something to publish."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()

    def peek(self, limit: int) -> tuple[int, list[str]]:
        """Up to `limit` payloads from the head, and the sequence number of the last one."""
        batch = list(itertools.islice(self._items, limit))
        return batch[-1][0], [payload for _, payload, _ in batch]

    def done(self, last: int) -> None:
        """Forget what was published, up to sequence `last` (some may have been dropped meanwhile)."""
        while self._items and self._items[0][0] <= last:
            self._items.popleft()

    def oldest_age(self) -> float:
        """Seconds the oldest waiting message has waited; 0 when none waits."""
        return time.monotonic() - self._items[0][2] if self._items else 0.0

    def take_dropped(self) -> int:
        dropped, self.dropped = self.dropped, 0
        return dropped
