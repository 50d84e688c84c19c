"""A lean WebSocket protocol for uvicorn (`ws=` accepts its import path) with a broadcast fast path.

It speaks RFC 6455 itself instead of through `websockets` or `wsproto`, so an idle socket costs a
protocol object and a transport: no permessage-deflate context (offers are ignored, which RFC 6455
allows), no keepalive timers, no per-socket queues. The app sees plain ASGI messages; through
`scope["extensions"]["revurb.fastpath"]` it may also write frames it encoded once for many sockets
straight to the transport, and `attach` a handler so that its task can end while the socket lives.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState

from revurb.transport.coalescer import coalescer_for
from revurb.transport.codec import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameReader,
    close_frame,
    encode_frame,
)
from revurb.transport.handshake import accept_response, parse_upgrade, reject_response
from revurb.wire.types import Message

logger = logging.getLogger("revurb.server")

FASTPATH = "revurb.fastpath"
_CLOSE_TIMEOUT = 5.0
_FAIL_TIMEOUT = 0.5
_SHUTDOWN_CODE = 1012
#: Frames waiting for the app before reading from the socket pauses.
_INBOX_HIGH_WATER = 64
#: The inbox of an attached socket: empty for good, shared by all.
_NO_INBOX: list[Message] = []


class FrameHandler(Protocol):
    """Takes a socket's messages once the app has attached it (see `attach`)."""

    def on_message(self, data: str | bytes) -> None: ...

    def on_disconnect(self) -> None: ...

    def on_shutdown(self) -> None:
        """The server is stopping: say goodbye and close (instead of a plain 1012 close)."""


