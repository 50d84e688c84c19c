"""The connection on Revurb's own WebSocket transport: no task per socket, frames written once."""

from __future__ import annotations

import asyncio
import contextvars
import logging

from revurb.apps import App
from revurb.protocol.dispatch import Dispatcher
from revurb.server.asgi_connection import MESSAGE_TOO_BIG, too_big
from revurb.transport.codec import CloseCode, encode_text
from revurb.transport.eager import drive
from revurb.transport.websocket import State, WebSocketProtocol
from revurb.wire import codes
from revurb.wire.codes import ErrorCode
from revurb.wire.connection import Connection
from revurb.wire.errors import PusherError

logger = logging.getLogger("revurb.connection")

#: Unhandled client frames at which reading from the socket pauses.
_INBOX_HIGH_WATER = 32

_SHUTTING_DOWN = PusherError(ErrorCode.RECONNECT_NOW, codes.SERVER_SHUTTING_DOWN, True)

#: Read per message: an enum attribute lookup costs ~60 ns on Python 3.11.
_OPEN = State.OPEN


class FastConnection(Connection[App]):
    """A socket on `WebSocketProtocol`, attached to it as its frame handler.

    Outbound: a broadcast frames its payload once (`prepare`) and every subscriber's transport gets
    the same bytes; the transport's write buffer is the only output buffer and over the cap the
    socket is closed (`OVER_CAPACITY`). Inbound: frames are handled in order by a task that exists only while
    there is something to handle, so an idle socket owns no task at all.
    """

    __slots__ = ("_protocol", "_dispatcher", "_max_pending", "_eager", "_inbox", "_gone")

    def __init__(
        self,
        app: App,
        protocol: WebSocketProtocol,
        dispatcher: Dispatcher,
        max_pending: int,
        eager: bool = False,
    ) -> None:
        super().__init__(app)
        self._protocol = protocol
        self._dispatcher = dispatcher
        self._max_pending = max_pending
        #: Handle messages by hand until the handling suspends (`RevurbFastPath.eager`).
        self._eager = eager
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
        if (
            protocol.flow.writing_paused
            and protocol.buffered() > self._max_pending
            and protocol.state is _OPEN
        ):
            context = {"socket_id": self.socket_id, "app": self.app.id}
            logger.warning("closing socket %s: output backlog over the cap", self.socket_id, extra=context)
            self.close(ErrorCode.OVER_CAPACITY, codes.SLOW_CONSUMER)

    def close(self, code: int, reason: str = "") -> None:
        if self._protocol.state is _OPEN:
            self.close_code = code
        self._protocol.close(code, reason)

    async def flush(self) -> None:
        """Writes reach the transport at once: nothing to wait for."""
        return None

    # FrameHandler: called by the protocol for each message and once on disconnect

    def on_message(self, data: str | bytes) -> None:
        if self.closed or self._protocol.state is not _OPEN:
            return
        if too_big(data, self.app.max_message_size):
            self.close(CloseCode.MESSAGE_TOO_BIG, MESSAGE_TOO_BIG)
            return
        self._enqueue(data)

    def on_shutdown(self) -> None:
        if self._dispatcher.registry.draining:
            return  # the drain tells this socket, in its batch
        self._dispatcher.fail(self, _SHUTTING_DOWN)

    def on_disconnect(self) -> None:
        if self.close_code is None:  # the transport refused the client's input (1002, 1007, 1009)
            self.close_code = self._protocol.close_code
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
        loop = self._protocol.loop
        if self._eager:
            # A subscribe on the memory backend never suspends: handled now, with no Task for it.
            task = drive(self._drain(), loop, _drained, contextvars.copy_context())
            if task is None:
                return
        else:
            task = loop.create_task(self._drain())
        # The server's task set owns it: uvicorn waits for those on shutdown.
        tasks = self._protocol.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _drain(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        dispatcher = self._dispatcher
        while inbox:
            item = inbox.pop(0)
            if item is None:
                await dispatcher.close(self)
                break
            if not self._gone:
                await dispatcher.message(self, item)
            if self._protocol.held and len(inbox) < _INBOX_HIGH_WATER // 2:
                self._protocol.resume_reading()  # paused by `_enqueue`: the backlog is down again
        self._inbox = None


def _drained(error: BaseException | None) -> None:
    """Messages handled by hand are done; a failure is logged as a Task's would be."""
    if error is not None and not isinstance(error, asyncio.CancelledError):
        logger.error("exception while handling a socket's messages", exc_info=error)
