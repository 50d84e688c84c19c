"""What a server's app offers the transport, read once per server instead of once per connection."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config

from revurb.transport.forwarded import TrustedProxies, trusted_proxies
from revurb.transport.hook import DEFAULT_LIMITS, FastPath, Limits, fast_path_of
from revurb.transport.http_request import access_logger

#: Header bytes per request when uvicorn's `h11_max_incomplete_event_size` is not set (h11's default).
MAX_HEADER_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class Served:
    """The app of one uvicorn `Config` as the protocols see it."""

    app: Any
    #: The app's direct routes, if it offers the transport hook.
    fast_path: FastPath | None
    #: The hook's routes may run by hand until they suspend (`FastPath.eager`), as uvicorn allows.
    eager: bool
    #: uvicorn's trusted proxies, applied to the scope of a socket served through the hook.
    trusted: TrustedProxies | None
    limits: Limits
    header_limit: int
    asgi_version: str
    #: Requests are logged to `uvicorn.access` (as uvicorn decides, plus the level: `revurb start` keeps
    #: the logger but logs no requests). Logging is configured before the first connection.
    access_log: bool


_last: tuple[Config, Served] | None = None


def served(config: Config) -> Served:
    """`config`'s app as served (a server's protocols all share one `Config`: one entry is kept)."""
    global _last
    last = _last
    if last is not None and last[0] is config:
        return last[1]
    if not config.loaded:
        config.load()
    app = config.loaded_app
    fast_path = fast_path_of(app)
    result = Served(
        app=app,
        fast_path=fast_path,
        eager=fast_path is not None and fast_path.eager and not config.reset_contextvars,
        trusted=trusted_proxies(app) if fast_path is not None else None,
        limits=fast_path.limits if fast_path is not None else DEFAULT_LIMITS,
        header_limit=config.h11_max_incomplete_event_size or MAX_HEADER_BYTES,
        asgi_version=config.asgi_version,
        access_log=access_logger.hasHandlers() and access_logger.isEnabledFor(logging.INFO),
    )
    _last = (config, result)
    return result
