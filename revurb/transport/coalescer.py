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
    HTTP answers (`add_answer`) are written first: a publisher waiting for its answer to send the
    next event gets it before the frames of the round.
    """

    __slots__ = ("loop", "answers", "dirty", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.answers: list[Flushable] = []
        self.dirty: list[Flushable] = []
        self.scheduled = False

    def add(self, protocol: Flushable) -> None:
        self.dirty.append(protocol)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def add_answer(self, protocol: Flushable) -> None:
        self.answers.append(protocol)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        answers, self.answers = self.answers, []
        for protocol in answers:
            protocol.flush()
        dirty, self.dirty = self.dirty, []
        for protocol in dirty:
            protocol.flush()


_coalescers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteCoalescer] = (
    weakref.WeakKeyDictionary()
)


def coalescer_for(loop: asyncio.AbstractEventLoop) -> WriteCoalescer:
    global _last
    last = _last
    if last is not None and last.loop is loop:  # every protocol of a server asks: spare the weak lookup
        return last
    coalescer = _coalescers.get(loop)
    if coalescer is None:
        coalescer = _coalescers[loop] = WriteCoalescer(loop)
    _last = coalescer
    return coalescer


_last: WriteCoalescer | None = None
