"""`HttpProtocol` over a fake transport: bytes in, the exact bytes out, no socket and no Revurb app."""

from __future__ import annotations

import asyncio
import http
from typing import Any

import pytest
from uvicorn.server import ServerState

from revurb.transport.deadlines import Deadlines, deadlines_for
from revurb.transport.hook import FrameHandler, HttpAnswer, Limits, RequestHead, Scope
from revurb.transport.http import _FEED_SLICE, HIGH_WATER
from revurb.transport.websocket import State, WebSocketProtocol
from tests.support.fake_apps import (
    EchoApp,
    FakeFastPath,
    HookedApp,
    Receive,
    RecordingHandler,
    Send,
    SocketApp,
    respond,
)
from tests.support.fake_transport import LOCAL, PEER, ClockLoop, client_frame, settle
from tests.support.transport_fixtures import (
    ACCEPTED,
    SAMPLE_KEY,
    OpenedHttp,
    http_request,
    open_http,
    refused,
    upgrade_request,
)


def ok(body: bytes, *extra: bytes) -> bytes:
    """EchoApp's answer: status line, content-length, any extra header lines, then the body."""
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), b"".join(extra), body)


CLOSE = b"connection: close\r\n"


class GatedApp(EchoApp):
    """EchoApp that holds requests to `/slow` until the test releases them."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            await self.gate.wait()
        await super().__call__(scope, receive, send)


# Keep-alive, pipelining, HTTP/1.0, HEAD


async def test_a_keep_alive_connection_answers_one_request_after_another(clock: ClockLoop) -> None:
    app = EchoApp()
    opened = open_http(app, clock)

    opened.feed(http_request("GET", "/one"))
    await settle()
    assert opened.transport.take() == ok(b"GET /one ")
    opened.feed(http_request("POST", "/two", b"hi"))
    await settle()

    assert opened.transport.take() == ok(b"POST /two hi")
    assert not opened.transport.closed
    assert [scope["http_version"] for scope in app.scopes] == ["1.1", "1.1"]
    # The connection's keep-alive timer, and the loop's first-head timer, which will find nobody waiting.
    assert clock.pending_timers() == [5.0, 20.0]


async def test_an_idle_keep_alive_connection_closes_after_its_timeout(clock: ClockLoop) -> None:
    opened = open_http(EchoApp(), clock, timeout_keep_alive=5)
    opened.feed(http_request())
    await settle()

    clock.advance(3)
    opened.feed(http_request())
    await settle()
    clock.advance(2)  # the first timer fires, sees a request two seconds ago, waits three more
    assert not opened.transport.closed
    clock.advance(2.9)
    assert not opened.transport.closed
    clock.advance(0.1)

    assert opened.transport.closed
    assert opened.transport.data == ok(b"GET / ") * 2


async def test_a_read_full_of_tiny_requests_is_parsed_a_slice_at_a_time(clock: ClockLoop) -> None:
    app = GatedApp()
    opened = open_http(app, clock)
    tiny = b"GET / HTTP/1.1\r\n\r\n"

    opened.feed(http_request("GET", "/slow") + tiny * 10_000)  # 190 KB of requests in one read

    assert opened.transport.reading_paused
    assert len(opened.protocol.queue) <= _FEED_SLICE // len(tiny) + 1  # one slice parsed, not 10,000
    app.gate.set()
    for _ in range(100):
        if opened.transport.data.count(b"HTTP/1.1 200 OK") == 10_001:
            break
        await settle(1_000)

    assert opened.transport.data.count(b"HTTP/1.1 200 OK") == 10_001
    assert not opened.transport.reading_paused


async def test_pipelined_requests_are_answered_in_order_one_at_a_time(clock: ClockLoop) -> None:
    app = GatedApp()
    opened = open_http(app, clock)

    opened.feed(http_request("GET", "/slow") + http_request("GET", "/a") + http_request("POST", "/b", b"x"))
    await settle()
    assert opened.transport.data == b""
    assert [scope["path"] for scope in app.scopes] == []
    app.gate.set()
    await settle()

    assert opened.transport.data == ok(b"GET /slow ") + ok(b"GET /a ") + ok(b"POST /b x")
    assert [scope["path"] for scope in app.scopes] == ["/slow", "/a", "/b"]


async def test_too_many_pipelined_requests_pause_reading_until_the_queue_drains(clock: ClockLoop) -> None:
    app = GatedApp()
    opened = open_http(app, clock)

    opened.feed(http_request("GET", "/slow") + http_request() * 16)
    assert opened.transport.reading_paused
    app.gate.set()
    await settle(200)

    assert not opened.transport.reading_paused
    assert opened.transport.data == ok(b"GET /slow ") + ok(b"GET / ") * 16


async def test_http_1_0_gets_its_answer_with_connection_close_then_the_close(clock: ClockLoop) -> None:
    app = EchoApp()
    opened = open_http(app, clock)

    opened.feed(http_request(version="1.0"))
    await settle()

    assert opened.transport.data == ok(b"GET / ", CLOSE)
    assert opened.transport.closed
    assert app.scopes[0]["http_version"] == "1.0"


async def test_a_client_asking_for_close_gets_it(clock: ClockLoop) -> None:
    opened = open_http(EchoApp(), clock)
    opened.feed(http_request(headers=[("connection", "close")]))
    await settle()

    assert opened.transport.data == ok(b"GET / ", CLOSE)
    assert opened.transport.closed


async def test_head_gets_the_headers_of_get_and_no_body(clock: ClockLoop) -> None:
    opened = open_http(EchoApp(), clock)
    opened.feed(http_request("HEAD"))
    await settle()

    assert opened.transport.data == b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n"
    assert not opened.transport.closed


# Bodies: chunked, streamed, flow control


async def test_a_chunked_request_body_arrives_whole(clock: ClockLoop) -> None:
    app = EchoApp()
    opened = open_http(app, clock)

    opened.feed(b"POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
    await settle()
    assert opened.transport.data == b""  # a small body is read whole before the app starts
    opened.feed(b"6\r\n world\r\n0\r\n\r\n")
    await settle()

    assert app.bodies == [b"hello world"]
    assert opened.transport.data == ok(b"POST /c hello world")


async def test_a_response_without_length_is_sent_chunked_as_the_app_streams_it(clock: ClockLoop) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await send({"type": "http.response.body", "body": b" world", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    opened = open_http(app, clock)
    opened.feed(http_request())
    await settle()

    assert opened.transport.writes == [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n",
        b"6\r\n world\r\n",
        b"0\r\n\r\n",
    ]
    assert not opened.transport.closed


async def test_a_large_body_is_streamed_and_reading_pauses_at_the_high_water_mark(clock: ClockLoop) -> None:
    parts: list[tuple[int, bool]] = []
    reads = asyncio.Semaphore(0)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            await reads.acquire()
            message = await receive()
            parts.append((len(message["body"]), message["more_body"]))
            if not message["more_body"]:
                break
        await respond(send, 204, b"")

    opened = open_http(app, clock)
    head = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 300000\r\n\r\n"

    opened.feed(head + b"a" * (HIGH_WATER - 1))
    assert not opened.transport.reading_paused
    opened.feed(b"a" * 2)
    assert opened.transport.reading_paused  # past the mark, and the app has taken nothing yet
    reads.release()
    await settle()
    assert parts == [(HIGH_WATER + 1, True)]
    assert not opened.transport.reading_paused
    # The rest in one read: parsed a slice at a time, never more than the mark (and a slice) held.
    opened.feed(b"b" * (300_000 - HIGH_WATER - 1))
    assert opened.transport.reading_paused
    for _ in range(20):
        if not parts[-1][1]:
            break
        reads.release()
        await settle()

    assert sum(size for size, _ in parts) == 300_000
    assert [more for _, more in parts] == [True] * (len(parts) - 1) + [False]
    assert max(size for size, _ in parts) <= HIGH_WATER + _FEED_SLICE
    assert not opened.transport.reading_paused
    assert opened.transport.data == b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


async def test_when_asyncio_pauses_writing_send_waits_for_the_drain(clock: ClockLoop) -> None:
    sent: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        sent.append("head")
        await send({"type": "http.response.body", "body": b"ok"})
        sent.append("body")

    opened = open_http(app, clock)
    opened.protocol.pause_writing()
    opened.feed(http_request())
    await settle()
    assert sent == []
    assert opened.transport.data == b""

    opened.protocol.resume_writing()
    await settle()

    assert sent == ["head", "body"]
    assert opened.transport.data == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_expect_100_continue_is_answered_when_the_app_reads_the_body(clock: ClockLoop) -> None:
    app = EchoApp()
    opened = open_http(app, clock)

    opened.feed(b"POST /e HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n")
    await settle()
    assert opened.transport.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    opened.feed(b"hello")
    await settle()

    assert opened.transport.data == ok(b"POST /e hello")


async def test_an_app_that_answers_without_reading_sends_no_100_continue(clock: ClockLoop) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 417, b"")

    opened = open_http(app, clock)
    opened.feed(b"POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n")
    await settle()

    assert opened.transport.data == b"HTTP/1.1 417 Expectation Failed\r\ncontent-length: 0\r\n\r\n"


# Refusals


async def test_a_request_head_over_the_limit_is_refused_with_431(clock: ClockLoop) -> None:
    opened = open_http(EchoApp(), clock)
    opened.feed(b"GET / HTTP/1.1\r\nhost: x\r\ncookie: " + b"c" * 20_000 + b"\r\n\r\n")

    assert opened.transport.data == (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 25\r\nconnection: close\r\n\r\nRequest header too large."
    )
    assert opened.transport.closed


async def test_a_malformed_request_is_refused_with_400(clock: ClockLoop) -> None:
    app = EchoApp()
    opened = open_http(app, clock)
    opened.feed(b"NOT HTTP AT ALL\r\n\r\n")

    assert opened.transport.data == (
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 30\r\nconnection: close\r\n\r\nInvalid HTTP request received."
    )
    assert opened.transport.closed
    assert app.scopes == []


async def test_an_app_that_fails_before_answering_gets_a_500(clock: ClockLoop) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    opened = open_http(app, clock)
    opened.feed(http_request())
    await settle()

    assert opened.transport.data == (
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
    )
    assert opened.transport.closed


async def test_over_the_concurrency_limit_a_request_gets_503(clock: ClockLoop) -> None:
    opened = open_http(EchoApp(), clock, limit_concurrency=1)
    opened.feed(http_request())
    await settle()

    assert opened.transport.data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert opened.transport.data.endswith(b"\r\n\r\nService Unavailable")


# The upgrade


async def test_an_upgrade_hands_the_head_and_the_bytes_after_it_to_the_websocket_protocol(
    clock: ClockLoop,
) -> None:
    app = SocketApp()
    opened = open_http(app, clock)

    opened.feed(upgrade_request("/ws") + client_frame(0x1, b"early"))
    await settle()

    socket = opened.transport.protocol
    assert isinstance(socket, WebSocketProtocol)
    assert socket.state is State.OPEN
    assert [id(protocol) for protocol in opened.server_state.connections] == [id(socket)]
    assert opened.transport.data == ACCEPTED
    assert app.scope is not None and app.scope["path"] == "/ws"
    assert app.received == [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "early"}]


async def test_an_upgrade_with_nothing_to_answer_first_changes_hands_at_once_and_keeps_reading(
    clock: ClockLoop,
) -> None:
    app = SocketApp()
    opened = open_http(app, clock)

    opened.feed(
        upgrade_request(
            "/ws%20x?protocol=7",
            headers=[
                ("sec-websocket-protocol", "chat, , superchat"),
                ("sec-websocket-extensions", "permessage-deflate"),
                ("origin", "https://example.org"),
            ],
        )
    )

    # In the same callback: the socket is the WebSocket protocol's, and reading never paused.
    socket = opened.transport.protocol
    assert isinstance(socket, WebSocketProtocol)
    assert not opened.transport.reading_paused
    assert opened.transport.pauses == 0
    await settle()
    scope = app.scope
    assert scope is not None
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/ws x", b"/ws%20x", b"protocol=7")
    assert (scope["client"], scope["server"], scope["scheme"]) == (PEER, LOCAL, "ws")
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert scope["headers"] == [
        (b"host", b"example.org"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", SAMPLE_KEY),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-protocol", b"chat, , superchat"),
        (b"origin", b"https://example.org"),
    ]


async def test_an_upgrade_waits_for_the_answers_to_the_requests_before_it(clock: ClockLoop) -> None:
    http = GatedApp()
    sockets = SocketApp()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await (http if scope["type"] == "http" else sockets)(scope, receive, send)

    opened = open_http(app, clock)
    opened.feed(http_request("GET", "/slow") + upgrade_request("/ws"))
    await settle()
    assert opened.transport.data == b""
    assert opened.transport.reading_paused
    http.gate.set()
    await settle()

    assert opened.transport.data == ok(b"GET /slow ") + ACCEPTED
    assert not opened.transport.reading_paused
    assert isinstance(opened.transport.protocol, WebSocketProtocol)


# Shutdown


async def test_shutdown_closes_an_idle_connection_at_once(clock: ClockLoop) -> None:
    opened = open_http(EchoApp(), clock)
    opened.feed(http_request())
    await settle()

    opened.protocol.shutdown()

    assert opened.transport.closed
    assert opened.transport.data == ok(b"GET / ")


async def test_shutdown_lets_a_busy_connection_finish_its_response_then_closes(clock: ClockLoop) -> None:
    app = GatedApp()
    opened = open_http(app, clock)
    opened.feed(http_request("GET", "/slow"))
    await settle()

    opened.protocol.shutdown()
    assert not opened.transport.closed
    app.gate.set()
    await settle()

    assert opened.transport.data == ok(b"GET /slow ", CLOSE)
    assert opened.transport.closed


# The hook's direct route


def direct_app(fast_path: FakeFastPath) -> HookedApp:
    return HookedApp(fast_path, EchoApp())


JSON_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nx-extra: 1\r\n\r\n"
    b'{"ok":true}'
)


async def test_a_direct_route_gets_the_whole_body_and_its_answer_leaves_in_one_write(
    clock: ClockLoop,
) -> None:
    bodies: list[bytes] = []

    async def route(head: RequestHead, body: bytes) -> HttpAnswer:
        bodies.append(body)
        return HttpAnswer(200, b"application/json", b'{"ok":true}', [(b"x-extra", b"1")])

    fast_path = FakeFastPath()
    fast_path.http_routes["/direct"] = route
    app = direct_app(fast_path)
    opened = open_http(app, clock)

    opened.feed(http_request("POST", "/direct", b"0123456789" * 3))
    await settle()
    opened.feed(http_request("GET", "/other"))
    await settle()

    assert bodies == [b"0123456789" * 3]
    assert opened.transport.writes == [
        JSON_ANSWER,
        b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n",  # through ASGI: the head, then the body
        b"GET /other ",
    ]
    assert app.calls == 1
    assert fast_path.asked == ["/direct", "/other"]


async def test_an_eager_route_that_never_suspends_runs_without_a_task(clock: ClockLoop) -> None:
    tasks: list[asyncio.Task[object] | None] = []

    async def route(head: RequestHead, body: bytes) -> HttpAnswer:
        tasks.append(asyncio.current_task())
        return HttpAnswer(200, b"application/json", b'{"ok":true}', [(b"x-extra", b"1")])

    fast_path = FakeFastPath(eager=True)
    fast_path.http_routes["/direct"] = route
    opened = open_http(direct_app(fast_path), clock)

    opened.feed(http_request("POST", "/direct", b"{}"))
    await asyncio.sleep(0)  # one loop iteration: the dispatch callback

    assert tasks == [None]
    assert opened.transport.writes == [JSON_ANSWER]
    assert opened.tasks() == set()


async def test_an_eager_route_that_suspends_is_finished_by_a_task(clock: ClockLoop) -> None:
    release: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    tasks: list[asyncio.Task[object] | None] = []

    async def route(head: RequestHead, body: bytes) -> HttpAnswer:
        await release
        tasks.append(asyncio.current_task())
        return HttpAnswer(200, b"application/json", b'{"ok":true}', [(b"x-extra", b"1")])

    fast_path = FakeFastPath(eager=True)
    fast_path.http_routes["/direct"] = route
    opened = open_http(direct_app(fast_path), clock)

    opened.feed(http_request("POST", "/direct", b"{}"))
    await settle()
    assert opened.transport.writes == []
    (task,) = opened.tasks()
    release.set_result(None)
    await settle()

    assert tasks == [task]
    assert opened.transport.writes == [JSON_ANSWER]
    assert opened.tasks() == set()


# The outbox: direct answers of one turn of the loop are written once all are made


def eager_direct_app(seen: list[tuple[str, bytes]], opened: list[OpenedHttp]) -> HookedApp:
    """Direct routes `/a`, `/b`, `/c` that record, as they run, what every connection has written."""

    def route(head: RequestHead, body: bytes) -> HttpAnswer:
        seen.append((head.path, b"".join(b"".join(o.transport.writes) for o in opened)))
        return HttpAnswer(200, b"text/plain", head.path.encode())

    fast_path = FakeFastPath(eager=True)
    for path in ("/a", "/b", "/c"):
        fast_path.http_routes[path] = route
    return HookedApp(fast_path, SocketApp())


def direct(path: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n" + path


async def test_pipelined_direct_answers_leave_in_one_write_after_all_were_made(clock: ClockLoop) -> None:
    seen: list[tuple[str, bytes]] = []
    opened: list[OpenedHttp] = []
    opened.append(open_http(eager_direct_app(seen, opened), clock))

    opened[0].feed(http_request("GET", "/a") + http_request("GET", "/b") + http_request("GET", "/c"))
    await settle()

    assert seen == [("/a", b""), ("/b", b""), ("/c", b"")]
    assert opened[0].transport.writes == [direct(b"/a") + direct(b"/b") + direct(b"/c")]


async def test_connections_read_in_one_turn_are_all_answered_before_any_answer_is_written(
    clock: ClockLoop,
) -> None:
    seen: list[tuple[str, bytes]] = []
    opened: list[OpenedHttp] = []
    app = eager_direct_app(seen, opened)
    first = open_http(app, clock)
    second = open_http(app, clock, server_state=first.server_state)
    opened += [first, second]

    first.feed(http_request("GET", "/a"))
    second.feed(http_request("GET", "/b"))
    await settle()

    assert seen == [("/a", b""), ("/b", b"")]
    assert first.transport.writes == [direct(b"/a")]
    assert second.transport.writes == [direct(b"/b")]


async def test_once_the_round_has_frames_to_write_a_direct_answer_is_written_at_once(
    clock: ClockLoop,
) -> None:
    fast_path = FakeFastPath(eager=True)
    written_then: list[list[bytes]] = []

    class Frames:
        """Frames some socket was written this round (an event fanned out)."""

        def flush(self) -> None:
            written_then.append(list(opened.transport.writes))

    def route(head: RequestHead, body: bytes) -> HttpAnswer:
        opened.protocol.coalescer.add(Frames())
        return HttpAnswer(200, b"text/plain", head.path.encode())

    fast_path.http_routes["/a"] = route
    opened = open_http(direct_app(fast_path), clock)

    opened.feed(http_request("GET", "/a"))
    await asyncio.sleep(0)  # the dispatch: answered and written, the frames not yet

    assert opened.transport.writes == [direct(b"/a")]
    assert written_then == []
    await settle()
    assert written_then == [[direct(b"/a")]]


async def test_an_answer_written_at_once_after_a_waiting_one_is_written_after_it(clock: ClockLoop) -> None:
    fast_path = FakeFastPath(eager=True)
    fast_path.http_routes["/a"] = lambda head, body: HttpAnswer(200, b"text/plain", head.path.encode())
    fast_path.http_routes["/b"] = fast_path.http_routes["/a"]
    opened = open_http(direct_app(fast_path), clock)

    # The second answer closes the connection, so it is written at once, behind the first.
    opened.feed(http_request("GET", "/a") + http_request("GET", "/b", headers=[("connection", "close")]))
    await settle()

    assert opened.transport.data == direct(b"/a") + direct(b"/b")[:-4] + b"connection: close\r\n\r\n/b"


async def test_a_waiting_direct_answer_is_written_before_the_connection_closes(clock: ClockLoop) -> None:
    fast_path = FakeFastPath(eager=True)
    fast_path.http_routes["/a"] = lambda head, body: HttpAnswer(200, b"text/plain", b"/a")
    opened = open_http(direct_app(fast_path), clock)

    opened.feed(http_request("GET", "/a"))
    await asyncio.sleep(0)  # the dispatch: answered, not written yet
    assert opened.transport.writes == []
    opened.protocol.shutdown()

    assert opened.transport.writes == [direct(b"/a")]
    assert opened.transport.closed


async def test_a_waiting_direct_answer_is_written_before_an_upgrade_is_handed_over(clock: ClockLoop) -> None:
    async def accept(scope: Scope, socket: WebSocketProtocol) -> FrameHandler | None:
        socket.accept()  # the 101, written within the hand-over
        return RecordingHandler()

    fast_path = FakeFastPath(eager=True)
    fast_path.http_routes["/a"] = lambda head, body: HttpAnswer(200, b"text/plain", head.path.encode())
    fast_path.websocket_routes["/ws"] = accept
    opened = open_http(direct_app(fast_path), clock)

    opened.feed(http_request("GET", "/a") + upgrade_request("/ws"))
    await settle()

    assert opened.transport.data == direct(b"/a") + ACCEPTED
    assert isinstance(opened.transport.protocol, WebSocketProtocol)


class TaskCheckingApp(EchoApp):
    """EchoApp that records whether it ran inside a Task (anyio and `asyncio.timeout` need one)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_task: list[bool] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.in_task.append(asyncio.current_task() is not None)
        await super().__call__(scope, receive, send)


