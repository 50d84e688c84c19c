"""Giving the memory of many closed sockets back to the system once a wave of closes is over.

Python frees a closed socket's objects at once, but the C allocator keeps what it got from the
system for reuse: after 10,000 sockets close, the server's RSS stays about 10 MB above what it was
before they opened. When enough sockets have closed and a moment has passed without another
closing, `malloc_trim(0)` (glibc) returns the allocator's free pages. A busy server with steady
churn does not trim at all (closes keep coming); one trim costs a few milliseconds.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable

#: Closed sockets after which a trim is worth its milliseconds.
WAVE = 1_000
#: Seconds without a close before the trim runs.
QUIET_SECONDS = 0.5


@functools.cache
def _libc_trim() -> Callable[[], object]:
    """glibc's `malloc_trim(0)`, or nothing to do where the C library has none (musl, macOS)."""
    import ctypes  # only when first needed: a server that never trims never loads it

    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    return _no_trim if trim is None else lambda: trim(0)


def _no_trim() -> None:
    return None


def trim_allocator() -> None:
    """Return the C allocator's free pages to the system (once start-up's garbage is gone, say)."""
    _libc_trim()()


class Release:
    """Counts closed sockets on one loop and trims the allocator once a wave of them is over."""

    __slots__ = ("loop", "closed", "seen", "timer", "trims", "_trim")

    def __init__(self, loop: asyncio.AbstractEventLoop, trim: Callable[[], object] = trim_allocator) -> None:
        self.loop = loop
        #: Sockets closed since the last trim, and as many as the armed timer last saw.
        self.closed = 0
        self.seen = 0
        self.timer: asyncio.TimerHandle | None = None
        self.trims = 0
        self._trim = trim

    def socket_closed(self) -> None:
        self.closed += 1
        if self.closed >= WAVE and self.timer is None:
            self.seen = self.closed
            self.timer = self.loop.call_later(QUIET_SECONDS, self._check)

    def _check(self) -> None:
        if self.closed != self.seen:  # still closing: wait for the quiet
            self.seen = self.closed
            self.timer = self.loop.call_later(QUIET_SECONDS, self._check)
            return
        self.timer = None
        self.closed = self.seen = 0
        self._trim()
        self.trims += 1


_releases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Release] = weakref.WeakKeyDictionary()


def release_for(loop: asyncio.AbstractEventLoop) -> Release:
    release = _releases.get(loop)
    if release is None:
        release = _releases[loop] = Release(loop)
    return release
