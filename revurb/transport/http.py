"""A lean HTTP/1.1 protocol for uvicorn (`http=`): signed triggers cost little more than the app itself.

Built on `httptools` like uvicorn's own, with keep-alive, pipelining (answered in order), streamed
request bodies with flow control, 100-continue, HEAD and HTTP/1.0. A response whose body comes in
one message leaves in one write. WebSocket upgrades go to `config.ws_protocol_class` as uvicorn
hands them over. An app may offer the transport hook (`revurb.transport.hook`): then a complete
request on a route the app serves directly skips the ASGI messages and its answer leaves in one
write; and when the hook says the app never needs a Task before its first real suspension
(`eager`), `drive` runs the app by hand and creates a Task only if it suspends.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Coroutine
from typing import Any
from urllib.parse import unquote

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.server import ServerState

from revurb.transport.addresses import local_address, remote_address
from revurb.transport.coalescer import coalescer_for
from revurb.transport.deadlines import Deadlines, deadlines_for
from revurb.transport.eager import drive, run_in_task
from revurb.transport.flow_control import FlowControl
from revurb.transport.handshake import Refusal, UpgradeRequest, read_upgrade, refusal
from revurb.transport.hook import FastPath, HttpAnswer, HttpRoute
from revurb.transport.http_request import STATUS_LINES, HeaderList, HttpRequest
from revurb.transport.served import served

logger = logging.getLogger("revurb.transport")

#: Buffered request body (bytes) or queued pipelined requests before reading from the socket pauses.
HIGH_WATER = 65_536
_MAX_QUEUED = 16
#: Queued requests at or below which a paused socket is read again.
_RESUME_QUEUED = 8
#: httptools 0.6.3 and later can be told to ignore bytes after a request that closes the connection.
_LENIENT = hasattr(httptools.HttpRequestParser, "set_dangerous_leniencies")
#: Bytes fed to the parser at a time. Between slices the protocol checks whether to stop, so a read
#: full of tiny pipelined requests costs one slice's work before the rest waits (reading paused).
_FEED_SLICE = 16_384


class _Refused(Exception):
    """Raised in a parser callback: the request is refused with `answer`, then the connection closes."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer


#: The loop the last connection's server runs on: `asyncio.get_event_loop()` makes a system call
#: (`getpid`, Python 3.11) and uvicorn does not hand its protocols the loop.
_last_loop: tuple[weakref.ref[ServerState], asyncio.AbstractEventLoop] | None = None


