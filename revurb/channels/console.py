"""The debug console's tap on one app: what its sockets and its API do, told to whoever watches.

A `ChannelManager` holds `console = None` while nobody watches its app, so each place that reports
to the console costs one attribute check and nothing else. While a console is open, an entry is
built once, at most `rate` entries a second are kept (the rest are only counted), and each goes
into the bounded buffer of every watcher whose channel filter it passes.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Literal, NotRequired, TypedDict

from revurb.wire import frames

#: Characters of an event's data an entry keeps; the size says how long it was.
DATA_PREVIEW = 1024
#: Entries one watcher holds until its feed takes them; the oldest go first.
WATCHER_BUFFER = 2000

EntryKind = Literal["opened", "closed", "subscribed", "unsubscribed", "api_event", "client_event", "webhook"]


class ConsoleEntry(TypedDict):
    """One line of the debug console, as the page gets it."""

    kind: EntryKind
    #: Seconds since the epoch.
    time: float
    node: str
    socket_id: NotRequired[str | None]
    channel: NotRequired[str]
    event: NotRequired[str]
    #: Length of the event's data (characters), before truncation.
    size: NotRequired[int]
    data: NotRequired[str]
    truncated: NotRequired[bool]
    #: Close code this server sent (None: the client closed), or a webhook's HTTP status.
    code: NotRequired[int | None]


class Watcher:
    """One open console: an optional channel-name prefix and a bounded buffer its feed drains.

    `forward`: the watcher sends this node's entries to consoles on other nodes, so entries that
    came from another node are not given to it.
    """

    __slots__ = ("channel_prefix", "forward", "entries", "dropped")

    def __init__(
        self, channel_prefix: str | None = None, size: int = WATCHER_BUFFER, forward: bool = False
    ) -> None:
        self.channel_prefix = channel_prefix or None
        self.forward = forward
        self.entries: deque[ConsoleEntry] = deque(maxlen=size)
        #: Entries pushed out of a full buffer before the feed took them.
        self.dropped = 0

    def wants(self, channel: str | None) -> bool:
        """With a filter, only entries of a matching channel; without, everything."""
        prefix = self.channel_prefix
        return prefix is None or (channel is not None and channel.startswith(prefix))

    def put(self, entry: ConsoleEntry) -> None:
        if len(self.entries) == self.entries.maxlen:
            self.dropped += 1
        self.entries.append(entry)

    def take(self) -> list[ConsoleEntry]:
        taken = list(self.entries)
        self.entries.clear()
        return taken


class ConsoleTap:
    """Set on an app's `ChannelManager` while at least one console watches it."""

    __slots__ = ("node", "rate", "watchers", "skipped", "_window", "_count")

    def __init__(self, node: str, rate: int) -> None:
        self.node = node
        self.rate = rate
        self.watchers: list[Watcher] = []
        #: Entries left out because more than `rate` came in one second.
        self.skipped = 0
        self._window = 0.0
        self._count = 0

    # What the core reports

    def opened(self, socket_id: str) -> None:
        if self._admit(None):
            entry = self._entry("opened")
            entry["socket_id"] = socket_id
            self._emit(entry, None)

    def closed(self, socket_id: str, code: int | None) -> None:
        if self._admit(None):
            entry = self._entry("closed")
            entry["socket_id"], entry["code"] = socket_id, code
            self._emit(entry, None)

    def subscribed(self, socket_id: str, channel: str) -> None:
        self._membership("subscribed", socket_id, channel)

    def unsubscribed(self, socket_id: str, channel: str) -> None:
        self._membership("unsubscribed", socket_id, channel)

    def api_event(self, channel: str, event: str, data: str, socket_id: str | None) -> None:
        """An event published through the HTTP API (`socket_id`: the one it excludes)."""
        self._event("api_event", socket_id, channel, event, data)

    def client_event(self, socket_id: str, channel: str, event: str, data: Any) -> None:
        self._event("client_event", socket_id, channel, event, data)

    def webhook(self, event: str, channel: str | None, status: int | None) -> None:
        """A webhook request sent for this app: its event kind, channel and HTTP status (None: no
        answer). For the webhook sender to call; nothing calls it until webhooks are sent."""
        if self._admit(channel):
            entry = self._entry("webhook")
            entry["event"], entry["code"] = event, status
            if channel is not None:
                entry["channel"] = channel
            self._emit(entry, channel)

    # Entries from another node's tap (the cluster feed), already sampled there

    def relay(self, entry: ConsoleEntry) -> None:
        channel = entry.get("channel")
        for watcher in self.watchers:
            if not watcher.forward and watcher.wants(channel):
                watcher.put(entry)

    # Sampling and fan-out

    def _admit(self, channel: str | None) -> bool:
        """Whether anyone wants the entry, within this second's budget."""
        if not any(watcher.wants(channel) for watcher in self.watchers):
            return False
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window = now
            self._count = 0
        self._count += 1
        if self._count > self.rate:
            self.skipped += 1
            return False
        return True

    def _entry(self, kind: EntryKind) -> ConsoleEntry:
        return {"kind": kind, "time": time.time(), "node": self.node}

    def _membership(self, kind: EntryKind, socket_id: str, channel: str) -> None:
        if self._admit(channel):
            entry = self._entry(kind)
            entry["socket_id"], entry["channel"] = socket_id, channel
            self._emit(entry, channel)

    def _event(self, kind: EntryKind, socket_id: str | None, channel: str, event: str, data: Any) -> None:
        if not self._admit(channel):
            return
        text = data if isinstance(data, str) else frames.dumps(data)
        entry: ConsoleEntry = {
            "kind": kind,
            "time": time.time(),
            "node": self.node,
            "socket_id": socket_id,
            "channel": channel,
            "event": event,
            "size": len(text),
            "data": text[:DATA_PREVIEW],
            "truncated": len(text) > DATA_PREVIEW,
        }
        self._emit(entry, channel)

    def _emit(self, entry: ConsoleEntry, channel: str | None) -> None:
        for watcher in self.watchers:
            if watcher.wants(channel):
                watcher.put(entry)
