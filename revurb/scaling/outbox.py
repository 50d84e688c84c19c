"""This node's messages on their way to the bus: queued in order, then kept a while once sent.

A message is *placed* (its future done, so a trigger may answer 2xx) once Redis acknowledged it,
or once Redis is known to be down while it waits here. Sent messages are kept for a few seconds:
if Redis comes back without them (restarted empty, or a replica promoted before it had them),
they are queued again in front of the rest, and consumers drop the copies they already had.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass

from revurb.scaling.base import BusMessage

logger = logging.getLogger("revurb.scaling")

#: How long a sent message is kept for a replay after Redis lost data.
REPLAY_SECONDS = 5.0


@dataclass(slots=True)
class Outgoing:
    """One message: its number, its bus payload, the message itself (for local delivery)."""

    seq: int
    payload: str
    message: BusMessage
    placed: asyncio.Future[None]
    queued_at: float
    sent_at: float = 0.0


class Outbox:
    """FIFO of messages to send, bounded: when full, the oldest unsent one is dropped and counted."""

    def __init__(self, size: int, replay_seconds: float = REPLAY_SECONDS) -> None:
        self.size = size
        self.replay_seconds = replay_seconds
        self.dropped = 0
        #: Every message dropped since start (`dropped` restarts at each recovery).
        self.dropped_total = 0
        self.last_seq = 0
        self._queue: deque[Outgoing] = deque()
        self._sent: deque[Outgoing] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, payload: str, message: BusMessage, seq: int) -> Outgoing:
        if len(self._queue) >= self.size:
            _place(self._queue.popleft())
            self.dropped += 1
            self.dropped_total += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning(
                    "bus queue full (%d messages): dropped the oldest, %d dropped so far",
                    self.size,
                    self.dropped,
                )
        item = Outgoing(seq, payload, message, asyncio.get_running_loop().create_future(), time.monotonic())
        self.last_seq = seq
        self._queue.append(item)
        self._ready.set()
        return item

    async def wait(self) -> None:
        """Return once there is something to send."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()

    def peek(self, limit: int) -> list[Outgoing]:
        return list(itertools.islice(self._queue, limit))

    def sent(self, batch: list[Outgoing]) -> None:
        """Redis acknowledged `batch` (the head of the queue, unless some was dropped meanwhile)."""
        if not batch:
            return
        now = time.monotonic()
        last = batch[-1].seq
        while self._queue and self._queue[0].seq <= last:
            item = self._queue.popleft()
            item.sent_at = now
            _place(item)
            self._sent.append(item)
        cutoff = now - self.replay_seconds
        while self._sent and (self._sent[0].sent_at < cutoff or len(self._sent) > self.size):
            self._sent.popleft()

    def place_all(self) -> None:
        """Redis is known to be down: every queued message counts as placed."""
        for item in self._queue:
            _place(item)

    def unsent_and_recent(self, after_seq: int) -> list[Outgoing]:
        """Sent (still kept) and queued messages numbered above `after_seq`, in order."""
        return [item for item in (*self._sent, *self._queue) if item.seq > after_seq]

    def replay(self) -> int:
        """Queue the kept sent messages again, in front; returns how many."""
        count = len(self._sent)
        self._queue.extendleft(reversed(self._sent))
        self._sent.clear()
        if count:
            self._ready.set()
        return count

    def oldest_age(self) -> float:
        """Seconds the oldest waiting message has waited; 0 when none waits."""
        return time.monotonic() - self._queue[0].queued_at if self._queue else 0.0

    def take_dropped(self) -> int:
        dropped, self.dropped = self.dropped, 0
        return dropped


def _place(item: Outgoing) -> None:
    if not item.placed.done():
        item.placed.set_result(None)
