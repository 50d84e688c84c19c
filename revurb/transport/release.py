"""Giving the memory of many closed sockets back to the system once a wave of closes is over.

Python frees a closed socket's objects at once, but not all of the memory: the C allocator keeps
what it got from the system for reuse, CPython's small-object allocator can only return a 1 MB
arena once every object in it is gone, and hash tables keep the size they grew to. After 10,000
sockets close, the server's RSS would stay 12-15 MB above what it was before they opened.

So when enough sockets have closed and a moment has passed without another closing:
- if the wave emptied the server (no more sockets left than closed in it), a full collection empties
  CPython's free lists (tuples, dicts, floats, contexts kept for reuse, scattered over the wave's
  arenas), the tables that grew with the wave are rebuilt at their present size (uvicorn's
  connection set, and whatever registered with `compact_after_waves`), and uvloop's free lists of
  handles are refilled with fresh ones, so the old ones, from all over the wave's arenas, are freed;
- then `malloc_trim(0)` (glibc) returns the C allocator's free pages.
A busy server with steady churn does none of this (closes keep coming); a server with many sockets
left skips the collection, which would cost in proportion to them. See docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import weakref
from collections.abc import Callable
from typing import Any, Protocol

#: Closed sockets after which a trim is worth its milliseconds.
WAVE = 1_000
#: Seconds without a close before the trim runs.
QUIET_SECONDS = 0.5
#: uvloop keeps up to 250 `Handle`s and 250 `TimerHandle`s for reuse; taking more than that many
#: empties its free lists and makes it allocate the rest afresh.
_UVLOOP_FREE_LIST = 250
_FRESH_HANDLES = 2 * _UVLOOP_FREE_LIST + 100
#: How long the fresh handles are held (they must have run, so the loop no longer refers to them).
HANDLES_SECONDS = 0.1


class Compactable(Protocol):
    def compact(self) -> None:
        """Rebuild the tables that grew with a wave of sockets at the size they need now."""


_compactables: weakref.WeakSet[Any] = weakref.WeakSet()


def compact_after_waves(owner: Compactable) -> None:
    """Have `owner.compact()` called when a wave of closes has emptied the server (held weakly)."""
    _compactables.add(owner)


def shrink(table: set[Any] | dict[Any, Any]) -> None:
    """Rebuild a set or dict in place at the size of what it holds (neither ever shrinks by itself)."""
    kept: Any = list(table.items()) if isinstance(table, dict) else list(table)
    table.clear()  # frees the grown table
    table.update(kept)


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
    """Counts closed sockets on one loop and gives memory back once a wave of them is over."""

    __slots__ = ("loop", "closed", "seen", "timer", "trims", "compactions", "connections", "_trim")

    def __init__(self, loop: asyncio.AbstractEventLoop, trim: Callable[[], object] = trim_allocator) -> None:
        self.loop = loop
        #: Sockets closed since the last trim, and as many as the armed timer last saw.
        self.closed = 0
        self.seen = 0
        self.timer: asyncio.TimerHandle | None = None
        self.trims = 0
        self.compactions = 0
        #: The server's set of open connections (uvicorn's), as the last closed socket named it.
        self.connections: set[Any] | None = None
        self._trim = trim

    def socket_closed(self, connections: set[Any] | None = None) -> None:
        """One more socket closed; `connections` is the server's set of the ones still open."""
        self.closed += 1
        if connections is not None:
            self.connections = connections
        if self.closed >= WAVE and self.timer is None:
            self.seen = self.closed
            self.timer = self.loop.call_later(QUIET_SECONDS, self._check)

    def _check(self) -> None:
        if self.closed != self.seen:  # still closing: wait for the quiet
            self.seen = self.closed
            self.timer = self.loop.call_later(QUIET_SECONDS, self._check)
            return
        wave, self.closed, self.seen = self.closed, 0, 0
        self.timer = None
        connections = self.connections
        if connections is not None and len(connections) > wave:
            self._finish(None)  # many sockets stay: a full collection would cost in proportion to them
            return
        gc.collect()  # a full collection also empties the interpreter's free lists
        for owner in list(_compactables):
            owner.compact()
        if connections is not None:
            shrink(connections)
        self.compactions += 1
        fresh = _fresh_handles(self.loop)
        if fresh is None:
            self._finish(None)
        else:
            self.timer = self.loop.call_later(HANDLES_SECONDS, self._finish, fresh)

    def _finish(self, fresh: list[Any] | None) -> None:
        self.timer = None
        if fresh is not None:
            # Newest first: the fresh handles fill uvloop's free lists, the old ones go back to Python.
            while fresh:
                fresh.pop()
        self._trim()
        self.trims += 1


def _noop() -> None:
    return None


def _fresh_handles(loop: asyncio.AbstractEventLoop) -> list[Any] | None:
    """On uvloop, take more handles than its free lists hold (their last ones are allocated afresh).

    Returns them in the order taken; None on other loops, whose handles are not kept for reuse.
    """
    if not type(loop).__module__.startswith("uvloop"):
        return None
    handles: list[Any] = [loop.call_soon(_noop) for _ in range(_FRESH_HANDLES)]
    for _ in range(_FRESH_HANDLES):
        timer = loop.call_later(3600, _noop)
        timer.cancel()
        handles.append(timer)
    return handles


_releases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Release] = weakref.WeakKeyDictionary()


def release_for(loop: asyncio.AbstractEventLoop) -> Release:
    global _last
    last = _last
    if last is not None and last.loop is loop:  # every closed socket asks: spare the weak lookup
        return last
    release = _releases.get(loop)
    if release is None:
        release = _releases[loop] = Release(loop)
    _last = release
    return release


_last: Release | None = None