async def test_an_eager_apps_asgi_routes_still_run_in_a_task(clock: ClockLoop) -> None:
    fallback = TaskCheckingApp()
    app = HookedApp(FakeFastPath(eager=True), fallback)
    opened = open_http(app, clock)

    opened.feed(http_request("POST", "/plain", b"abc"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    assert fallback.in_task == [True]
    assert b"".join(opened.transport.writes) == ok(b"POST /plain abc")


# Hostile input (issue 13): header count, handshakes, early 413, head and keep-alive timeouts


TOO_LARGE = refused(b"431 Request Header Fields Too Large", b"Request header too large.")
TOO_BIG_JSON = b'{"error":"too big"}'
BODY_TOO_LARGE = (
    b"HTTP/1.1 413 %s\r\nx-why: size\r\ncontent-type: application/json\r\n"
    b"content-length: 19\r\nconnection: close\r\n\r\n%s"
    % (http.HTTPStatus(413).phrase.encode(), TOO_BIG_JSON)
)


def limited_app(**limits: Any) -> HookedApp:
    answer = HttpAnswer(413, b"application/json", TOO_BIG_JSON, [(b"x-why", b"size")])
    return HookedApp(FakeFastPath(limits=Limits(body_too_large=answer, **limits)), GatedApp())


@pytest.mark.parametrize(("count", "refused_431"), [(100, False), (101, True)])
async def test_more_headers_than_the_limit_are_refused_with_431(
    clock: ClockLoop, count: int, refused_431: bool
) -> None:
    opened = open_http(EchoApp(), clock)
    # `host` is one of them: 99 or 100 more make 100 or 101.
    opened.feed(http_request(headers=[(f"x-h{index}", "v") for index in range(count - 1)]))
    await settle()

    assert (opened.transport.data == TOO_LARGE) is refused_431
    assert opened.transport.closed is refused_431


async def test_the_header_count_limit_comes_from_the_hook(clock: ClockLoop) -> None:
    opened = open_http(limited_app(max_headers=3), clock)
    opened.feed(http_request(headers=[("a", "1"), ("b", "2"), ("c", "3")]))

    assert opened.transport.data == TOO_LARGE


UPGRADE_REFUSALS = [
    (
        upgrade_request(ws_version="12"),
        refused(b"426 Upgrade Required", b"Unsupported WebSocket version.", b"sec-websocket-version: 13"),
    ),
    (
        upgrade_request(method="POST"),
        refused(b"400 Bad Request", b"A WebSocket handshake must be a GET request."),
    ),
    (upgrade_request(version="1.0"), refused(b"400 Bad Request", b"A WebSocket handshake needs HTTP/1.1.")),
    (upgrade_request(key=None), refused(b"400 Bad Request", b"Missing or invalid Sec-WebSocket-Key.")),
]


@pytest.mark.parametrize(
    ("request_head", "answer"), UPGRADE_REFUSALS, ids=["v12", "post", "http10", "no-key"]
)
async def test_an_upgrade_the_rfc_does_not_allow_is_refused_before_the_hand_over(
    clock: ClockLoop, request_head: bytes, answer: bytes
) -> None:
    app = SocketApp()
    opened = open_http(app, clock)
    opened.feed(request_head)
    await settle()

    assert opened.transport.data == answer
    assert opened.transport.closed
    assert opened.transport.protocol is opened.protocol
    assert app.scope is None


async def test_a_declared_body_over_the_limit_is_refused_before_it_arrives(clock: ClockLoop) -> None:
    app = limited_app(max_body_size=100)
    opened = open_http(app, clock)

    opened.feed(b"POST /events HTTP/1.1\r\nhost: x\r\ncontent-length: 52428800\r\n\r\n")

    assert opened.transport.data == BODY_TOO_LARGE
    assert opened.transport.closed
    opened.feed(b"x" * 1000)  # the client sends the body anyway: nothing is read any more
    await settle()
    assert app.calls == 0


async def test_a_body_at_the_limit_is_served(clock: ClockLoop) -> None:
    opened = open_http(limited_app(max_body_size=100), clock)
    opened.feed(http_request("POST", "/events", b"x" * 100))
    await settle()

    assert opened.transport.data == ok(b"POST /events " + b"x" * 100)


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(clock: ClockLoop) -> None:
    app = limited_app(max_body_size=100)
    opened = open_http(app, clock)

    opened.feed(b"POST /events HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
    opened.feed(b"50\r\n" + b"x" * 80 + b"\r\n")
    assert opened.transport.data == b""
    opened.feed(b"50\r\n" + b"x" * 80 + b"\r\n")

    assert opened.transport.data == BODY_TOO_LARGE
    assert opened.transport.closed
    await settle()
    assert app.calls == 0


async def test_without_a_hook_a_large_declared_body_is_read(clock: ClockLoop) -> None:
    app = EchoApp()
    opened = open_http(app, clock)
    opened.feed(http_request("POST", "/", b"x" * 100_000))
    await settle()

    assert app.bodies == [b"x" * 100_000]


async def test_a_refusal_waits_for_the_answers_to_the_requests_before_it(clock: ClockLoop) -> None:
    gated = GatedApp()
    opened = open_http(HookedApp(FakeFastPath(limits=Limits(max_body_size=10)), gated), clock)

    opened.feed(http_request("GET", "/slow") + b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n\r\n")
    await settle()
    assert opened.transport.data == b""
    assert opened.transport.reading_paused
    gated.gate.set()
    await settle()

    assert opened.transport.data == ok(b"GET /slow ") + (
        b"HTTP/1.1 413 %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 23\r\nconnection: close\r\n\r\nRequest body too large."
        % http.HTTPStatus(413).phrase.encode()
    )
    assert opened.transport.closed


async def test_a_connection_that_sends_nothing_is_closed_silently_after_the_head_timeout(
    clock: ClockLoop,
) -> None:
    opened = open_http(EchoApp(), clock)
    assert clock.pending_timers() == [20.0]

    clock.advance(19.9)
    assert not opened.transport.closed
    clock.advance(0.1)

    assert opened.transport.closed
    assert opened.transport.writes == []


async def test_first_heads_wait_on_one_timer_and_only_the_late_connections_are_closed(
    clock: ClockLoop,
) -> None:
    state = ServerState()
    early = open_http(EchoApp(), clock, state, timeout_keep_alive=60)
    clock.advance(5)
    silent = open_http(EchoApp(), clock, state, timeout_keep_alive=60)
    answered = open_http(EchoApp(), clock, state, timeout_keep_alive=60)
    clock.advance(5)
    late = open_http(EchoApp(), clock, state, timeout_keep_alive=60)
    assert clock.pending_timers() == [10.0]  # one timer, for the oldest deadline

    answered.feed(http_request())
    await settle()
    clock.advance(10)  # the first deadline: only `early` is due
    assert (early.transport.closed, silent.transport.closed, late.transport.closed) == (True, False, False)
    # `silent` is next (`answered` left when its head came in), and `answered`'s own keep-alive timer.
    assert clock.pending_timers() == [5.0, 50.0]

    late.feed(b"GET / HT")  # its head has begun: when the deadline passes, it is answered 408
    clock.advance(5)
    assert silent.transport.closed and silent.transport.writes == []
    assert not answered.transport.closed and answered.transport.data == ok(b"GET / ")
    assert clock.pending_timers() == [5.0, 45.0]  # `late`'s deadline, `answered`'s keep-alive: no other
    clock.advance(5)

    assert late.transport.data == refused(b"408 Request Timeout", b"Request head not received in time.")
    assert late.transport.closed


async def test_a_connection_gone_before_its_deadline_is_not_called(clock: ClockLoop) -> None:
    gone = open_http(EchoApp(), clock)
    stays = open_http(EchoApp(), clock)
    gone.protocol.connection_lost(None)
    waiting = deadlines_for(clock.as_loop(), gone.protocol.head_timeout).waiting
    assert list(waiting) == [stays.protocol]  # nothing keeps a lost connection for the head timeout
    clock.advance(20)

    assert gone.transport.writes == [] and not gone.transport.closed  # nothing done to it any more
    assert stays.transport.closed


def test_an_owner_that_fails_at_its_deadline_does_not_hold_up_the_others(clock: ClockLoop) -> None:
    called: list[str] = []

    class Owner:
        def __init__(self, name: str, fails: bool = False) -> None:
            self.name, self.fails = name, fails

        def overdue(self) -> None:
            called.append(self.name)
            if self.fails:
                raise RuntimeError("boom")

    deadlines = Deadlines(clock.as_loop(), 3)
    for name in ("a", "b", "c"):
        deadlines.start(Owner(name, fails=name == "a"), clock.time())
    left = Owner("d")
    deadlines.start(left, clock.time())
    deadlines.leave(left)
    clock.advance(3)

    assert called == ["a", "b", "c"]
    assert deadlines.waiting == {} and clock.pending_timers() == []


def test_a_deadline_within_the_clock_resolution_is_due_and_an_earlier_one_waits(clock: ClockLoop) -> None:
    called: list[str] = []

    class Owner:
        def __init__(self, name: str) -> None:
            self.name = name

        def overdue(self) -> None:
            called.append(self.name)

    deadlines = Deadlines(clock.as_loop(), 3)
    deadlines.start(Owner("first"), clock.time())
    clock.now += 0.5
    deadlines.start(Owner("second"), clock.time())
    clock.now += 3 - 0.5 - 0.0005  # a uvloop timer may fire up to a millisecond early: as if it did
    assert deadlines.timer is not None
    deadlines.timer.cancel()
    deadlines._fire()

    assert called == ["first"]
    assert clock.pending_timers() == [pytest.approx(0.5005)]  # armed again for `second` only


async def test_a_head_sent_too_slowly_is_answered_408(clock: ClockLoop) -> None:
    opened = open_http(limited_app(head_timeout=3), clock)
    head = http_request()

    for index in range(3):
        opened.feed(head[index : index + 1])
        clock.advance(0.99)
    assert not opened.transport.closed
    clock.advance(0.03)

    assert opened.transport.data == refused(b"408 Request Timeout", b"Request head not received in time.")
    assert opened.transport.closed


async def test_the_head_timeout_counts_from_the_connection_for_the_first_request(clock: ClockLoop) -> None:
    opened = open_http(limited_app(head_timeout=3), clock)
    clock.advance(2.5)
    opened.feed(b"GET / HT")
    clock.advance(0.5)

    assert opened.transport.data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


async def test_a_head_in_time_is_served_and_the_keep_alive_timer_takes_over(clock: ClockLoop) -> None:
    opened = open_http(limited_app(head_timeout=3), clock, timeout_keep_alive=5)
    clock.advance(2)
    opened.feed(http_request("GET", "/"))
    await settle()
    assert opened.transport.data == ok(b"GET / ")
    clock.advance(4)  # past the head timeout of the first request: it is answered, nothing happens
    assert not opened.transport.closed

    opened.feed(b"GET /next HTTP/1.1\r\n")  # a second head begins: three seconds from now
    clock.advance(2.9)
    assert not opened.transport.closed
    clock.advance(0.1)

    assert opened.transport.data.endswith(b"\r\n\r\nRequest head not received in time.")


async def test_no_timer_runs_while_the_app_works_on_a_request(clock: ClockLoop) -> None:
    app = GatedApp()
    opened = open_http(app, clock)
    opened.feed(http_request("GET", "/slow"))
    await settle()

    clock.advance(3600)
    assert not opened.transport.closed
    app.gate.set()
    await settle()

    assert opened.transport.data == ok(b"GET /slow ")
    assert clock.pending_timers() == [5.0]
