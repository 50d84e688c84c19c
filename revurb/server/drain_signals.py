"""The drain under a server that is not `revurb start`'s own: SIGTERM and SIGINT start it at once.

`uvicorn revurb.asgi:app`, and each worker of `revurb start --workers N`, runs uvicorn's own server,
which would close the listener and every socket (`SERVICE_RESTART`, or `RECONNECT_NOW` all at once)
before the app's lifespan hears of the shutdown. Chained in front of uvicorn's signal handlers, this
runs the whole drain first (readiness 503, the cluster share released, `RECONNECT_NOW` spread over
the drain window) and only then hands the signal to uvicorn. A second signal goes straight through.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from revurb.server.drain import Drain

logger = logging.getLogger("revurb.server.drain")

SIGNALS = (signal.SIGTERM, signal.SIGINT)

Undo = Callable[[], None]


def drain_on_signals(drain: Drain) -> Undo:
    """Chain the drain in front of the current SIGTERM / SIGINT handlers; returns how to undo it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}
    for sig in SIGNALS:
        handler = signal.getsignal(sig)
        if not callable(handler):
            continue  # default or ignored: whoever serves us does not stop gracefully on it

        def chained(number: int, frame: FrameType | None, handler: Any = handler) -> None:
            if drain.refusing:  # a second signal: no more waiting, let the server stop now
                drain.hurry()
                handler(number, frame)
                return
            drain.refuse()

            def begin() -> None:
                # The server carries on (readiness 503, new work refused) until the drain is done.
                drain.start().add_done_callback(lambda _: handler(number, frame))

            loop.call_soon_threadsafe(begin)

        previous[sig] = handler
        signal.signal(sig, chained)

    def undo() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return undo
