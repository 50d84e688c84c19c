"""What one app's sockets did on this node, as plain counters: bumped on the way, read by metrics.

Each hook is an integer increment on an attribute; nothing here is a Prometheus object, so the hot
path pays no label lookup or lock. `revurb.server.metrics` turns these into samples when scraped.
"""

from __future__ import annotations


class AppTally:
    """Counters of one app on this node; they only ever grow."""

    __slots__ = (
        "opened",
        "closed",
        "frames_in",
        "bytes_in",
        "client_events_in",
        "sent_local",
        "bytes_local",
        "sent_remote",
        "bytes_remote",
        "rate_limited",
    )

    def __init__(self) -> None:
        self.opened = 0
        #: Close code this server sent (None: the client closed) -> sockets gone that way.
        self.closed: dict[int | None, int] = {}
        #: Every frame a client sent, and its length (characters of a text frame).
        self.frames_in = 0
        self.bytes_in = 0
        #: `client-*` events relayed.
        self.client_events_in = 0
        #: Channel deliveries of frames published on this node, and their payload length times sockets.
        self.sent_local = 0
        self.bytes_local = 0
        #: Channel deliveries of frames that came from other nodes over the bus.
        self.sent_remote = 0
        self.bytes_remote = 0
        #: Client events refused by the rate limit (4301).
        self.rate_limited = 0

    def count_close(self, code: int | None) -> None:
        self.closed[code] = self.closed.get(code, 0) + 1
