"""The connection of Revurb's own uvicorn protocol: no task per socket, frames written once."""

from __future__ import annotations

import asyncio
import logging

from revurb.apps import App
from revurb.protocol.dispatch import Dispatcher
from revurb.server.asgi_connection import too_big
from revurb.transport.codec import encode_text
from revurb.transport.websocket import WebSocketProtocol
from revurb.wire import codes
from revurb.wire.codes import CLOSE_MESSAGE_TOO_BIG, ErrorCode
from revurb.wire.connection import Connection
from revurb.wire.errors import PusherError

logger = logging.getLogger("revurb.connection")

#: Unhandled client frames at which reading from the socket pauses.
_INBOX_HIGH_WATER = 32

_SHUTTING_DOWN = PusherError(ErrorCode.RECONNECT_NOW, codes.SERVER_SHUTTING_DOWN, True)

#: Running message handlers; asyncio only keeps weak references to tasks.
_handlers: set[asyncio.Task[None]] = set()


class FastConnection(Connection):
    """A socket on `WebSocketProtocol`, attached to it as its frame handler.

    Outbound: a broadcast frames its payload once (`prepare`) and every subscriber's transport gets
    the same bytes; the transport's write buffer is the only output buffer and over the cap the
    socket is closed (4100). Inbound: frames are handled in order by a task that exists only while
    there is something to handle, so an idle socket owns no task at all.
    """

    __slots__ = ("_protocol", "_server", "_max_pending", "_inbox", "_gone")

    def __init__(self, app: App, protocol: WebSocketProtocol, server: Dispatcher, max_pending: int) -> None:
        super().__init__(app)
        self._protocol = protocol
        self._server = server
        self._max_pending = max_pending
        self._inbox: list[str | bytes] | None = None
        self._gone = False

    @staticmethod
    def prepare(frame: str) -> bytes:
        return encode_text(frame)

    def send(self, frame: str) -> None:
        self.send_prepared(encode_text(frame))

    def send_prepared(self, prepared: bytes) -> None:
        protocol = self._protocol
        protocol.write(prepared)
        # The backlog is only worth measuring once the transport has said it is filling up.
        if protocol.write_paused and protocol.buffered() > self._max_pending and not protocol.close_sent:
            logger.warning("closing socket %s: output backlog over the cap", self.socket_id)
            protocol.close(ErrorCode.OVER_CAPACITY, codes.SLOW_CONSUMER)

    def close(self, code: int, reason: str = "") -> None:
        self._protocol.close(code, reason)

    async def flush(self) -> None:
        """Writes reach the transport at once: nothing to wait for."""
        return None

    # FrameHandler: called by the protocol for each message and once on disconnect

    def on_message(self, data: str | bytes) -> None:
        if self.closed or self._protocol.close_sent:
            return
        if too_big(data, self.app.max_message_size):
            self._protocol.close(CLOSE_MESSAGE_TOO_BIG, "Message too big")
            return
        self._enqueue(data)

    def on_shutdown(self) -> None:
        self._server.fail(self, _SHUTTING_DOWN)

    def on_disconnect(self) -> None:
        self._gone = True
        self._enqueue(None)

    def _enqueue(self, item: str | bytes | None) -> None:
        inbox = self._inbox
        if inbox is not None:
            inbox.append(item)  # type: ignore[arg-type]
            if len(inbox) >= _INBOX_HIGH_WATER:
                self._protocol.pause_reading()
            return
        self._inbox = [item]  # type: ignore[list-item]
        task = asyncio.get_running_loop().create_task(self._drain())
        _handlers.add(task)
        task.add_done_callback(_handlers.discard)

    async def _drain(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        server = self._server
        while inbox:
            item = inbox.pop(0)
            if item is None:
                await server.close(self)
                break
            if not self._gone:
                await server.message(self, item)
            if len(inbox) < _INBOX_HIGH_WATER // 2:
                self._protocol.resume_reading()
        self._inbox = None