def _running_loop(server_state: ServerState) -> asyncio.AbstractEventLoop:
    global _last_loop
    last = _last_loop
    if last is not None and last[0]() is server_state and last[1].is_running():
        return last[1]
    loop = asyncio.get_event_loop()
    _last_loop = (weakref.ref(server_state), loop)
    return loop


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: parsing, the ASGI request cycle, and the hand-over of upgrades."""

    __slots__ = (
        "config",
        "app",
        "app_state",
        "server_state",
        "connections",
        "tasks",
        "loop",
        "parser",
        "transport",
        "scheme",
        "server",
        "client",
        "root_path",
        "asgi",
        "eager",
        "fast_path",
        "access_log",
        "header_limit",
        "max_headers",
        "head_timeout",
        "max_body_size",
        "body_too_large",
        "url",
        "headers",
        "header_bytes",
        "header_count",
        "declared_length",
        "expect",
        "body_received",
        "in_head",
        "head_started",
        "refusal",
        "unread",
        "parsing",
        "upgrade",
        "upgrade_request",
        "queue",
        "current",
        "running_by_hand",
        "dispatching",
        "scheduled",
        "closing",
        "flow",
        "idle_since",
        "timer",
        "first_head",
        "heads",
        "heads_for",
        "pending",
        "coalescer",
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
        self.app = shared.app
        self.app_state = app_state
        self.server_state = server_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.loop = _loop or _running_loop(server_state)
        self.parser = httptools.HttpRequestParser(self)
        if _LENIENT:
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.scheme = "http"
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.root_path = config.root_path
        self.asgi = {"version": shared.asgi_version, "spec_version": "2.3"}
        #: The app's direct routes (see `_answer`), if it offers the transport hook.
        self.fast_path: FastPath | None = shared.fast_path
        self.eager = shared.eager
        self.access_log = shared.access_log
        self.header_limit = shared.header_limit
        limits = shared.limits
        self.max_headers = limits.max_headers
        self.head_timeout = limits.head_timeout
        self.max_body_size = limits.max_body_size
        self.body_too_large = limits.body_too_large
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.header_count = 0
        self.declared_length: bytes | None = None
        #: The `Expect` header of the request being parsed, if any.
        self.expect: bytes | None = None
        #: Body bytes of the request being parsed, counted only when there is a body limit.
        self.body_received = 0
        #: A request head has begun and is not complete yet.
        self.in_head = False
        #: When the head being waited for began (the connection, for the first); None when none is.
        self.head_started: float | None = None
        #: An answer that refuses a request, written once the answers before it are out; then close.
        self.refusal: bytes | None = None
        #: Bytes read but not parsed yet: they wait while the requests before them are answered.
        self.unread: bytes | None = None
        #: The request whose body the parser is reading; None while skipping an upgrade's.
        self.parsing: HttpRequest | None = None
        #: An upgrade request's head, handed to the WebSocket protocol once earlier responses are out.
        self.upgrade: bytes | None = None
        #: The upgrade request as read, when the WebSocket protocol takes it so (`upgraded`).
        self.upgrade_request: UpgradeRequest | None = None
        self.queue: deque[HttpRequest] = deque()
        #: The request at the head of the queue once its app started.
        self.current: HttpRequest | None = None
        self.running_by_hand = False
        self.dispatching = False
        self.scheduled = False
        self.closing = False
        #: Set in `connection_made`, as the transport is.
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.idle_since: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        #: The deadline of the connection's first head, on the loop's shared timer, until the head is in.
        self.first_head: Deadlines | None = None
        #: Direct answers' heads up to the content length, by status and content type; they hold the
        #: server's default headers, so they are kept only while that list is the same one.
        self.heads: dict[tuple[int, bytes], bytes] = {}
        self.heads_for: object = None
        #: Direct answers made during this round of loop callbacks, written once all of them are made
        #: (by the coalescer, as WebSocket frames are): the API code of every request read in one
        #: turn of the loop runs back to back, with no system call in between to push it out of the
        #: CPU's caches (a quarter more signed triggers per CPU-second, docs/benchmarks.md).
        self.pending: list[bytes] | None = None
        self.coalescer = coalescer_for(self.loop)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self)  # type: ignore[arg-type]
        self.transport = transport  # type: ignore[assignment]
        self.flow = FlowControl(self.transport)
        self.server = local_address(transport)
        self.client = remote_address(transport)
        if transport.get_extra_info("sslcontext"):  # uvicorn's `is_ssl`, without the call
            self.scheme = "https"
        now = self.head_started = self.loop.time()
        # Not a timer of its own: every new connection's first head waits on one (`deadlines.py`).
        self.first_head = first_head = deadlines_for(self.loop, self.head_timeout)
        first_head.start(self, now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.closing = True
        if self.first_head is not None:
            self._head_in()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for request in self.queue:
            request.disconnected = True
            request.wake()
        self.queue.clear()
        self.current = None
        self.pending = None
        self.flow.connection_lost()
        self.parser = None  # type: ignore[assignment]

    def eof_received(self) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        if self.closing or self.refusal is not None:
            return  # refused: the parser cannot go on, and nothing more will be answered
        self.idle_since = None
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        size = len(data)
        offset = 0
        while True:
            piece = data if offset == 0 and size <= _FEED_SLICE else data[offset : offset + _FEED_SLICE]
            offset += len(piece)
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserUpgrade as upgrade:
                self._on_upgrade(piece[upgrade.args[0] :] + data[offset:])
                break
            except httptools.HttpParserError as error:
                cause = error.__context__
                if isinstance(cause, _Refused):
                    self._refuse(cause.answer)
                else:
                    logger.warning("Invalid HTTP request received.")
                    self._refuse(self._refusal(400, "Invalid HTTP request received."))
                break
            if offset >= size:
                break
            if self._behind():
                self.unread = data[offset:]
                break
        queue = self.queue
        if self.upgrade is not None:
            if not queue and self.current is None and self.refusal is None and not self.closing:
                self._hand_over()  # no answer to write first: the socket changes hands now
                return
            self.pause_reading()  # until the answers before it are out
        elif len(queue) > _MAX_QUEUED or (self.parsing is not None and self.parsing.size > HIGH_WATER):
            self.pause_reading()
        if queue or self.upgrade is not None:
            self.schedule()

    def _behind(self) -> bool:
        """Too many requests wait for an answer, or too much body for the app: stop reading."""
        return len(self.queue) > _MAX_QUEUED or (self.parsing is not None and self.parsing.size > HIGH_WATER)

    def _feed_unread(self) -> None:
        if self.unread is None or self.closing or self.refusal is not None or self._behind():
            return  # when the answers catch up, `resume_reading` comes back here
        data, self.unread = self.unread, None
        self.idle_since = None
        self._feed(data)
        if self.unread is None:
            self.resume_reading()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.header_bytes = 0
        self.header_count = 0
        self.declared_length = None
        self.expect = None
        self.body_received = 0
        self.in_head = True
        if self.head_started is None:
            self.head_started = self.loop.time()
            self._arm(self.head_started + self.head_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.header_limit:
            raise self._head_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        self.header_count += 1
        if self.header_bytes > self.header_limit or self.header_count > self.max_headers:
            raise self._head_too_large()
        name = name.lower()
        if name == b"content-length":
            self.declared_length = value
        elif name == b"expect":
            self.expect = value
        self.headers.append((name, value))

    def _head_too_large(self) -> _Refused:
        logger.warning("Request header too large.")
        return _Refused(self._refusal(431, "Request header too large."))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_started = None
        if self.first_head is not None:  # per request: the first one only leaves the deadlines
            self._head_in()
        parser = self.parser
        method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        headers = self.headers
        if parser.should_upgrade() and self._websocket_upgrade():
            upgrade = read_upgrade(method, version, self.url, headers)
            if isinstance(upgrade, Refusal):
                raise _Refused(self._refusal(*upgrade))
            self.parsing = None
            if hasattr(self.config.ws_protocol_class, "upgraded"):
                # Revurb's protocol takes the request as read: nothing is serialised to be parsed again.
                self.upgrade_request = upgrade
                self.upgrade = b""
                return
            lines = [method.encode(), b" ", self.url, b" HTTP/1.1\r\n"]
            for name, value in headers:
                lines += [name, b": ", value, b"\r\n"]
            lines.append(b"\r\n")
            self.upgrade = b"".join(lines)
            return
        declared = self.declared_length
        limit = self.max_body_size
        if limit is not None and declared is not None and declared.isdigit() and int(declared) > limit:
            # Refused before the body comes: nobody waits for bytes that would be refused anyway.
            raise _Refused(self._answer_bytes(self.body_too_large))
        url = httptools.parse_url(self.url)
        raw_path: bytes = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        request = HttpRequest(
            self,
            method,
            version,
            raw_path,
            self.root_path + path,
            url.query or b"",
            headers,
            version != "1.0" and parser.should_keep_alive(),
        )
        if self.expect is not None and self.expect.lower() == b"100-continue":
            request.expect_continue = True
        self.parsing = request
        self.queue.append(request)

    def on_body(self, body: bytes) -> None:
        request = self.parsing
        if request is None or request.finished:
            return
        limit = self.max_body_size
        if limit is not None:
            self.body_received += len(body)
            # A chunked body over the limit, refused as soon as it is; an app already reading it decides.
            if self.body_received > limit and request is not self.current:
                raise _Refused(self._answer_bytes(self.body_too_large))
        request.body.append(body)
        request.size += len(body)
        if request.waiter is not None:
            request.wake()

    def on_message_complete(self) -> None:
        request = self.parsing
        if request is None:
            return
        self.parsing = None
        request.complete = True
        if request.waiter is not None:
            request.wake()

    # Running requests

    def schedule(self) -> None:
        """Dispatch as the loop's next callback, where a Task's first step would run.

        Messages that other sockets delivered before this request (a WebSocket unsubscribe, say) are
        then handled first, as they were when every request got a Task.
        """
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.dispatch)

    def dispatch(self) -> None:
        """Start the app for the request at the head of the queue once it can, then the next ones."""
        self.scheduled = False
        if self.dispatching:
            return
        self.dispatching = True
        try:
            while self.current is None and self.queue and not self.closing:
                request = self.queue[0]
                if not (request.complete or request.expect_continue or request.size > HIGH_WATER):
                    break
                self._start(request)
        finally:
            self.dispatching = False
        if self.closing or self.current is not None or self.queue:
            return
        if self.refusal is not None:
            self.write(self.refusal)
            self.close()
            return
        if self.upgrade is not None:
            self._hand_over()
            return
        self.resume_reading()
        self.idle_since = self.loop.time()
        self._arm(self.idle_since + self.config.timeout_keep_alive)

    def _start(self, request: HttpRequest) -> None:
        self.current = request
        limit = self.config.limit_concurrency
        app: Any = self.app
        coro: Coroutine[Any, Any, None] | None = None
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            logger.warning("Exceeded concurrency limit.")
            app = service_unavailable
        elif self.fast_path is not None and request.complete:
            route = self.fast_path.http_route(request)
            if route is not None:
                if not self.eager:
                    coro = self._answer(route, request)
                else:
                    answer = self._answer_now(route, request)
                    if answer is None:
                        return
                    coro = self._answer_later(answer, request)
        # Only the app's direct routes run by hand: its ASGI routes may use anyio or
        # `asyncio.timeout`, which need `asyncio.current_task()` from the first step.
        by_hand = self.eager and coro is not None
        if coro is None:
            coro = app(request.scope, request.receive, request.send)

        def done(error: BaseException | None) -> None:
            self._app_done(request, error)

        if not by_hand:
            context = contextvars.Context() if self.config.reset_contextvars else None
            started = self.loop.create_task(run_in_task(coro, done), context=context)
            self.tasks.add(started)
            started.add_done_callback(self.tasks.discard)
            return
        self.running_by_hand = True
        try:
            task = drive(coro, self.loop, done, contextvars.copy_context())
        finally:
            self.running_by_hand = False
        if request.head is not None and not self.closing:
            self.write(request.head)
            request.head = None
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _answer(self, route: HttpRoute, request: HttpRequest) -> None:
        """A request the app serves directly, its body all here: no ASGI messages, one write."""
        body = request.body[0] if len(request.body) == 1 else b"".join(request.body)
        answer = route(request, body)
        if not isinstance(answer, HttpAnswer):
            answer = await answer
        request.answer(*answer)

    def _answer_now(self, route: HttpRoute, request: HttpRequest) -> Awaitable[HttpAnswer] | None:
        """Call an eager app's direct route here; answer now if it could, else return what to await."""
        body = request.body[0] if len(request.body) == 1 else b"".join(request.body)
        try:
            answer = route(request, body)
        except Exception as error:
            self._app_done(request, error)
            return None
        if isinstance(answer, HttpAnswer):
            request.answer(*answer)
            return None
        return answer

    @staticmethod
    async def _answer_later(answer: Awaitable[HttpAnswer], request: HttpRequest) -> None:
        request.answer(*(await answer))

    def answer_head(self, status: int, content_type: bytes) -> bytes:
        """A direct answer's status line, the server's default headers and the content type."""
        default_headers = self.server_state.default_headers
        if self.heads_for is not default_headers:
            self.heads = {}
            self.heads_for = default_headers
        head = self.heads.get((status, content_type))
        if head is None:
            content = [STATUS_LINES[status]]
            for name, value in default_headers:
                content.append(b"%s: %s\r\n" % (name, value))
            content.append(b"content-type: %s\r\n" % content_type)
            head = self.heads[(status, content_type)] = b"".join(content)
        return head

    def response_done(self, request: HttpRequest) -> None:
        """The response is complete: close, or let the next pipelined request go."""
        self.server_state.total_requests += 1
        if not request.keep_alive:
            self.close()
            return
        if self.current is request:
            self.current = None
            self.queue.popleft()
            if not self.dispatching:
                self.schedule()

    def _app_done(self, request: HttpRequest, error: BaseException | None) -> None:
        if error is not None:
            logger.error("Exception in ASGI application", exc_info=error)
        elif not request.started and not request.disconnected:
            logger.error("ASGI callable returned without starting response.")
        elif not request.finished and not request.disconnected:
            logger.error("ASGI callable returned without completing response.")
        if request.finished or request.disconnected:
            return
        if request.started:
            self.close()
        else:
            self._reject(500, "Internal Server Error")

    def _websocket_upgrade(self) -> bool:
        if self.config.ws_protocol_class is None:
            return False
        connection: list[bytes] = []
        upgrade = None
        for name, value in self.headers:
            if name == b"connection":
                connection = value.lower().replace(b" ", b"").replace(b"\t", b"").split(b",")
            elif name == b"upgrade":
                upgrade = value.lower()
        return b"upgrade" in connection and upgrade == b"websocket"

    def _on_upgrade(self, rest: bytes) -> None:
        if self.upgrade is None:
            logger.warning("Unsupported upgrade request.")
            return
        self.upgrade += rest

    def _hand_over(self) -> None:
        """Give the socket to the WebSocket protocol, as uvicorn's `handle_websocket_upgrade` does."""
        self.flush()
        request, self.upgrade_request = self.upgrade_request, None
        if request is None:
            head, _, rest = (self.upgrade or b"").partition(b"\r\n\r\n")
        else:
            head, rest = b"", self.upgrade or b""
        self.upgrade = None
        self.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        # Read again before the new protocol can pause reading on its own account.
        self.flow.resume_reading()
        factory: Any = self.config.ws_protocol_class
        options: dict[str, Any] = {} if request is None else {"_loop": self.loop}
        protocol: Any = factory(
            config=self.config, server_state=self.server_state, app_state=self.app_state, **options
        )
        protocol.connection_made(self.transport)
        if request is not None:
            protocol.upgraded(request, self.server, self.client, self.scheme == "https", rest)
        else:
            protocol.data_received(head + b"\r\n\r\n")
            if rest:
                protocol.data_received(rest)
        self.transport.set_protocol(protocol)
        self.closing = True
        # The parser refers back to this object: drop it so this protocol is freed at once instead of
        # waiting, with its buffers, for the cycle collector (per socket, that is most of a KB).
        self.parser = None  # type: ignore[assignment]

    # Flow control, closing, shutdown

    def pause_reading(self) -> None:
        if not self.closing:
            self.flow.pause_reading()

    def resume_reading(self) -> None:
        if not self.closing and self.upgrade is None and len(self.queue) <= _RESUME_QUEUED:
            if self.unread is not None:
                self.loop.call_soon(self._feed_unread)  # what was read already goes first
            else:
                self.flow.resume_reading()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.flush()
            self.transport.close()

    def write(self, data: bytes) -> None:
        """Write now, after the answers still waiting in the outbox."""
        if self.pending is not None:
            self.flush()
        self.transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """Write a direct answer once this round's answers are all made (see `pending`); any other
        write on the connection, its close and its hand-over first write what waits.

        Once the round has frames to write (an event fanned out), answers go at once instead: a
        publisher then sends its next event while the frames are written, and the next round's
        frames join this round's in fewer, fuller writes.
        """
        coalescer = self.coalescer
        if coalescer.dirty:
            self.write(data)
            return
        pending = self.pending
        if pending is None:
            self.pending = [data]
            coalescer.add_answer(self)
        else:
            pending.append(data)

    def flush(self) -> None:
        """Write the direct answers that wait for the coalescer."""
        pending = self.pending
        if pending is not None:
            self.pending = None
            if not self.transport.is_closing():
                self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _reject(self, status: int, message: str) -> None:
        if not self.closing:
            self.write(self._refusal(status, message))
            self.close()

    def _refusal(self, status: int, message: str, headers: HeaderList = ()) -> bytes:
        return refusal(status, message, [*self.server_state.default_headers, *headers])

    def _answer_bytes(self, answer: HttpAnswer) -> bytes:
        """A whole answer from the app's hook, closing the connection."""
        content = [STATUS_LINES[answer.status]]
        for name, value in (*self.server_state.default_headers, *answer.headers):
            content.append(b"%s: %s\r\n" % (name, value))
        content.append(
            b"content-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (answer.content_type, len(answer.body))
        )
        content.append(answer.body)
        return b"".join(content)

    def _refuse(self, answer: bytes) -> None:
        """Answer `answer` and close, once the answers to the requests before this one are out."""
        if self.closing or self.refusal is not None:
            return
        parsing = self.parsing
        if parsing is not None and self.queue and self.queue[-1] is parsing:
            self.queue.pop()
        self.parsing = None
        self.upgrade = None
        self.upgrade_request = None
        if self.current is None and not self.queue:
            self.write(answer)
            self.close()
            return
        self.refusal = answer
        self.pause_reading()

    def _head_in(self) -> None:
        """The first head is in (or the connection gone, before it): its deadline no longer applies.

        Only while `first_head` is set; callers check, as one of them runs for every request."""
        assert self.first_head is not None
        self.first_head.leave(self)
        self.first_head = None

    def overdue(self) -> None:
        """The first head's deadline passed (`Deadlines`): as when the connection's own timer fires."""
        self.first_head = None
        self._on_timer()

    def _arm(self, deadline: float) -> None:
        """Make sure the timer fires by `deadline` (an earlier one stays: it re-arms when it fires)."""
        timer = self.timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self.timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        """The one timer of a connection: the head it waits for, or the idle keep-alive."""
        self.timer = None
        if self.closing:
            return
        now = self.loop.time()
        if self.head_started is not None:
            remaining = self.head_started + self.head_timeout - now
            if remaining <= 0:
                if self.in_head:
                    self._refuse(self._refusal(408, "Request head not received in time."))
                else:
                    self.close()  # nothing came at all: no answer, as for an unused pre-connection
                return
        elif self.idle_since is not None:
            remaining = self.idle_since + self.config.timeout_keep_alive - now
            if remaining <= 0:
                self.close()
                return
        else:
            return  # a request is being read or answered: the timer starts again when it is done
        self._arm(now + remaining)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when idle, else after the response in progress."""
        if self.current is None and not self.queue:
            self.close()
            return
        for request in self.queue:
            request.keep_alive = False
