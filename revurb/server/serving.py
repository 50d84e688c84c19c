"""How uvicorn should serve Revurb: the options every entry point (CLI, workers) shares."""

from __future__ import annotations

from typing import Any

from revurb.config import Settings

#: The largest frame uvicorn parses at all; each app's own `max_message_size` is checked after.
MIN_WS_MAX_SIZE = 1_048_576


def uvicorn_options(settings: Settings, fast_path: bool = True) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`.

    The fast path is Revurb's own WebSocket protocol (lean sockets, frame-once broadcasts); without
    it uvicorn's `websockets` implementation serves plain ASGI, with compression still off.
    """
    largest = max((app.max_message_size for app in settings.apps), default=0)
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "ws_max_size": max(MIN_WS_MAX_SIZE, largest),
        "ws_per_message_deflate": False,
        "ws_ping_interval": None,
        "ws_ping_timeout": None,
        "lifespan": "on",
        "server_header": False,
    }
    if fast_path:
        from revurb.server.protocol import RevurbWebSocketProtocol

        options["ws"] = RevurbWebSocketProtocol
    return options
