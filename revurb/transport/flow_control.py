"""Flow control of one connection, both ways: reading paused by us, writing paused by asyncio."""

from __future__ import annotations

import asyncio


class FlowControl:
    """Pauses and resumes reading from the transport, and tracks whether asyncio paused our writes.

    Reading is paused as backpressure toward the peer (input the app has not taken yet); writing is
    paused by asyncio when the transport's buffer passes its high-water mark, and `drain` waits
    until it falls below the low-water mark again.
    """

    __slots__ = ("transport", "reading_paused", "writing_paused", "_drain_waiter")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.reading_paused = False
        self.writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    def pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        """asyncio.Protocol.pause_writing, forwarded by the protocol."""
        self.writing_paused = True

    def resume_writing(self) -> None:
        """asyncio.Protocol.resume_writing, forwarded by the protocol; wakes `drain`."""
        self.writing_paused = False
        self._wake()

    def connection_lost(self) -> None:
        """Nothing will be written any more: let anyone waiting in `drain` go on."""
        self.writing_paused = False
        self._wake()

    async def drain(self) -> None:
        """Wait until asyncio resumes writing (or the connection is lost)."""
        if not self.writing_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain_waiter)

    def _wake(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
