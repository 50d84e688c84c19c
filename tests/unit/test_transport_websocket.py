"""`WebSocketProtocol` over a fake transport: client frames in, the exact server bytes out.

Server frames are unmasked, so every byte the protocol writes is known in advance; client frames are
built by `tests.support.fake_transport.client_frame`, independently of `revurb.transport.codec`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from revurb.transport.hook import FrameHandler, Scope
from revurb.transport.websocket import State, WebSocketProtocol
from tests.support.fake_apps import FakeFastPath, HookedApp, Receive, RecordingHandler, Send, SocketApp
from tests.support.fake_transport import ClockLoop, client_frame, close_payload, server_frame, settle
from tests.support.transport_fixtures import (
    ACCEPTED,
    SAMPLE_KEY,
    OpenedWebSocket,
    open_websocket,
    refused,
    upgrade_request,
)

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def closing(code: int, reason: bytes = b"") -> bytes:
    """The close frame the server writes."""
    return server_frame(CLOSE, close_payload(code, reason))


def state(opened: OpenedWebSocket) -> State:
    """The protocol's state, read afresh (mypy would keep what an earlier assert narrowed it to)."""
    return opened.protocol.state


def disconnect(code: int) -> dict[str, Any]:
    return {"type": "websocket.disconnect", "code": code}


def text(data: str) -> dict[str, Any]:
    return {"type": "websocket.receive", "text": data}


async def accepted(app: Any, clock: ClockLoop, **options: Any) -> OpenedWebSocket:
    """A socket past its handshake (the 101 taken from the transport's record)."""
    opened = open_websocket(app, clock, **options)
    opened.feed(upgrade_request())
    await settle()
    assert opened.transport.take() == ACCEPTED
    assert state(opened) is State.OPEN
    return opened


# The handshake


async def test_the_handshake_answers_101_with_the_accept_value_of_rfc_6455(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = open_websocket(app, clock)
    assert state(opened) is State.HANDSHAKE

    opened.feed(upgrade_request("/ws?x=1", headers=[("sec-websocket-protocol", "a, b")]))
    assert state(opened) is State.CONNECTING
    assert opened.transport.data == b""  # nothing before the app accepts
    await settle()

    assert opened.transport.writes == [ACCEPTED]
    assert state(opened) is State.OPEN
    assert app.scope is not None
    assert (app.scope["path"], app.scope["query_string"], app.scope["scheme"]) == ("/ws", b"x=1", "ws")
    assert app.scope["subprotocols"] == ["a", "b"]
    assert app.scope["client"] == ("127.0.0.1", 50_000)
    assert (b"sec-websocket-key", SAMPLE_KEY) in app.scope["headers"]
    assert app.received == [{"type": "websocket.connect"}]


async def test_the_app_may_pick_a_subprotocol_and_add_headers(clock: ClockLoop) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "b", "headers": [(b"x-one", b"1")]})

    opened = open_websocket(app, clock)
    opened.feed(upgrade_request(headers=[("sec-websocket-protocol", "a, b")]))
    await settle()

    assert opened.transport.writes[0] == ACCEPTED[:-2] + b"Sec-WebSocket-Protocol: b\r\nx-one: 1\r\n\r\n"


NO_KEY = refused(b"400 Bad Request", b"Missing or invalid Sec-WebSocket-Key.")


@pytest.mark.parametrize(
    ("request_head", "answer"),
    [
        (upgrade_request(key=None), NO_KEY),
        (upgrade_request(key=b"c2hvcnQ="), NO_KEY),  # 5 bytes, not 16
        (upgrade_request(key=b"not base64!!not base64!!"), NO_KEY),
        (
            upgrade_request(ws_version="12"),
            refused(b"426 Upgrade Required", b"Unsupported WebSocket version.", b"sec-websocket-version: 13"),
        ),
        (
            upgrade_request(ws_version=None),
            refused(b"426 Upgrade Required", b"Unsupported WebSocket version.", b"sec-websocket-version: 13"),
        ),
        (
            upgrade_request(method="POST"),
            refused(b"400 Bad Request", b"A WebSocket handshake must be a GET request."),
        ),
        (b"GET /ws\r\nhost: x\r\n\r\n", refused(b"400 Bad Request", b"Invalid HTTP request received.")),
    ],
    ids=["no-key", "short-key", "bad-key", "version-12", "no-version", "post", "no-http-version"],
)
async def test_a_handshake_the_rfc_does_not_allow_is_refused(
    clock: ClockLoop, request_head: bytes, answer: bytes
) -> None:
    app = SocketApp()
    opened = open_websocket(app, clock)
    opened.feed(request_head)
    await settle()

    assert opened.transport.writes == [answer]
    assert opened.transport.closed
    assert state(opened) is State.CLOSED
    assert app.scope is None


