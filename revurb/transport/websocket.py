"""A lean WebSocket protocol for uvicorn (`--ws revurb.transport:WebSocketProtocol`).

It speaks RFC 6455 itself instead of through `websockets` or `wsproto`, so an idle socket costs a
protocol object and a transport: no permessage-deflate context (offers are ignored, which RFC 6455
allows), no keepalive timers, no per-socket queues. Any ASGI app is served through plain ASGI
messages. An app that offers the transport hook (`revurb.transport.hook`) may instead serve a socket
directly: its route accepts it, writes frames it encoded once for many sockets straight to the
transport, and returns a handler that takes the socket's messages, so no task stays per socket.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
from typing import Any
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected, is_ssl
from uvicorn.server import ServerState

from revurb.transport.addresses import local_address, remote_address
from revurb.transport.coalescer import coalescer_for
from revurb.transport.codec import (
    CloseCode,
    FrameError,
    FrameReader,
    Opcode,
    close_frame,
    encode_frame,
    is_peer_close_code,
)
from revurb.transport.eager import drive
from revurb.transport.flow_control import FlowControl
from revurb.transport.forwarded import TrustedProxies, forward_websocket_scope
from revurb.transport.handshake import (
    Refusal,
    UpgradeRequest,
    accept_response,
    parse_upgrade,
    refusal,
    reject_response,
)
from revurb.transport.hook import FastPath, FrameHandler, Scope, WebSocketRoute
from revurb.transport.release import release_for
from revurb.transport.served import served

logger = logging.getLogger("revurb.transport")

Message = dict[str, Any]

_CLOSE_TIMEOUT = 5.0
_FAIL_TIMEOUT = 0.5
#: Messages waiting for the app before reading from the socket pauses.
_INBOX_HIGH_WATER = 64
#: The inbox of a socket whose handler takes every message: empty for good, shared by all.
_NO_INBOX: list[Message] = []


class State(enum.Enum):
    """Where a connection is in its life (RFC 6455 section 4 and 7)."""

    #: Waiting for the upgrade request.
    HANDSHAKE = enum.auto()
    #: The request is parsed and the app decides; nothing is written before it accepts.
    CONNECTING = enum.auto()
    OPEN = enum.auto()
    #: We sent a close frame and wait for the peer's (or for the timeout).
    CLOSING = enum.auto()
    #: The peer is gone, or its stream cannot be read any more.
    CLOSED = enum.auto()


# Enum attribute lookups cost ~60 ns each on Python 3.11: the per-frame paths read these instead.
_HANDSHAKE, _OPEN, _CLOSING, _CLOSED = State.HANDSHAKE, State.OPEN, State.CLOSING, State.CLOSED
_TEXT, _BINARY, _CONTINUATION = Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION
_PING, _CLOSE = Opcode.PING, Opcode.CLOSE
_NORMAL_CLOSURE, _NO_STATUS_RECEIVED = CloseCode.NORMAL_CLOSURE, CloseCode.NO_STATUS_RECEIVED
#: The reply to a client's usual close: made once.
_NORMAL_CLOSE_FRAME = close_frame(CloseCode.NORMAL_CLOSURE, "")


def _route_done(error: BaseException | None) -> None:
    """A route run by hand ended: `_run_route` logged any failure itself; a cancellation needs nothing."""


class WebSocketProtocol(asyncio.Protocol):
    """One upgraded connection: handshake, frame parsing, and ASGI `receive`/`send` for the app."""

    __slots__ = (
        "config",
        "app_state",
        "connections",
        "tasks",
        "loop",
        "fast_path",
        "transport",
        "flow",
        "state",
        "reader",
        "scope",
        "inbox",
        "waiter",
        "close_timer",
        "fragments",
        "fragment_opcode",
        "held",
        "parse_scheduled",
        "close_code",
        "handler",
        "pending",
        "coalescer",
        "trusted",
        "_accept_key",
        "eager",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        shared = served(config)
        self.config = config
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.loop = _loop or asyncio.get_event_loop()
        self.fast_path: FastPath | None = shared.fast_path
        #: The hook's routes run by hand until they suspend (`FastPath.eager`): no Task per socket.
        self.eager = shared.eager
        self.transport: asyncio.Transport | None = None
        #: Set in `connection_made`, as the transport is.
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.state = State.HANDSHAKE
        self.reader: FrameReader | None = None
        self.scope: Scope | None = None
        self.inbox: list[Message] = []
        self.waiter: asyncio.Future[None] | None = None
        self.close_timer: asyncio.TimerHandle | None = None
        self.fragments: list[bytes] | None = None
        self.fragment_opcode = Opcode.TEXT
        #: The app asked to stop reading (`pause_reading`) and has not asked to go on yet.
        self.held = False
        #: `_parse_more` will run: whole frames wait in the reader for the next loop iteration.
        self.parse_scheduled = False
        #: The code of the close frame we sent (ours or a refusal of the peer's input), if any.
        self.close_code: int | None = None
        self.handler: FrameHandler | None = None
        #: Frames written during this loop iteration, joined into one write by the coalescer.
        self.pending: list[bytes] | None = None
        self.coalescer = coalescer_for(self.loop)
        #: uvicorn's trusted proxies, applied to the scope of a socket served through the hook.
        self.trusted: TrustedProxies | None = shared.trusted
        self._accept_key = b""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self)  # type: ignore[arg-type]
        self.transport = transport  # type: ignore[assignment]
        self.flow = FlowControl(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        self.flow.connection_lost()
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self._deliver({"type": "websocket.disconnect", "code": CloseCode.ABNORMAL_CLOSURE})
        self.reader = None
        # The handler has heard of the end; it refers back to this protocol (a cycle with the
        # transport in it), which would keep a closed socket's memory until a full collection.
        self.handler = None
        release_for(self.loop).socket_closed(self.connections)

    def data_received(self, data: bytes) -> None:
        if self.state is _HANDSHAKE:
            data = self._handshake(data)
        reader = self.reader
        if reader is None or self.state is _CLOSED or not data:
            return
        self._parse(reader, data)

    def _parse(self, reader: FrameReader, data: bytes) -> None:
        try:
            for opcode, fin, payload in reader.feed(data):
                self._on_frame(opcode, fin, payload)
                if self.state is _CLOSED:
                    return
        except FrameError as error:
            self._fail(error.code, error.reason)
            return
        if reader.error is not None:  # the frames before the violation were taken first
            self._fail(reader.error.code, reader.error.reason)
            return
        if reader.more:
            # More frames than one feed takes: the rest waits for the next loop iteration, and
            # nothing more is read meanwhile, so one socket's burst neither holds the loop nor grows.
            self.flow.pause_reading()
            if not self.held:
                self._schedule_parse()
        elif self.flow.reading_paused and not self.held:
            self.flow.resume_reading()

    def _schedule_parse(self) -> None:
        if not self.parse_scheduled:
            self.parse_scheduled = True
            self.loop.call_soon(self._parse_more)

    def _parse_more(self) -> None:
        self.parse_scheduled = False
        reader = self.reader
        if reader is not None and self.state is not _CLOSED and not self.held:
            self._parse(reader, b"")

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # uvicorn's shutdown hook

    def shutdown(self) -> None:
        if self.transport is None:
            return
        if self.state is State.OPEN:
            if self.handler is not None:
                self.handler.on_shutdown()
            else:
                self.close(CloseCode.SERVICE_RESTART, "Server shutting down")
        elif self.state is State.CONNECTING:
            self._reject(503)
        elif self.state is State.HANDSHAKE:
            self.transport.close()

    # Handshake

    def _handshake(self, data: bytes) -> bytes:
        """Parse the upgrade request, start the app; returns what followed the request head."""
        head, _, rest = data.partition(b"\r\n\r\n")
        request = parse_upgrade(head)
        if isinstance(request, Refusal):
            self._refuse(refusal(*request))
            return b""
        transport = self.transport
        assert transport is not None
        self._start(request, local_address(transport), remote_address(transport), is_ssl(transport))
        return rest

    def upgraded(
        self,
        request: UpgradeRequest,
        server: tuple[str, int] | None,
        client: tuple[str, int] | None,
        secure: bool,
        rest: bytes,
    ) -> None:
        """Take over a connection whose HTTP protocol has read and checked the upgrade request already.

        Call after `connection_made`: nothing is parsed twice, and the addresses are not asked for again.
        """
        self._start(request, server, client, secure)
        if rest and self.state is not _CLOSED:
            self.data_received(rest)

    def _start(
        self,
        request: UpgradeRequest,
        server: tuple[str, int] | None,
        client: tuple[str, int] | None,
        secure: bool,
    ) -> None:
        """Build the scope and start the app (through the hook's route if it has one)."""
        root_path = self.config.root_path
        raw_path = request.raw_path
        path = raw_path.decode("latin-1")
        scope: Scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if secure else "ws",
            "server": server,
            "client": client,
            "root_path": root_path,
            "path": root_path + (unquote(path) if "%" in path else path),
            "raw_path": root_path.encode() + raw_path if root_path else raw_path,
            "query_string": request.query,
            "headers": request.headers,
            "subprotocols": request.subprotocols,
            "state": self.app_state.copy(),
        }
        self.scope = scope
        self.state = State.CONNECTING
        self._accept_key = request.key
        # Frames a client sends before our 101 are kept for the app, not dropped.
        self.reader = FrameReader(self.config.ws_max_size)
        route = self.fast_path.websocket_route(scope) if self.fast_path is not None else None
        if route is not None and self.trusted is not None:
            forward_websocket_scope(scope, self.trusted)
        task: asyncio.Task[None] | None
        if route is None:
            self._deliver({"type": "websocket.connect"})
            task = self.loop.create_task(self._run_asgi(scope))
        elif self.eager:
            # Accepted, admitted and opened right here, unless the route suspends: no Task per socket.
            task = drive(self._run_route(route, scope), self.loop, _route_done, contextvars.copy_context())
        else:
            task = self.loop.create_task(self._run_route(route, scope))
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _reject(self, status: int, code: int = CloseCode.ABNORMAL_CLOSURE) -> None:
        """Refuse the upgrade with a plain HTTP answer; an app already started hears `code`."""
        self._refuse(reject_response(status), code)

    def _refuse(self, response: bytes, code: int = CloseCode.ABNORMAL_CLOSURE) -> None:
        assert self.transport is not None
        started = self.state is State.CONNECTING
        self.state = State.CLOSED
        self.transport.write(response)
        self.transport.close()
        if started:
            self._deliver({"type": "websocket.disconnect", "code": code})

    async def _run_route(self, route: WebSocketRoute, scope: Scope) -> None:
        """Serve the socket through the app's hook: its route accepts it and returns its handler."""
        try:
            handler = await route(scope, self)
        except Exception:
            logger.exception("exception in the WebSocket route")
            self._app_failed()
            return
        self.scope = None
        if handler is not None:
            self.attach(handler)
        else:
            self._app_returned()

    async def _run_asgi(self, scope: Scope) -> None:
        try:
            await self.config.loaded_app(scope, self.receive, self.send)
        except Exception:
            logger.exception("exception in the WebSocket application")
            self._app_failed()
            return
        self._app_returned()

    def _app_failed(self) -> None:
        if self.state is State.CONNECTING:
            self._reject(500)
        else:
            self.close(CloseCode.INTERNAL_ERROR, "")

    def _app_returned(self) -> None:
        """The app is done with the socket: refuse it if it never accepted, else close it."""
        if self.state is State.CONNECTING:
            self._reject(403)
        elif self.state is State.OPEN:
            self.close(CloseCode.NORMAL_CLOSURE, "")

    # ASGI receive / send

    async def receive(self) -> Message:
        inbox = self.inbox
        while not inbox:
            waiter = self.waiter = self.loop.create_future()
            await waiter
        message = inbox.pop(0)
        if len(inbox) < _INBOX_HIGH_WATER // 2:
            self.resume_reading()
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
        if len(self.inbox) >= _INBOX_HIGH_WATER:
            self.pause_reading()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if self.state is not State.OPEN:
                if self.state is State.CONNECTING:
                    raise RuntimeError("Expected ASGI message 'websocket.accept' before 'websocket.send'")
                raise ClientDisconnected
            text = message.get("text")
            if text is not None:
                self.write(encode_frame(Opcode.TEXT, text.encode()))
            else:
                self.write(encode_frame(Opcode.BINARY, message.get("bytes") or b""))
        elif kind == "websocket.accept":
            self.accept(message.get("subprotocol"), message.get("headers") or ())
        elif kind == "websocket.close":
            if self.state is State.CONNECTING:
                self._reject(403)
                return
            self.close(message.get("code", CloseCode.NORMAL_CLOSURE), message.get("reason") or "")

    def accept(self, subprotocol: str | None = None, headers: Any = ()) -> None:
        """Answer the upgrade with `101 Switching Protocols`: the socket is open."""
        if self.state is not State.CONNECTING or self.transport is None:
            return
        self.state = State.OPEN
        # With the frames written in this iteration (`connection_established`): one write for both.
        self.write(accept_response(self._accept_key, subprotocol, headers))
        self._accept_key = b""

    # The direct path: frames encoded once for many sockets, messages to a handler

    def attach(self, handler: FrameHandler) -> None:
        """From now on hand this socket's messages to `handler` instead of ASGI `receive`.

        The socket then needs no task, no coroutine frames and no scope while it is idle.
        """
        self.handler = handler
        pending, self.inbox = self.inbox, _NO_INBOX
        if self.held or self.flow.reading_paused:  # the inbox was full, or frames wait in the reader
            self.resume_reading()
        for message in pending:
            self._deliver(message)

    def pause_reading(self) -> None:
        """Stop reading from the socket until `resume_reading` (backpressure from the app)."""
        self.held = True
        if self.state is not _CLOSED:
            self.flow.pause_reading()

    def resume_reading(self) -> None:
        self.held = False
        if self.state is _CLOSED:
            return
        reader = self.reader
        if reader is not None and reader.more:
            self._schedule_parse()  # the frames already read go first; reading resumes after them
        else:
            self.flow.resume_reading()

    def limit_message_size(self, max_size: int) -> None:
        """Refuse (1009) any message over `max_size` bytes from now on, at the frame header."""
        if self.reader is not None:
            self.reader.max_size = max_size

    def write(self, frame: bytes) -> None:
        """Write an encoded frame (at the end of this loop iteration); dropped unless open."""
        if self.state is not _OPEN:
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
        if transport is not None and self.state is not _CLOSED:
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def close(self, code: int, reason: str = "", timeout: float = _CLOSE_TIMEOUT) -> None:
        """Send a close frame and drop the TCP connection if the peer does not answer in time."""
        if self.state is not State.OPEN or self.transport is None:
            return
        self.flush()
        self.state = State.CLOSING
        self.close_code = code
        self.transport.write(close_frame(code, reason))
        self.close_timer = self.loop.call_later(timeout, self.transport.close)

    # Frames from the client

    def _on_frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode in (_TEXT, _BINARY):
            if self.fragments is not None:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "Expected a continuation frame")
            if not fin:
                self.fragments, self.fragment_opcode = [payload], Opcode(opcode)
                return
            self._message(opcode, payload)
        elif opcode == _CONTINUATION:
            if self.fragments is None:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "Unexpected continuation frame")
            # The reader has checked the running size at each frame's header; joined once, at the end.
            self.fragments.append(payload)
            if fin:
                whole, self.fragments = b"".join(self.fragments), None
                self._message(self.fragment_opcode, whole)
        elif opcode == _PING:
            self.write(encode_frame(Opcode.PONG, payload))
        elif opcode == _CLOSE:
            self._on_close(payload)

    def _message(self, opcode: int, payload: bytes) -> None:
        if self.state is _CLOSING:
            return  # after our close frame, data frames are ignored (RFC 6455 section 1.4)
        data: str | bytes = payload
        if opcode == _TEXT:
            try:
                data = payload.decode()
            except UnicodeDecodeError:
                raise FrameError(CloseCode.INVALID_DATA, "Invalid UTF-8") from None
        handler = self.handler
        if handler is not None:
            handler.on_message(data)
        elif opcode == _TEXT:
            self._deliver({"type": "websocket.receive", "text": data})
        else:
            self._deliver({"type": "websocket.receive", "bytes": data})

    def _on_close(self, payload: bytes) -> None:
        code: int = CloseCode.NO_STATUS_RECEIVED
        if payload:
            if len(payload) == 1:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "Close frame with a one-byte payload")
            code = int.from_bytes(payload[:2], "big")
            if not is_peer_close_code(code):
                raise FrameError(CloseCode.PROTOCOL_ERROR, "Invalid close code")
            try:
                payload[2:].decode()
            except UnicodeDecodeError:
                raise FrameError(CloseCode.INVALID_DATA, "Invalid UTF-8 in the close reason") from None
        if self.state is _OPEN and self.transport is not None:
            self.flush()
            # The peer's code is echoed; a close without one is answered as a normal closure.
            normal = code in (_NORMAL_CLOSURE, _NO_STATUS_RECEIVED)
            self.transport.write(_NORMAL_CLOSE_FRAME if normal else close_frame(code, ""))
        self.state = State.CLOSED
        self._deliver({"type": "websocket.disconnect", "code": code})
        if self.transport is not None:
            self.transport.close()

    def _fail(self, code: CloseCode, reason: str) -> None:
        # The rest of the stream cannot be parsed, so the peer's close reply will not be seen:
        # give it a moment to read our close frame, then drop the connection.
        if self.state is State.CLOSED:
            return
        if self.state is State.CONNECTING:
            self._reject(400, code)
            return
        if self.state is State.CLOSING and self.transport is not None:
            self.transport.close()  # our close frame is out already: nothing more to say
        self.close(code, reason, _FAIL_TIMEOUT)
        self.state = State.CLOSED
        if self.reader is not None:
            self.reader.buffer = bytearray()  # nothing more is parsed: let go of what was read
        self._deliver({"type": "websocket.disconnect", "code": code})
