"""Revurb's side of the transport hook: the HTTP API and Pusher sockets served without ASGI messages.

`revurb.transport` asks every protocol object's app for its `transport_fast_path` once. Revurb's
answer routes complete HTTP API requests straight to `HttpApi.answer` (one write for the response)
and serves `{path}/app/{key}` sockets as `FastConnection`s that need no task while idle.
"""

from __future__ import annotations

from collections.abc import Awaitable
from functools import partial

from revurb.api.routes import ApiResponse, HttpApi, Matched
from revurb.apps import AppProvider, ConfigAppProvider
from revurb.config import Settings
from revurb.protocol.dispatch import Dispatcher
from revurb.scaling.base import Backend
from revurb.scaling.memory import MemoryBackend
from revurb.server.address_limit import OVER_CAP, AddressLimit, client_address
from revurb.server.admission import admit
from revurb.server.fast_connection import FastConnection
from revurb.transport.codec import encode_text
from revurb.transport.hook import (
    FrameHandler,
    HttpAnswer,
    HttpRoute,
    Limits,
    RequestHead,
    Scope,
    WebSocketRoute,
)
from revurb.transport.websocket import WebSocketProtocol
from revurb.wire import frames
from revurb.wire.errors import PusherError

JSON = b"application/json"


class RevurbFastPath:
    """Implements `revurb.transport.hook.FastPath` for one Revurb app."""

    __slots__ = (
        "eager",
        "limits",
        "_settings",
        "_provider",
        "_dispatcher",
        "_api",
        "_socket_prefix",
        "_addresses",
    )

    def __init__(
        self,
        settings: Settings,
        provider: AppProvider,
        dispatcher: Dispatcher,
        api: HttpApi,
        backend: Backend,
        addresses: AddressLimit,
    ) -> None:
        # Redis clients and app providers that hit a database need a Task (`asyncio.timeout` and the
        # like); the memory backend with configured apps never suspends before it answers.
        self.eager = isinstance(backend, MemoryBackend) and type(provider) is ConfigAppProvider
        self._settings = settings
        self._provider = provider
        self._dispatcher = dispatcher
        self._api = api
        self._socket_prefix = settings.path + "/app/"
        self._addresses = addresses
        refused = api.body_too_large()
        self.limits = Limits(
            head_timeout=settings.limits.request_head_timeout,
            max_headers=settings.limits.max_headers,
            # No route of Revurb's takes a body larger than the API's.
            max_body_size=settings.max_request_size,
            body_too_large=HttpAnswer(refused.status, JSON, frames.dumps_bytes({"error": refused.message})),
        )

    # HTTP

    def http_route(self, head: RequestHead) -> HttpRoute | None:
        path = head.path
        root = head.root_path
        local_path = path[len(root) :] if root and path.startswith(root) else path
        matched = self._api.match_path(local_path)
        return None if matched is None else partial(self._answer, matched, local_path)

    def _answer(
        self, matched: Matched, local_path: str, head: RequestHead, body: bytes
    ) -> HttpAnswer | Awaitable[HttpAnswer]:
        answer = self._api.answer(head.method, local_path, head.path, head.query_string, body, matched)
        if isinstance(answer, ApiResponse):
            return HttpAnswer(answer.status, JSON, answer.body, answer.headers)
        return self._answer_later(answer)

    @staticmethod
    async def _answer_later(answer: Awaitable[ApiResponse]) -> HttpAnswer:
        response = await answer
        return HttpAnswer(response.status, JSON, response.body, response.headers)

    # WebSocket

    def websocket_route(self, scope: Scope) -> WebSocketRoute | None:
        if self._settings.debug:  # --debug logs every frame: the ASGI endpoint does that
            return None
        if self._api.refusing:  # draining: the ASGI app refuses the handshake
            return None
        path = self._api.local_path(scope)
        if not path.startswith(self._socket_prefix):
            return None
        key = path[len(self._socket_prefix) :]
        if not key or "/" in key:
            return None
        return partial(self._serve, key)

    async def _serve(self, key: str, scope: Scope, socket: WebSocketProtocol) -> FrameHandler | None:
        """Accept the socket, admit it (or refuse it with a `pusher:error`), and open it."""
        socket.accept()
        address = client_address(scope)
        if not self._addresses.take(address):
            self._refuse(socket, OVER_CAP)
            return None
        try:
            admitted = await admit(self._provider, key, scope["headers"], scope["query_string"])
            if isinstance(admitted, PusherError):
                self._refuse(socket, admitted)
                self._addresses.give_back(address)
                return None
            # From now on a message over the app's limit is refused at its first frame header (1009).
            socket.limit_message_size(admitted.max_message_size)
            connection = FastConnection(
                admitted, socket, self._dispatcher, self._settings.max_pending_output, self.eager
            )
            opened = await self._dispatcher.open(connection)
        except BaseException:
            self._addresses.give_back(address)
            raise
        if not opened:
            self._addresses.give_back(address)
            return None
        return self._addresses.handler(connection, address)

    @staticmethod
    def _refuse(socket: WebSocketProtocol, error: PusherError) -> None:
        socket.write(encode_text(frames.error(error.code, error.message)))
        socket.close(error.code, error.message)
