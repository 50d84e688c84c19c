"""A fake asyncio transport and a loop with a hand-driven clock, for the transport's protocol classes.

The protocol objects run on the test's real event loop (tasks, futures, `call_soon`), but their
timers (`call_later`) wait on a virtual clock that the test advances, so timeouts are exact and
take no time. No socket is opened: what the protocol writes is kept in `FakeTransport.writes`, one
entry per `write` call, so a test can assert both the bytes and how many writes carried them.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import struct
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar, cast

T = TypeVar("T")

PEER = ("127.0.0.1", 50_000)
LOCAL = ("127.0.0.1", 8080)


class FakeTransport(asyncio.Transport):
    """Records writes, closes and read pauses; tells its protocol of a lost connection as asyncio does."""

    def __init__(self, peer: tuple[str, int] = PEER, local: tuple[str, int] = LOCAL) -> None:
        super().__init__({"peername": peer, "sockname": local, "sslcontext": None})
        self.writes: list[bytes] = []
        #: Bytes written after `close()`: a real transport would drop them, so a test expects none.
        self.written_after_close: list[bytes] = []
        self.closed = False
        self.reading_paused = False
        self.pauses = 0
        self.resumes = 0
        #: What `get_write_buffer_size` reports (the bytes the kernel has not taken yet).
        self.buffer_size = 0
        self.protocol: asyncio.BaseProtocol | None = None
        self.lost = False

    # What the protocol calls

    def write(self, data: bytes | bytearray | memoryview) -> None:
        (self.written_after_close if self.closed else self.writes).append(bytes(data))

    def close(self) -> None:
        """As asyncio's transports do: `connection_lost(None)` follows as a loop callback."""
        if self.closed:
            return
        self.closed = True
        asyncio.get_running_loop().call_soon(self._lose, None)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading_paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading_paused = False
        self.resumes += 1

    def is_reading(self) -> bool:
        return not self.reading_paused

    def get_write_buffer_size(self) -> int:
        return self.buffer_size

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    # What the test calls

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)

    def take(self) -> bytes:
        """Everything written so far, forgetting it."""
        data = self.data
        self.writes.clear()
        return data

    def lose(self, exc: Exception | None = None) -> None:
        """The peer went away (a reset, say): the protocol hears of it at once."""
        self.closed = True
        self._lose(exc)

    def _lose(self, exc: Exception | None) -> None:
        if self.lost or self.protocol is None:
            return
        self.lost = True
        self.protocol.connection_lost(exc)


class ClockLoop:
    """The running loop for everything but time: `call_later` / `call_at` wait for `advance`.

    It has just the loop methods the protocol classes call; `as_loop` hands it to them.
    """

    def __init__(self, real: asyncio.AbstractEventLoop) -> None:
        self.real = real
        self.now = 1000.0
        self.timers: list[tuple[asyncio.TimerHandle, Callable[..., object], tuple[Any, ...]]] = []
        #: The transports of the protocols made on this loop, for the fixture's checks afterwards.
        self.opened: list[FakeTransport] = []

    def time(self) -> float:
        return self.now

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, args, self.real, context)
        self.timers.append((handle, callback, args))
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self.now + delay, callback, *args, context=context)

    def call_soon(
        self, callback: Callable[..., object], *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.Handle:
        return self.real.call_soon(callback, *args, context=context)

    def create_future(self) -> asyncio.Future[Any]:
        return self.real.create_future()

    def create_task(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[T]:
        return self.real.create_task(coro, name=name, context=context)

    def get_debug(self) -> bool:
        return self.real.get_debug()

    def as_loop(self) -> asyncio.AbstractEventLoop:
        return cast(asyncio.AbstractEventLoop, self)

    def pending_timers(self) -> list[float]:
        """The delays (from now) of the timers still to run, soonest first."""
        return sorted(handle.when() - self.now for handle, _, _ in self.timers if not handle.cancelled())

    def advance(self, seconds: float) -> None:
        """Move the clock on and run, in order, every timer that falls due (including ones they set)."""
        deadline = self.now + seconds
        while True:
            live = [timer for timer in self.timers if not timer[0].cancelled()]
            due = [timer for timer in live if timer[0].when() <= deadline]
            if not due:
                self.timers = live
                break
            first = min(due, key=lambda timer: timer[0].when())
            self.timers = [timer for timer in live if timer is not first]
            self.now = max(self.now, first[0].when())
            first[1](*first[2])
        self.now = deadline


async def settle(rounds: int = 20) -> None:
    """Let the real loop run its ready callbacks and task steps for a while."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# RFC 6455 frames as a client sends them, built independently of revurb.transport.codec

FIXED_MASK = b"\x37\xfa\x21\x3d"


def client_frame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    mask: bytes | None = FIXED_MASK,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """A client frame: masked with `mask` (random if None, unmasked if empty); `length` may lie."""
    first = (0x80 if fin else 0) | rsv | opcode
    declared = len(payload) if length is None else length
    mask_bit = 0x80 if mask != b"" else 0
    if declared < 126:
        header = bytes((first, mask_bit | declared))
    elif declared < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, declared)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, declared)
    if mask == b"":
        return header + payload
    key = os.urandom(4) if mask is None else mask
    # XOR with the key repeated to the payload's length, as one big integer: fast for a megabyte too.
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")
    return header + key + masked


def server_frame(opcode: int, payload: bytes) -> bytes:
    """A final, unmasked frame as a server sends it (payloads under 64 KiB)."""
    if len(payload) < 126:
        return bytes((0x80 | opcode, len(payload))) + payload
    return struct.pack("!BBH", 0x80 | opcode, 126, len(payload)) + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason
