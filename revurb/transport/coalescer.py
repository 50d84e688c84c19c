"""Write coalescing: what one connection is written during a loop iteration leaves in one write
(a WebSocket's frames, an HTTP connection's direct answers)."""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol


class Flushable(Protocol):
    def flush(self) -> None: ...


class WriteCoalescer:
    """Joins the frames written to one socket during a loop iteration into a single write.

    A burst of broadcasts then costs each socket one system call instead of one per event. The
    flush runs as the loop's next callback, so nothing waits longer than the current iteration.
    """

    __slots__ = ("loop", "dirty")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dirty: list[Flushable] = []

    def add(self, protocol: Flushable) -> None:
        self.dirty.append(protocol)
        if len(self.dirty) == 1:
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        for protocol in dirty:
            protocol.flush()


_coalescers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteCoalescer] = (
    weakref.WeakKeyDictionary()
)


def coalescer_for(loop: asyncio.AbstractEventLoop) -> WriteCoalescer:
    coalescer = _coalescers.get(loop)
    if coalescer is None:
        coalescer = _coalescers[loop] = WriteCoalescer(loop)
    return coalescer
