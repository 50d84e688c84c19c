"""Deadlines of one length for many connections, on one timer per loop instead of one per connection.

Every new connection must send its request head within the head timeout. A timer of its own costs
about 3 µs on uvloop in a micro-benchmark (a timer handle made, started, stopped and closed), and the
server opened 11 % more WebSocket connections per CPU-second without it, for a deadline that almost
never falls due. Deadlines of one length fall due in the order they were set, so an insertion-ordered
dict is their queue: starting one is a dict insert, leaving it a dict removal, and one timer waits
for the oldest.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

logger = logging.getLogger("revurb.transport")

#: uvloop's timers count whole milliseconds and may fire up to one early: a deadline that near is due
#: (as asyncio's own loop treats its timers), rather than armed again and again until the clock moves.
_RESOLUTION = 0.001


class Overdue(Protocol):
    def overdue(self) -> None:
        """The deadline has passed while the owner was still waiting."""


class Deadlines:
    """The waiting owners of one loop whose deadlines are all `length` seconds after they started."""

    __slots__ = ("loop", "length", "waiting", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, length: float) -> None:
        self.loop = loop
        self.length = length
        #: Owner -> when its deadline falls, oldest first.
        self.waiting: dict[Overdue, float] = {}
        self.timer: asyncio.TimerHandle | None = None

    def start(self, owner: Overdue, now: float) -> None:
        """`owner.overdue()` runs once `now + length` has passed, unless it `leave`s first."""
        when = now + self.length
        self.waiting[owner] = when
        if self.timer is None:
            self.timer = self.loop.call_at(when, self._fire)

    def leave(self, owner: Overdue) -> None:
        self.waiting.pop(owner, None)

    def _fire(self) -> None:
        self.timer = None
        waiting = self.waiting
        now = self.loop.time()
        while waiting:
            owner = next(iter(waiting))
            when = waiting[owner]
            if when > now + _RESOLUTION:
                self.timer = self.loop.call_at(when, self._fire)
                return
            del waiting[owner]
            try:
                owner.overdue()
            except Exception:  # one owner's failure must not leave the others waiting for ever
                logger.exception("error closing a connection past its deadline")


_deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, Deadlines]] = (
    weakref.WeakKeyDictionary()
)
_last: Deadlines | None = None


def deadlines_for(loop: asyncio.AbstractEventLoop, length: float) -> Deadlines:
    """The loop's deadlines of `length` seconds (a server's connections all ask for the same ones)."""
    global _last
    last = _last
    if last is not None and last.loop is loop and last.length == length:
        return last
    by_length = _deadlines.get(loop)
    if by_length is None:
        by_length = _deadlines[loop] = {}
    deadlines = by_length.get(length)
    if deadlines is None:
        deadlines = by_length[length] = Deadlines(loop, length)
    _last = deadlines
    return deadlines
