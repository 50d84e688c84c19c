"""The page's live feed: Server-Sent Events with each second's figures and the debug console's entries.

One response per open page (and one more per open console). The loop wakes a few times a second:
it sends the newest sample of every node when there is one, and whatever the console's watcher has
collected. It ends when the client goes, when the server drains, or after `STREAM_SECONDS` (the
browser's `EventSource` reconnects by itself), so no stream can hold up a shutdown for long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from revurb.channels.console import Watcher
from revurb.server.dashboard.session import Session
from revurb.server.dashboard.view import NodeView
from revurb.wire import frames

#: How often the loop looks for news: with a console open, and without.
CONSOLE_POLL_SECONDS = 0.1
TICK_POLL_SECONDS = 0.25
#: A stream ends after this long; the browser reconnects after `RETRY_MS`.
STREAM_SECONDS = 300.0
RETRY_MS = 1000
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
MEDIA_TYPE = "text/event-stream"


def message(event: str, payload: Any) -> bytes:
    """One SSE message; the JSON has no newline in it, so it is one `data:` line."""
    return b"event: " + event.encode() + b"\ndata: " + frames.dumps_bytes(payload) + b"\n\n"


class Feed:
    """What one stream sends: ticks (unless `ticks` is off) and, with a watcher, console entries."""

    def __init__(
        self,
        session: Session,
        nodes: Callable[[Session], list[NodeView]],
        latest: Callable[[], float],
        stopping: Callable[[], bool],
        watcher: Watcher | None = None,
        skipped: Callable[[], int] = lambda: 0,
        ticks: bool = True,
    ) -> None:
        self.session = session
        self.nodes = nodes
        self.latest = latest
        self.stopping = stopping
        self.watcher = watcher
        self.skipped = skipped
        self.ticks = ticks

    def console(self) -> bytes | None:
        watcher = self.watcher
        if watcher is None or not watcher.entries:
            return None
        entries = watcher.take()
        return message("console", {"entries": entries, "skipped": self.skipped(), "dropped": watcher.dropped})

    async def events(self) -> AsyncIterator[bytes]:
        yield b"retry: %d\n\n" % RETRY_MS
        poll = CONSOLE_POLL_SECONDS if self.watcher is not None else TICK_POLL_SECONDS
        ends = time.monotonic() + STREAM_SECONDS
        sent_tick = None
        if self.watcher is not None:
            yield message("console", {"entries": [], "skipped": self.skipped(), "dropped": 0})
        while not self.stopping() and time.monotonic() < ends:
            latest = self.latest()
            if self.ticks and latest != sent_tick:
                sent_tick = latest
                yield message("tick", {"nodes": self.nodes(self.session)})
            entries = self.console()
            if entries is not None:
                yield entries
            await asyncio.sleep(poll)