class WebSocketProtocol(asyncio.Protocol):
    """One upgraded connection: handshake, frame parsing, and ASGI `receive`/`send` for the app."""

    __slots__ = (
        "config",
        "app_state",
        "connections",
        "tasks",
        "loop",
        "transport",
        "reader",
        "scope",
        "inbox",
        "waiter",
        "accepted",
        "close_sent",
        "disconnected",
        "paused",
        "write_paused",
        "close_timer",
        "fragments",
        "fragment_opcode",
        "handler",
        "pending",
        "coalescer",
        "_accept_key",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport | None = None
        self.reader: FrameReader | None = None
        self.scope: dict[str, Any] | None = None
        self.inbox: list[Message] = []
        self.waiter: asyncio.Future[None] | None = None
        self.accepted = False
        self.close_sent = False
        self.disconnected = False
        self.paused = False
        #: Set while the transport's buffer is over its high-water mark (asyncio flow control).
        self.write_paused = False
        self.close_timer: asyncio.TimerHandle | None = None
        self.fragments: list[bytes] | None = None
        self.fragment_opcode = 0
        self.handler: FrameHandler | None = None
        #: Frames written during this loop iteration, joined into one write by the coalescer.
        self.pending: list[bytes] | None = None
        self.coalescer = coalescer_for(self.loop)
        self._accept_key = b""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self)  # type: ignore[arg-type]
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if not self.disconnected:
            self.disconnected = True
            self._deliver({"type": "websocket.disconnect", "code": 1006})
        self.reader = None

    def data_received(self, data: bytes) -> None:
        if self.scope is None and not self.accepted:
            self._handshake(data)
            return
        reader = self.reader
        if reader is None or self.disconnected:
            return
        try:
            for opcode, fin, payload in reader.feed(data):
                self._on_frame(opcode, fin, payload)
        except FrameError as error:
            self._fail(error.code, error.reason)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False

    # uvicorn's shutdown hook

    def shutdown(self) -> None:
        if self.transport is None:
            return
        if self.accepted and not self.close_sent and self.handler is not None:
            self.handler.on_shutdown()
        elif self.accepted and not self.close_sent:
            self.close(_SHUTDOWN_CODE, "Server shutting down")
        if not self.accepted:
            self.transport.close()

    # Handshake

    def _handshake(self, data: bytes) -> None:
        request = parse_upgrade(data)
        transport = self.transport
        assert transport is not None
        if request is None:
            self._reject(400)
            return
        root_path = self.config.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(transport) else "ws",
            "server": get_local_addr(transport),
            "client": get_remote_addr(transport),
            "root_path": root_path,
            "path": root_path + unquote(request.raw_path.decode("latin-1")),
            "raw_path": root_path.encode() + request.raw_path,
            "query_string": request.query,
            "headers": request.headers,
            "subprotocols": request.subprotocols,
            "state": self.app_state.copy(),
            "extensions": {FASTPATH: self},
        }
        key = request.key
        self._accept_key = key
        # Frames a client sends before our 101 are kept for the app, not dropped.
        self.reader = FrameReader(self.config.ws_max_size)
        self._deliver({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_asgi())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _reject(self, status: int) -> None:
        assert self.transport is not None
        self.transport.write(reject_response(status))
        self.transport.close()

    async def _run_asgi(self) -> None:
        try:
            await self.config.loaded_app(self.scope, self.receive, self.send)
            if self.handler is not None:
                # The app attached a handler and returned: the socket lives on without its task.
                self.scope = None
                return
        except Exception:
            logger.exception("exception in the WebSocket application")
            if not self.accepted and self.transport is not None:
                self._reject(500)
            else:
                self.close(1011, "")
            return
        if not self.accepted and self.transport is not None and not self.transport.is_closing():
            self._reject(403)
        elif not self.close_sent:
            self.close(1000, "")

    # ASGI receive / send

    async def receive(self) -> Message:
        inbox = self.inbox
        while not inbox:
            waiter = self.waiter = self.loop.create_future()
            await waiter
        message = inbox.pop(0)
        if self.paused and len(inbox) < _INBOX_HIGH_WATER // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return message

    def _deliver(self, message: Message) -> None:
        handler = self.handler
        if handler is not None:
            if message["type"] == "websocket.disconnect":
                handler.on_disconnect()
            else:
                handler.on_message(message.get("text") or message.get("bytes") or b"")
            return
        self.inbox.append(message)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if len(self.inbox) >= _INBOX_HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if self.close_sent or self.disconnected:
                raise ClientDisconnected
            text = message.get("text")
            if text is not None:
                self.write(encode_frame(OP_TEXT, text.encode()))
            else:
                self.write(encode_frame(OP_BINARY, message.get("bytes") or b""))
        elif kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            if not self.accepted:
                self._reject(403)
                self.close_sent = True
                return
            self.close(message.get("code", 1000), message.get("reason") or "")

    def _accept(self, message: Message) -> None:
        if self.accepted or self.transport is None:
            return
        self.accepted = True
        headers = message.get("headers") or ()
        self.transport.write(accept_response(self._accept_key, message.get("subprotocol"), headers))
        self._accept_key = b""

    # The fast path: used by the app for frames encoded once and written to many sockets

    def attach(self, handler: FrameHandler) -> None:
        """From now on hand this socket's messages to `handler` instead of ASGI `receive`.

        The app's task may then return and the socket stays open: an idle socket keeps no task,
        no coroutine frames and no scope.
        """
        self.handler = handler
        # The handler takes every message from now on: no inbox list stays behind per socket.
        pending, self.inbox = self.inbox, _NO_INBOX
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        for message in pending:
            self._deliver(message)

    def pause_reading(self) -> None:
        """Stop reading from the socket until `resume_reading` (backpressure from the handler)."""
        if not self.paused and self.transport is not None and not self.disconnected:
            self.paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.paused and self.transport is not None and not self.disconnected:
            self.paused = False
            self.transport.resume_reading()

    def write(self, frame: bytes) -> None:
        """Write an already-encoded frame (at the end of this loop iteration); dropped once closing."""
        if self.close_sent or self.disconnected or self.transport is None:
            return
        pending = self.pending
        if pending is None:
            self.pending = [frame]
            self.coalescer.add(self)
        else:
            pending.append(frame)

    def flush(self) -> None:
        """Hand what was written this iteration to the transport, in one write."""
        pending = self.pending
        if pending is None:
            return
        self.pending = None
        transport = self.transport
        if transport is not None and not self.disconnected:
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def close(self, code: int, reason: str = "", timeout: float = _CLOSE_TIMEOUT) -> None:
        """Send a close frame and drop the TCP connection if the peer does not answer in time."""
        if self.close_sent or self.transport is None:
            return
        self.flush()
        self.close_sent = True
        if not self.disconnected:
            self.transport.write(close_frame(code, reason))
            self.close_timer = self.loop.call_later(timeout, self.transport.close)

    # Frames from the client

    def _on_frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY):
            if self.fragments is not None:
                raise FrameError(1002, "Expected a continuation frame")
            if not fin:
                self.fragments, self.fragment_opcode = [payload], opcode
                return
            self._message(opcode, payload)
        elif opcode == OP_CONTINUATION:
            if self.fragments is None:
                raise FrameError(1002, "Unexpected continuation frame")
            self.fragments.append(payload)
            if sum(map(len, self.fragments)) > self.config.ws_max_size:
                raise FrameError(1009, "Message too big")
            if fin:
                whole, self.fragments = b"".join(self.fragments), None
                self._message(self.fragment_opcode, whole)
        elif opcode == OP_PING:
            self.write(encode_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self._on_close(payload)

    def _message(self, opcode: int, payload: bytes) -> None:
        data: str | bytes = payload
        if opcode == OP_TEXT:
            try:
                data = payload.decode()
            except UnicodeDecodeError:
                raise FrameError(1007, "Invalid UTF-8") from None
        handler = self.handler
        if handler is not None:
            handler.on_message(data)
        elif opcode == OP_TEXT:
            self._deliver({"type": "websocket.receive", "text": data})
        else:
            self._deliver({"type": "websocket.receive", "bytes": data})

    def _on_close(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        if not self.close_sent and self.transport is not None:
            self.flush()
            self.close_sent = True
            self.transport.write(close_frame(1000 if code == 1005 else code, ""))
        self.disconnected = True
        self._deliver({"type": "websocket.disconnect", "code": code})
        if self.transport is not None:
            self.transport.close()

    def _fail(self, code: int, reason: str) -> None:
        # The rest of the stream cannot be parsed, so the peer's close reply will not be seen:
        # give it a moment to read our close frame, then drop the connection.
        self.close(code, reason, _FAIL_TIMEOUT)
        if not self.disconnected:
            self.disconnected = True
            self._deliver({"type": "websocket.disconnect", "code": code})
