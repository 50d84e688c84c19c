"""The one hook through which an ASGI app offers the transport a faster path than ASGI messages.

Each protocol object asks for it once (`fast_path_of(config.loaded_app)`). An app that offers it is
asked per request (HTTP) or per socket (WebSocket) whether it serves that route directly; when it
does not, or when the app offers no hook at all, the request goes through plain ASGI as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

if TYPE_CHECKING:
    from revurb.transport.websocket import WebSocketProtocol

#: The attribute of an ASGI app that holds its `FastPath`.
HOOK_ATTRIBUTE = "transport_fast_path"

Scope = MutableMapping[str, Any]
Headers = Sequence[tuple[bytes, bytes]]


class HttpAnswer(NamedTuple):
    """A whole response, written in one go: status, content type, body and any extra headers."""

    status: int
    content_type: bytes
    body: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """What the transport refuses, and how long it waits, on an app's behalf.

    The defaults apply to any app; an app that offers the hook sets its own (`FastPath.limits`).
    """

    #: Seconds a connection may take to send a whole request head: from its first byte (or from the
    #: connection, for its first request) to the blank line. Then 408 (or a silent close if nothing came).
    head_timeout: float = 20.0
    #: Header lines in one request head; more is refused with 431 (as h11's and nginx's caps are).
    max_headers: int = 100
    #: Request bodies over this many bytes are refused with `body_too_large` as soon as that is known
    #: (from `Content-Length`, or from the chunks so far), and the connection closed. None: no limit.
    max_body_size: int | None = None
    body_too_large: HttpAnswer = HttpAnswer(413, b"text/plain; charset=utf-8", b"Request body too large.")


#: The limits of an app that offers no hook.
DEFAULT_LIMITS = Limits()


class FrameHandler(Protocol):
    """Takes a socket's messages once its WebSocket route has returned it."""

    def on_message(self, data: str | bytes) -> None: ...

    def on_disconnect(self) -> None: ...

    def on_shutdown(self) -> None:
        """The server is stopping: say goodbye and close (instead of a plain `SERVICE_RESTART` close)."""


class RequestHead(Protocol):
    """What a direct HTTP route reads of its request (the ASGI scope is built only if asked for)."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str:
        """The percent-decoded path, with the server's `root_path` in front, as in the scope."""

    @property
    def root_path(self) -> str: ...

    @property
    def query_string(self) -> bytes: ...

    @property
    def headers(self) -> Headers: ...

    @property
    def scope(self) -> Scope:
        """The request's ASGI scope, built on first use."""


#: Answers a complete HTTP request (its head and whole body) without ASGI messages: at once, with an
#: `HttpAnswer`, or later, with an awaitable of one. For an `eager` app it is called in the transport's
#: own callback (no Task, no copied context), so it must not block or set context variables before it
#: returns; otherwise it is called in the request's Task.
HttpRoute = Callable[[RequestHead, bytes], HttpAnswer | Awaitable[HttpAnswer]]
#: Serves an upgraded socket: accepts (or refuses) it and returns the handler of its frames, if any.
WebSocketRoute = Callable[[Scope, "WebSocketProtocol"], Awaitable[FrameHandler | None]]


class FastPath(Protocol):
    """What an app offers the transport."""

    @property
    def eager(self) -> bool:
        """Whether the app's direct HTTP and WebSocket routes may run outside a Task until they first
        suspend (they never call `asyncio.current_task()`, `asyncio.timeout` and the like before that)."""

    @property
    def limits(self) -> Limits:
        """The limits the transport enforces for this app."""

    def http_route(self, head: RequestHead) -> HttpRoute | None:
        """The direct handler of an HTTP request, or None to serve it through ASGI."""

    def websocket_route(self, scope: Scope) -> WebSocketRoute | None:
        """The direct handler of a WebSocket, or None to serve it through ASGI."""


def fast_path_of(app: object) -> FastPath | None:
    """The hook `app` offers, seen through uvicorn's proxy-headers wrapper; else None.

    Any other wrapper (an embedding host's middleware, uvicorn's trace logger) must see every
    request, so then there is no hook.
    """
    if isinstance(app, ProxyHeadersMiddleware):
        app = app.app
    hook: FastPath | None = getattr(app, HOOK_ATTRIBUTE, None)
    return hook
