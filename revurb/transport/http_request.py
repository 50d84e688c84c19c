"""One HTTP/1.1 request on a `HttpProtocol`: body buffer, ASGI `receive` / `send`, response head."""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revurb.transport.http import HttpProtocol

access_logger = logging.getLogger("uvicorn.access")

HeaderList = Sequence[tuple[bytes, bytes]]
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEADER_NAME = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]')
_HEADER_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}


def settle(waiter: asyncio.Future[None] | None) -> None:
    """Let whoever awaits `waiter` (if anyone, and not already woken) go on."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class HttpRequest:
    """One request: its head, body buffer, ASGI `receive` / `send` and response state.

    The ASGI scope is built when first asked for: a request the app's hook answers directly reads
    the head's fields instead (`revurb.transport.hook.RequestHead`).
    """

    __slots__ = (
        "protocol",
        "method",
        "http_version",
        "raw_path",
        "path",
        "query_string",
        "headers",
        "_scope",
        "body",
        "size",
        "complete",
        "delivered",
        "keep_alive",
        "expect_continue",
        "head_only",
        "waiter",
        "started",
        "finished",
        "disconnected",
        "chunked",
        "remaining",
        "head",
    )

    def __init__(
        self,
        protocol: HttpProtocol,
        method: str,
        http_version: str,
        raw_path: bytes,
        path: str,
        query_string: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
    ) -> None:
        self.protocol = protocol
        self.method = method
        self.http_version = http_version
        #: As received, without the server's `root_path`.
        self.raw_path = raw_path
        #: Percent-decoded, with the server's `root_path` in front (the scope's `path`).
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self._scope: dict[str, Any] | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.complete = False
        self.delivered = False
        self.keep_alive = keep_alive
        self.expect_continue = False
        self.head_only = method == "HEAD"
        self.waiter: asyncio.Future[None] | None = None
        self.started = False
        self.finished = False
        self.disconnected = False
        self.chunked = False
        self.remaining = 0
        #: The response head, held back while the app runs by hand so that head and body leave together.
        self.head: bytes | None = None

    @property
    def root_path(self) -> str:
        return self.protocol.root_path

    @property
    def scope(self) -> dict[str, Any]:
        """The ASGI HTTP scope, built once, on first use."""
        scope = self._scope
        if scope is None:
            protocol = self.protocol
            root_path = protocol.root_path
            scope = self._scope = {
                "type": "http",
                "asgi": protocol.asgi,
                "http_version": self.http_version,
                "server": protocol.server,
                "client": protocol.client,
                "scheme": protocol.scheme,
                "method": self.method,
                "root_path": root_path,
                "path": self.path,
                "raw_path": root_path.encode("ascii") + self.raw_path if root_path else self.raw_path,
                "query_string": self.query_string,
                "headers": self.headers,
                "state": protocol.app_state.copy(),
            }
        return scope

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        settle(waiter)

    async def receive(self) -> dict[str, Any]:
        protocol = self.protocol
        if self.expect_continue:
            self.expect_continue = False
            if not self.started and not protocol.closing:
                protocol.write(_CONTINUE)
        while not (self.body or self.complete or self.disconnected or self.finished):
            protocol.resume_reading()
            waiter = self.waiter = protocol.loop.create_future()
            await waiter
        while self.delivered and not (self.disconnected or self.finished):
            waiter = self.waiter = protocol.loop.create_future()
            await waiter
        if self.disconnected or self.finished:
            return _DISCONNECT
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body = []
        self.size = 0
        self.delivered = self.complete
        protocol.resume_reading()
        return {"type": "http.request", "body": body, "more_body": not self.complete}

    async def send(self, message: dict[str, Any]) -> None:
        protocol = self.protocol
        if protocol.flow.writing_paused and not self.disconnected:
            await protocol.flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{kind}'.")
            self.started = True
            self.expect_continue = False
            head = self._head(message["status"], message.get("headers", ()))
            if protocol.running_by_hand:
                self.head = head
            else:
                protocol.write(head)
            return
        if self.finished:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, after response already completed.")
        if kind != "http.response.body":
            raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{kind}'.")
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if self.head_only:
            body = b""
        elif self.chunked:
            chunk = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            body = chunk if more_body else chunk + b"0\r\n\r\n"
        else:
            self.remaining -= len(body)
            if self.remaining < 0:
                raise RuntimeError("Response content longer than Content-Length")
            if not more_body and self.remaining:
                raise RuntimeError("Response content shorter than Content-Length")
        if self.head is not None:
            body = self.head + body
            self.head = None
        if body:
            protocol.write(body)
        if not more_body:
            self.finished = True
            self.wake()
            protocol.response_done(self)

    def answer(self, status: int, content_type: bytes, body: bytes, headers: HeaderList = ()) -> None:
        """Write a whole response whose head needs no checks, in one write (the API's direct path)."""
        protocol = self.protocol
        if self.disconnected or self.started:
            return
        self.started = self.finished = True
        if protocol.access_log:
            self._log(status)
        if headers or not self.keep_alive:
            content = [protocol.answer_head(status, content_type), b"content-length: %d\r\n" % len(body)]
            for name, value in headers:
                content.append(b"%s: %s\r\n" % (name, value))
            content.append(b"\r\n" if self.keep_alive else b"connection: close\r\n\r\n")
            if not self.head_only:
                content.append(body)
            protocol.write(b"".join(content))
        else:
            head = protocol.answer_head(status, content_type)
            length = len(body)
            if self.head_only:
                protocol.write_soon(head + b"content-length: %d\r\n\r\n" % length)
            else:
                protocol.write_soon(head + b"content-length: %d\r\n\r\n%s" % (length, body))
        self.wake()
        protocol.response_done(self)

    def _log(self, status: int) -> None:
        client = self.protocol.client
        query = self.query_string
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "{}:{}".format(*client) if client else "-",
            self.method,
            self.path + ("?" + query.decode("ascii") if query else ""),
            self.http_version,
            status,
        )

    def _head(self, status: int, headers: Any) -> bytes:
        protocol = self.protocol
        if protocol.access_log:
            self._log(status)
        headers = [*protocol.server_state.default_headers, *headers]
        # Both patterns match single bytes, so one search over the joined names (values) checks them all.
        if _HEADER_NAME.search(b"".join([name for name, _ in headers])):
            raise RuntimeError("Invalid HTTP header name.")
        if _HEADER_VALUE.search(b"".join([value for _, value in headers])):
            raise RuntimeError("Invalid HTTP header value.")
        content = [STATUS_LINES[status]]
        length: int | None = None
        close_sent = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and length is None and not self.chunked:
                length = int(value)
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.chunked = True
                length = None
            elif name == b"connection" and b"close" in [token.strip().lower() for token in value.split(b",")]:
                self.keep_alive = False
                close_sent = True
            content.append(b"%s: %s\r\n" % (name, value))
        if not self.keep_alive and not close_sent:
            content.append(b"connection: close\r\n")
        if length is not None:
            self.remaining = length
        elif not self.chunked and not self.head_only and status not in (204, 304):
            self.chunked = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        if self.head_only:
            self.remaining = 0
            self.chunked = False
        return b"".join(content)
