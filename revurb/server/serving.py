"""How uvicorn should serve Revurb: the options every entry point (CLI, workers) shares."""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import TYPE_CHECKING, Any

import uvicorn

from revurb.config import Settings
from revurb.protocol import codes
from revurb.protocol.codes import ErrorCode

if TYPE_CHECKING:
    from revurb.server.app import Revurb

#: The largest frame uvicorn parses at all; each app's own `max_message_size` is checked after.
MIN_WS_MAX_SIZE = 1_048_576
#: How long the plain ASGI path gets to send its 4200 goodbyes before uvicorn closes sockets.
_GOODBYE_SECONDS = 0.2


def uvicorn_options(settings: Settings, fast_path: bool = True) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`.

    The fast path is Revurb's own WebSocket protocol (lean sockets, frame-once broadcasts) and HTTP
    protocol; without it, or with permessage-deflate on, uvicorn's own WebSocket implementation
    (`websockets`, sans-I/O) serves the sockets through plain ASGI.
    """
    largest = max((app.max_message_size for app in settings.apps), default=0)
    deflate = settings.per_message_deflate
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "ws_max_size": max(MIN_WS_MAX_SIZE, largest),
        "ws_per_message_deflate": deflate,
        "ws_ping_interval": None,
        "ws_ping_timeout": None,
        "lifespan": "on",
        "server_header": False,
    }
    if fast_path:
        from revurb.server.http_protocol import RevurbHttpProtocol
        from revurb.server.protocol import RevurbWebSocketProtocol

        options["http"] = RevurbHttpProtocol
        # Compression is per socket, so a broadcast cannot share one frame's bytes: with deflate
        # on, sockets go through uvicorn's own WebSocket layer and the plain ASGI messages.
        if not deflate:
            options["ws"] = RevurbWebSocketProtocol
    return options


class Server(uvicorn.Server):
    """uvicorn's server, which first tells Pusher clients to reconnect (4200) when it shuts down.

    uvicorn closes WebSockets (1012) before the app's lifespan hears of the shutdown; on the fast
    path the protocol asks the app first, and this does the same for the plain ASGI path.
    """

    def __init__(self, config: uvicorn.Config, app: Revurb) -> None:
        super().__init__(config)
        self.revurb = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # What is loaded by now lives as long as the process. Outside the cyclic collector's view, a
        # full collection no longer walks it (about 15 ms, during which no socket is served).
        gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.revurb.registry.close_all(ErrorCode.RECONNECT_NOW, codes.SERVER_SHUTTING_DOWN)
        # The ASGI path writes from one task per socket: give them a moment to hand the frames over.
        await asyncio.sleep(_GOODBYE_SECONDS)
        await super().shutdown(sockets)