async def test_an_app_that_returns_without_accepting_refuses_with_403(clock: ClockLoop) -> None:
    app = SocketApp(accept=False)
    opened = open_websocket(app, clock)
    opened.feed(upgrade_request())
    await settle()

    assert opened.transport.writes == [FORBIDDEN]
    assert opened.transport.closed


async def test_an_app_that_fails_before_accepting_gets_a_500(clock: ClockLoop) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    opened = open_websocket(app, clock)
    opened.feed(upgrade_request())
    await settle()

    assert opened.transport.writes == [
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ]


async def test_a_bad_frame_before_the_app_accepts_refuses_the_handshake(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = open_websocket(app, clock)
    opened.feed(upgrade_request() + client_frame(TEXT, b"x", mask=b""))
    await settle()

    assert opened.transport.writes == [BAD_REQUEST]
    assert state(opened) is State.CLOSED
    assert app.received == [{"type": "websocket.connect"}, disconnect(1002)]


# Every state, every way out


async def test_our_close_walks_open_closing_closed_when_the_peer_answers(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.protocol.close(1000, "bye")
    assert state(opened) is State.CLOSING
    assert opened.transport.take() == closing(1000, b"bye")
    assert clock.pending_timers() == [5.0]
    opened.feed(client_frame(CLOSE, close_payload(1000)))
    assert state(opened) is State.CLOSED
    assert opened.transport.closed
    await settle()

    assert opened.transport.data == b""  # the peer's close was the answer to ours: no reply
    assert app.received[-1] == disconnect(1000)
    assert clock.pending_timers() == []
    assert list(opened.server_state.connections) == []


async def test_our_close_drops_the_connection_when_the_peer_never_answers(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.protocol.close(1001, "", timeout=5)
    clock.advance(4.9)
    assert not opened.transport.closed
    clock.advance(0.1)
    assert opened.transport.closed
    await settle()

    assert state(opened) is State.CLOSED
    assert app.received[-1] == disconnect(1006)


async def test_a_peer_close_is_echoed_then_the_connection_closes(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(client_frame(CLOSE, close_payload(1001, b"going")))
    await settle()

    assert opened.transport.writes == [closing(1001)]
    assert opened.transport.closed
    assert state(opened) is State.CLOSED
    assert app.received[-1] == disconnect(1001)


async def test_a_peer_close_without_a_code_is_answered_1000_and_reported_1005(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(client_frame(CLOSE, b""))
    await settle()

    assert opened.transport.writes == [closing(1000)]
    assert app.received[-1] == disconnect(1005)


async def test_a_protocol_error_fails_the_connection_with_its_code(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(client_frame(TEXT, b"x", mask=b""))
    assert state(opened) is State.CLOSED
    assert opened.transport.take() == closing(1002, b"Client frames must be masked")
    opened.feed(client_frame(TEXT, b"after"))  # nothing is read after a failure
    clock.advance(0.49)
    assert not opened.transport.closed
    clock.advance(0.01)
    assert opened.transport.closed
    await settle()

    assert app.received[1:] == [disconnect(1002)]
    assert opened.transport.data == b""


async def test_a_lost_connection_is_an_abnormal_closure(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.transport.lose(ConnectionResetError())
    await settle()

    assert state(opened) is State.CLOSED
    assert app.received[1:] == [disconnect(1006)]
    assert app.done.is_set()
    assert list(opened.server_state.connections) == []


# Frames


async def test_fragments_make_one_message_and_control_frames_may_come_between(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(
        client_frame(TEXT, b"he", fin=False)
        + client_frame(PING, b"p")
        + client_frame(CONTINUATION, b"ll", fin=False)
        + client_frame(CONTINUATION, b"o")
        + client_frame(BINARY, b"\x00\x01", fin=False)
        + client_frame(CONTINUATION, b"\x02")
    )
    await settle()

    assert app.received[1:] == [text("hello"), {"type": "websocket.receive", "bytes": b"\x00\x01\x02"}]
    assert opened.transport.writes == [server_frame(PONG, b"p")]


async def test_utf_8_is_checked_on_the_whole_message_not_per_fragment(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(
        client_frame(TEXT, "é".encode()[:1], fin=False) + client_frame(CONTINUATION, "é".encode()[1:])
    )
    await settle()

    assert app.received[1:] == [text("é")]


async def test_a_ping_is_answered_with_a_pong_of_the_same_payload(clock: ClockLoop) -> None:
    opened = await accepted(SocketApp(), clock)
    opened.feed(client_frame(PING, b"are you there"))
    await settle()

    assert opened.transport.writes == [server_frame(PONG, b"are you there")]


@pytest.mark.parametrize(
    ("stream", "code", "reason"),
    [
        (client_frame(TEXT, b"\xff\xfe"), 1007, b"Invalid UTF-8"),
        (client_frame(BINARY, b"x" * 101), 1009, b"Message too big"),
        (
            client_frame(TEXT, b"x" * 60, fin=False) + client_frame(CONTINUATION, b"x" * 60),
            1009,
            b"Message too big",
        ),
        (client_frame(CONTINUATION, b"x"), 1002, b"Unexpected continuation frame"),
        (
            client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"),
            1002,
            b"Expected a continuation frame",
        ),
        (client_frame(0x3, b""), 1002, b"Unknown opcode"),
        (client_frame(TEXT, b"x", rsv=0x40), 1002, b"Reserved bits set without a negotiated extension"),
        (client_frame(PING, b"x" * 126), 1002, b"Invalid control frame"),
        (client_frame(PING, b"x", fin=False), 1002, b"Invalid control frame"),
    ],
    ids=[
        "invalid-utf8",
        "frame-too-big",
        "message-too-big",
        "stray-continuation",
        "data-inside-fragments",
        "reserved-opcode",
        "reserved-bit",
        "long-control",
        "fragmented-control",
    ],
)
async def test_bad_input_is_refused_with_the_rfc_close_code(
    clock: ClockLoop, stream: bytes, code: int, reason: bytes
) -> None:
    app = SocketApp()
    opened = await accepted(app, clock, ws_max_size=100)

    opened.feed(stream)
    await settle()

    assert opened.transport.writes == [closing(code, reason)]
    assert app.received[1:] == [disconnect(code)]


async def test_data_frames_are_ignored_while_closing_and_no_pong_goes_out(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)
    opened.protocol.close(1000)
    opened.transport.take()

    opened.feed(client_frame(TEXT, b"late") + client_frame(PING, b"p"))
    await settle()
    assert opened.transport.data == b""
    assert app.received[1:] == []
    opened.feed(client_frame(CLOSE, close_payload(1000)))
    await settle()

    assert app.received[1:] == [disconnect(1000)]
    assert state(opened) is State.CLOSED


# ASGI receive / send


async def test_the_app_sends_text_and_bytes_as_frames(clock: ClockLoop) -> None:
    app = SocketApp(echo=True)
    opened = await accepted(app, clock)

    opened.feed(client_frame(TEXT, b"hi") + client_frame(BINARY, b"\x01" * 200))
    await settle()

    assert opened.transport.data == server_frame(TEXT, b"hi") + server_frame(BINARY, b"\x01" * 200)


async def test_sending_before_accepting_or_after_the_close_raises(clock: ClockLoop) -> None:
    errors: list[type[BaseException]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await send({"type": "websocket.send", "text": "too soon"})
        except RuntimeError as error:
            errors.append(type(error))
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as error:
            errors.append(type(error))

    opened = open_websocket(app, clock)
    opened.feed(upgrade_request())
    await settle()

    assert errors[0] is RuntimeError
    assert errors[1].__name__ == "ClientDisconnected"
    assert opened.transport.writes == [ACCEPTED, closing(4001, b"bye")]


class GatedApp:
    """Accepts, then takes one message per `allow()`: the test decides how far behind the app is."""

    def __init__(self) -> None:
        self.gate = asyncio.Semaphore(0)
        self.received: list[dict[str, Any]] = []

    def allow(self, count: int) -> None:
        for _ in range(count):
            self.gate.release()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            await self.gate.acquire()
            message = await receive()
            self.received.append(message)
            if message["type"] == "websocket.disconnect":
                return


async def test_an_app_that_falls_behind_pauses_reading_at_64_and_resumes_at_32(clock: ClockLoop) -> None:
    app = GatedApp()
    opened = await accepted(app, clock)

    opened.feed(b"".join(client_frame(TEXT, b"%d" % index) for index in range(63)))
    assert not opened.transport.reading_paused
    opened.feed(client_frame(TEXT, b"63"))
    assert opened.transport.reading_paused
    app.allow(32)
    await settle(100)
    assert opened.transport.reading_paused  # 32 still queued
    app.allow(1)
    await settle()
    assert not opened.transport.reading_paused
    app.allow(31)
    await settle(100)

    assert app.received == [text(str(index)) for index in range(64)]
    assert (opened.transport.pauses, opened.transport.resumes) == (1, 1)


# The direct path: a route, then a frame handler


class Route:
    """A WebSocket route that accepts, then hands the socket to a handler once the test says so."""

    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.release = asyncio.Event()
        self.sockets: list[WebSocketProtocol] = []

    async def __call__(self, scope: Scope, socket: WebSocketProtocol) -> FrameHandler | None:
        self.sockets.append(socket)
        socket.accept()
        await self.release.wait()
        return self.handler


def hooked(route: Route) -> HookedApp:
    fast_path = FakeFastPath()
    fast_path.websocket_routes["/ws"] = route
    return HookedApp(fast_path, SocketApp())


async def test_a_handler_attached_late_gets_the_messages_that_came_before_it_in_order(
    clock: ClockLoop,
) -> None:
    route = Route()
    app = hooked(route)
    opened = open_websocket(app, clock)

    opened.feed(upgrade_request() + client_frame(TEXT, b"one"))
    await settle()
    assert opened.transport.take() == ACCEPTED
    opened.feed(client_frame(BINARY, b"two"))
    route.release.set()
    await settle()
    assert route.handler.messages == ["one", b"two"]
    opened.feed(client_frame(TEXT, b"three"))
    opened.transport.lose()

    assert route.handler.messages == ["one", b"two", "three"]
    assert route.handler.disconnects == 1
    assert app.calls == 0
    assert opened.tasks() == set()


async def test_an_eager_route_that_does_not_suspend_opens_the_socket_with_no_task(clock: ClockLoop) -> None:
    handler = RecordingHandler()

    async def route(scope: Scope, socket: WebSocketProtocol) -> FrameHandler | None:
        socket.accept()
        return handler

    fast_path = FakeFastPath(eager=True)
    fast_path.websocket_routes["/ws"] = route
    opened = open_websocket(HookedApp(fast_path, SocketApp()), clock)

    opened.feed(upgrade_request() + client_frame(TEXT, b"first"))

    # Accepted, attached and handed the frame that came with the upgrade, all within the read.
    assert opened.tasks() == set()
    assert handler.messages == ["first"]
    await settle()
    assert opened.transport.take() == ACCEPTED


async def test_an_eager_route_that_suspends_goes_on_in_a_task(clock: ClockLoop) -> None:
    route = Route()
    fast_path = FakeFastPath(eager=True)
    fast_path.websocket_routes["/ws"] = route
    opened = open_websocket(HookedApp(fast_path, SocketApp()), clock)

    opened.feed(upgrade_request())
    assert len(opened.tasks()) == 1
    route.release.set()
    await settle()

    assert opened.tasks() == set()
    assert route.sockets[0].handler is route.handler


async def test_a_lost_socket_lets_go_of_its_handler_so_no_cycle_keeps_it(clock: ClockLoop) -> None:
    route = Route()
    opened = open_websocket(hooked(route), clock)
    opened.feed(upgrade_request())
    route.release.set()
    await settle()
    socket = route.sockets[0]
    assert socket.handler is route.handler

    opened.transport.lose()

    assert route.handler.disconnects == 1
    assert socket.handler is None


async def test_attach_resumes_reading_that_the_inbox_had_paused(clock: ClockLoop) -> None:
    route = Route()
    opened = open_websocket(hooked(route), clock)
    opened.feed(upgrade_request())
    await settle()

    opened.feed(b"".join(client_frame(TEXT, b"m") for _ in range(64)))
    assert opened.transport.reading_paused
    route.release.set()
    await settle()

    assert not opened.transport.reading_paused
    assert route.handler.messages == ["m"] * 64


async def test_writes_in_one_loop_iteration_leave_in_one_transport_write(clock: ClockLoop) -> None:
    route = Route()
    route.release.set()
    opened = open_websocket(hooked(route), clock)
    opened.feed(upgrade_request())
    await settle()
    opened.transport.take()
    socket = route.sockets[0]

    socket.write(server_frame(TEXT, b"a"))
    socket.write(server_frame(TEXT, b"b"))
    assert opened.transport.writes == []
    await asyncio.sleep(0)
    socket.write(server_frame(TEXT, b"c"))
    await asyncio.sleep(0)

    assert opened.transport.writes == [
        server_frame(TEXT, b"a") + server_frame(TEXT, b"b"),
        server_frame(TEXT, b"c"),
    ]


async def test_a_route_that_fails_after_accepting_closes_with_1011(clock: ClockLoop) -> None:
    async def route(scope: Scope, socket: WebSocketProtocol) -> FrameHandler | None:
        socket.accept()
        raise RuntimeError("boom")

    fast_path = FakeFastPath()
    fast_path.websocket_routes["/ws"] = route
    opened = open_websocket(HookedApp(fast_path, SocketApp()), clock)
    opened.feed(upgrade_request())
    await settle()

    assert opened.transport.writes == [ACCEPTED, closing(1011)]


# Shutdown


async def test_shutdown_asks_the_handler_to_say_goodbye(clock: ClockLoop) -> None:
    route = Route()
    route.release.set()
    opened = open_websocket(hooked(route), clock)
    opened.feed(upgrade_request())
    await settle()
    opened.transport.take()

    opened.protocol.shutdown()

    assert route.handler.shutdowns == 1
    assert opened.transport.writes == []
    assert state(opened) is State.OPEN


async def test_shutdown_without_a_handler_closes_with_1012(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.protocol.shutdown()

    assert state(opened) is State.CLOSING
    assert opened.transport.writes == [closing(1012, b"Server shutting down")]


async def test_shutdown_drops_a_socket_before_its_handshake(clock: ClockLoop) -> None:
    opened = open_websocket(SocketApp(), clock)

    opened.protocol.shutdown()

    assert opened.transport.closed
    assert opened.transport.writes == []


async def test_shutdown_drops_a_socket_the_app_has_not_accepted_yet(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = open_websocket(app, clock)
    opened.feed(upgrade_request())
    assert state(opened) is State.CONNECTING

    opened.protocol.shutdown()
    await settle()

    assert opened.transport.closed
    assert opened.transport.writes == [
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ]
    assert state(opened) is State.CLOSED
    assert app.received == [{"type": "websocket.connect"}, disconnect(1006)]


# Hostile input (issue 13): close codes, fragments, limits at the header, bounded work per read

VALID_PEER_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
INVALID_PEER_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_PEER_CODES)
async def test_a_valid_close_code_is_echoed(clock: ClockLoop, code: int) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(client_frame(CLOSE, close_payload(code, "reason é".encode())))
    await settle()

    assert opened.transport.writes == [closing(code)]
    assert app.received[1:] == [disconnect(code)]


@pytest.mark.parametrize("code", INVALID_PEER_CODES)
async def test_an_invalid_close_code_is_answered_1002(clock: ClockLoop, code: int) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(client_frame(CLOSE, close_payload(code)))
    await settle()

    assert opened.transport.writes == [closing(1002, b"Invalid close code")]
    assert app.received[1:] == [disconnect(1002)]


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"\x03", 1002, b"Close frame with a one-byte payload"),
        (close_payload(1000, b"\xff"), 1007, b"Invalid UTF-8 in the close reason"),
        (close_payload(1000, "é".encode()[:1]), 1007, b"Invalid UTF-8 in the close reason"),
    ],
)
async def test_a_malformed_close_payload_is_refused(
    clock: ClockLoop, payload: bytes, code: int, reason: bytes
) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(client_frame(CLOSE, payload))
    await settle()

    assert opened.transport.writes == [closing(code, reason)]
    assert app.received[1:] == [disconnect(code)]


async def test_an_invalid_close_answering_ours_drops_the_connection_at_once(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)
    opened.protocol.close(1000)

    opened.feed(client_frame(CLOSE, close_payload(1005)))

    assert opened.transport.closed
    assert opened.transport.writes == [closing(1000)]
    await settle()
    assert app.received[1:] == [disconnect(1002)]


async def test_frames_after_a_close_in_the_same_read_are_not_delivered(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock)

    opened.feed(client_frame(CLOSE, close_payload(1000)) + client_frame(TEXT, b"ghost"))
    await settle()

    assert app.received[1:] == [disconnect(1000)]


async def test_thirty_thousand_one_byte_fragments_make_one_message(clock: ClockLoop) -> None:
    route = Route()
    route.release.set()
    opened = open_websocket(hooked(route), clock, ws_max_size=40_000)
    opened.feed(upgrade_request())
    await settle()

    count = 30_000
    stream = b"".join(client_frame(CONTINUATION, b"x", fin=False) for _ in range(count - 2))
    opened.feed(client_frame(TEXT, b"[", fin=False) + stream + client_frame(CONTINUATION, b"]"))
    await settle(400)

    assert route.handler.messages == ["[" + "x" * (count - 2) + "]"]


async def test_a_fragment_that_takes_the_message_over_the_limit_is_refused_at_its_header(
    clock: ClockLoop,
) -> None:
    app = SocketApp()
    opened = await accepted(app, clock, ws_max_size=100)
    opened.feed(client_frame(TEXT, b"x" * 60, fin=False))
    header_only = client_frame(CONTINUATION, b"y" * 41)[:6]

    opened.feed(header_only)

    assert opened.transport.writes == [closing(1009, b"Message too big")]
    assert opened.protocol.reader is not None and opened.protocol.reader.buffer == bytearray()


async def test_a_frame_declaring_more_than_the_limit_is_refused_before_its_payload(clock: ClockLoop) -> None:
    app = SocketApp()
    opened = await accepted(app, clock, ws_max_size=10_000)

    opened.feed(client_frame(BINARY, b"", length=1_000_000)[:14] + b"x" * 50_000)

    assert opened.transport.writes == [closing(1009, b"Message too big")]
    assert opened.protocol.reader is not None and opened.protocol.reader.buffer == bytearray()
    await settle()
    assert app.received[1:] == [disconnect(1009)]


async def test_a_route_may_lower_the_message_limit_of_its_socket(clock: ClockLoop) -> None:
    async def route(scope: Scope, socket: WebSocketProtocol) -> FrameHandler | None:
        socket.accept()
        socket.limit_message_size(5)
        return RecordingHandler()

    fast_path = FakeFastPath()
    fast_path.websocket_routes["/ws"] = route
    opened = open_websocket(HookedApp(fast_path, SocketApp()), clock)
    opened.feed(upgrade_request())
    await settle()

    opened.feed(client_frame(TEXT, b"12345") + client_frame(TEXT, b"123456"))
    await settle()

    assert opened.transport.writes == [ACCEPTED, closing(1009, b"Message too big")]


async def test_one_read_of_many_frames_is_parsed_a_batch_per_loop_iteration(clock: ClockLoop) -> None:
    route = Route()
    route.release.set()
    opened = open_websocket(hooked(route), clock)
    opened.feed(upgrade_request())
    await settle()

    opened.feed(b"".join(client_frame(TEXT, b"%d" % index) for index in range(1000)))
    assert route.handler.messages == [str(index) for index in range(256)]
    assert opened.transport.reading_paused
    await asyncio.sleep(0)
    assert len(route.handler.messages) == 512
    await settle()

    assert route.handler.messages == [str(index) for index in range(1000)]
    assert not opened.transport.reading_paused


async def test_frames_read_while_the_app_is_behind_wait_in_the_reader_not_the_inbox(clock: ClockLoop) -> None:
    app = GatedApp()
    opened = await accepted(app, clock)

    opened.feed(b"".join(client_frame(TEXT, b"%d" % index) for index in range(600)))
    await settle()
    assert len(opened.protocol.inbox) == 256  # one batch; the reader holds the rest
    app.allow(600)
    await settle(400)

    assert app.received == [text(str(index)) for index in range(600)]
    assert not opened.transport.reading_paused
