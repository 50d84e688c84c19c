"""A `Connection` that writes through the plain ASGI `send`: works under any ASGI server."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from revurb.apps import App
from revurb.wire import codes
from revurb.wire.codes import ErrorCode
from revurb.wire.connection import Connection
from revurb.wire.types import Send

logger = logging.getLogger("revurb.connection")
frames_logger = logging.getLogger("revurb.frames")

#: The close reason for a frame over the app's `max_message_size` (`CloseCode.MESSAGE_TOO_BIG`).
MESSAGE_TOO_BIG = "Message too big"


def too_big(data: str | bytes, limit: int) -> bool:
    """Whether a client frame is over the app's `max_message_size` (in bytes)."""
    if len(data) <= limit // 4:
        return False
    size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
    return size > limit


class ASGIConnection(Connection[App]):
    """Queues frames and drains them with one writer task, so a broadcast never waits on a socket.

    Unsent bytes are capped: a consumer that cannot keep up is closed with `OVER_CAPACITY` (reconnect later)
    instead of growing memory without bound.
    """

    __slots__ = ("_send", "_queue", "_pending", "_max_pending", "_writer", "_close", "_debug")

    def __init__(self, app: App, send: Send, max_pending: int, debug: bool = False) -> None:
        super().__init__(app)
        self._send = send
        self._queue: deque[str] = deque()
        self._pending = 0
        self._max_pending = max_pending
        self._writer: asyncio.Task[None] | None = None
        self._close: tuple[int, str] | None = None
        self._debug = debug

    def send(self, frame: str) -> None:
        if self._close is not None or self.closed:
            return
        self._pending += len(frame)
        if self._pending > self._max_pending:
            self._queue.clear()
            self._pending = 0
            context = {"socket_id": self.socket_id, "app": self.app.id}
            logger.warning("closing socket %s: output backlog over the cap", self.socket_id, extra=context)
            self.close(ErrorCode.OVER_CAPACITY, codes.SLOW_CONSUMER)
            return
        self._queue.append(frame)
        self._wake()

    def close(self, code: int, reason: str = "") -> None:
        if self._close is not None or self.closed:
            return
        self._close = (code, reason)
        self.close_code = code
        self._wake()

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        send = self._send
        queue = self._queue
        try:
            while queue:
                frame = queue.popleft()
                self._pending -= len(frame)
                if self._debug:
                    frames_logger.info("%s <- %s", self.socket_id, frame)
                await send({"type": "websocket.send", "text": frame})
            if self._close is not None and not self.closed:
                self.closed = True
                code, reason = self._close
                await send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:
            # The peer went away mid-write; the receive loop sees the disconnect and cleans up.
            self.closed = True
            queue.clear()
        except Exception as error:  # servers raise their own "disconnected" types
            if type(error).__name__ not in ("ClientDisconnected", "WebSocketDisconnect"):
                logger.exception("writing to socket %s failed", self.socket_id)
            self.closed = True
            queue.clear()
        finally:
            self._writer = None
        if queue or (self._close is not None and not self.closed):
            self._wake()

    async def flush(self) -> None:
        """Wait until everything queued so far has been handed to the server."""
        while self._writer is not None:
            await asyncio.shield(self._writer)
