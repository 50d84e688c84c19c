"""The WebSocket endpoint `{path}/app/{key}`: admission checks, then frames to the protocol core."""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase
from urllib.parse import parse_qs, urlsplit

from revurb.apps import App, AppProvider
from revurb.config import Settings
from revurb.protocol.dispatch import Dispatcher
from revurb.server.asgi_connection import ASGIConnection, too_big
from revurb.server.fast_connection import FastConnection
from revurb.transport.websocket import FASTPATH, WebSocketProtocol
from revurb.wire import codes, frames
from revurb.wire.codes import CLOSE_MESSAGE_TOO_BIG, ErrorCode
from revurb.wire.errors import PusherError
from revurb.wire.types import Receive, Scope, Send

logger = logging.getLogger("revurb.server")
frames_logger = logging.getLogger("revurb.frames")

_MIN_PROTOCOL, _MAX_PROTOCOL = 5, 7


def origin_allowed(app: App, origin: str | None) -> bool:
    """Reverb's rule: `*` allows all; otherwise the Origin's host must match a pattern."""
    if "*" in app.allowed_origins:
        return True
    if not origin:
        return False
    host = (urlsplit(origin).hostname or "").lower()
    return any(fnmatchcase(host, pattern.lower()) for pattern in app.allowed_origins)


def protocol_error(query_string: bytes) -> PusherError | None:
    """Check `?protocol=`; a missing version is accepted (as Reverb and Soketi do)."""
    versions = parse_qs(query_string.decode("latin-1")).get("protocol")
    if not versions:
        return None
    if not versions[0].isdigit():
        return PusherError(ErrorCode.INVALID_VERSION_FORMAT, codes.INVALID_VERSION_FORMAT, True)
    if not _MIN_PROTOCOL <= int(versions[0]) <= _MAX_PROTOCOL:
        return PusherError(ErrorCode.UNSUPPORTED_PROTOCOL, codes.UNSUPPORTED_PROTOCOL, True)
    return None


class PusherEndpoint:
    """A raw ASGI app for one WebSocket: accept, check, then feed every frame to the server."""

    def __init__(self, settings: Settings, provider: AppProvider, server: Dispatcher) -> None:
        self.settings = settings
        self.provider = provider
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        key = scope["path_params"]["key"]
        app = await self.provider.find_by_key(key)
        failure = self._admission_error(scope, app)
        if failure is not None or app is None:
            failure = failure or PusherError(ErrorCode.APP_NOT_FOUND, codes.APP_NOT_FOUND, True)
            await send({"type": "websocket.send", "text": frames.error(failure.code, failure.message)})
            await send({"type": "websocket.close", "code": failure.code, "reason": failure.message})
            return
        # Nothing reads the request headers again; an idle socket should not keep them.
        scope["headers"] = ()
        protocol = scope.get("extensions", {}).get(FASTPATH)
        if protocol is not None and not self.settings.debug:  # --debug logs frames: ASGI path
            await self._serve_fast(protocol, app)
            return
        connection = ASGIConnection(app, send, self.settings.max_pending_output, debug=self.settings.debug)
        if not await self.server.open(connection):
            await connection.flush()
            return
        try:
            await self._receive_loop(connection, receive)
        finally:
            await self.server.close(connection)

    async def _serve_fast(self, protocol: WebSocketProtocol, app: App) -> None:
        """Attach the socket to a `FastConnection` and return: no task stays behind per socket."""
        connection = FastConnection(app, protocol, self.server, self.settings.max_pending_output)
        if not await self.server.open(connection):
            return
        protocol.attach(connection)

    def _admission_error(self, scope: Scope, app: App | None) -> PusherError | None:
        if app is None:
            return PusherError(ErrorCode.APP_NOT_FOUND, codes.APP_NOT_FOUND, True)
        origin = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
                break
        if not origin_allowed(app, origin):
            return PusherError(ErrorCode.UNAUTHORIZED, codes.ORIGIN_NOT_ALLOWED, True)
        return protocol_error(scope.get("query_string", b""))

    async def _receive_loop(self, connection: ASGIConnection, receive: Receive) -> None:
        limit = connection.app.max_message_size
        debug = self.settings.debug
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if debug:
                frames_logger.info("%s -> %s", connection.socket_id, data)
            if too_big(data, limit):
                connection.close(CLOSE_MESSAGE_TOO_BIG, "Message too big")
                continue
            await self.server.message(connection, data)
