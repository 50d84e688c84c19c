"""The WebSocket endpoint `{path}/app/{key}` through plain ASGI messages: any ASGI server, mounted
apps, `--debug`. (On Revurb's own transport, `fast_path.py` serves the same socket directly.)"""

from __future__ import annotations

import logging

from revurb.apps import AppProvider
from revurb.config import Settings
from revurb.protocol.dispatch import Dispatcher
from revurb.server.address_limit import OVER_CAP, AddressLimit, client_address
from revurb.server.admission import admit
from revurb.server.asgi_connection import MESSAGE_TOO_BIG, ASGIConnection, too_big
from revurb.transport.codec import CloseCode
from revurb.wire import frames
from revurb.wire.errors import PusherError
from revurb.wire.types import Receive, Scope, Send

frames_logger = logging.getLogger("revurb.frames")

#: Codes uvicorn's WebSocket layer closes with when it refuses a client's input (a protocol error,
#: invalid UTF-8, a message over `ws_max_size`). The disconnect it reports carries no sign of who
#: closed, so a client closing with one of these is counted the same way (only in metrics).
_REFUSALS = (CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_DATA, CloseCode.MESSAGE_TOO_BIG)


class PusherEndpoint:
    """A raw ASGI app for one WebSocket: accept, check, then feed every frame to the dispatcher."""

    def __init__(
        self, settings: Settings, provider: AppProvider, dispatcher: Dispatcher, addresses: AddressLimit
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.dispatcher = dispatcher
        self.addresses = addresses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        address = client_address(scope)
        if not self.addresses.take(address):
            await self._refuse(send, OVER_CAP)
            return
        try:
            await self._serve(scope, receive, send)
        finally:
            self.addresses.give_back(address)

    @staticmethod
    async def _refuse(send: Send, error: PusherError) -> None:
        await send({"type": "websocket.send", "text": frames.error(error.code, error.message)})
        await send({"type": "websocket.close", "code": error.code, "reason": error.message})

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        admitted = await admit(
            self.provider, scope["path_params"]["key"], scope["headers"], scope.get("query_string", b"")
        )
        if isinstance(admitted, PusherError):
            await self._refuse(send, admitted)
            return
        # Nothing reads the request headers again; an idle socket should not keep them.
        scope["headers"] = ()
        connection = ASGIConnection(
            admitted, send, self.settings.max_pending_output, debug=self.settings.debug
        )
        if not await self.dispatcher.open(connection):
            await connection.flush()
            return
        try:
            await self._receive_loop(connection, receive)
        finally:
            await self.dispatcher.close(connection)

    async def _receive_loop(self, connection: ASGIConnection, receive: Receive) -> None:
        limit = connection.app.max_message_size
        debug = self.settings.debug
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                if message.get("code") in _REFUSALS and connection.close_code is None:
                    connection.close_code = message["code"]
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if debug:
                frames_logger.info("%s -> %s", connection.socket_id, data)
            if too_big(data, limit):
                connection.close(CloseCode.MESSAGE_TOO_BIG, MESSAGE_TOO_BIG)
                continue
            await self.dispatcher.message(connection, data)
