"""Which apps a debug console watches on this node: the taps set on (and taken off) their managers.

An app's `ChannelManager.console` is a `ConsoleTap` exactly while some watcher wants the app: a
console open on this node, or one on another node that this node sends its entries to
(`relay.py`). With the last watcher gone the tap is removed and the app costs nothing again.
"""

from __future__ import annotations

from revurb.apps import App
from revurb.channels.console import ConsoleTap, Watcher
from revurb.channels.manager import ChannelManager
from revurb.channels.registry import Registry


class Consoles:
    """Opens and closes console watchers, keeping each app's tap in step with them."""

    def __init__(self, registry: Registry, node: str, rate: int) -> None:
        self.registry = registry
        self.node = node
        self.rate = rate
        #: App id -> the watchers of consoles open on this node.
        self.local: dict[str, list[Watcher]] = {}

    def watch(self, app: App, channel_prefix: str | None) -> Watcher:
        watcher = Watcher(channel_prefix)
        self.local.setdefault(app.id, []).append(watcher)
        self.attach(self.registry.manager(app), watcher)
        return watcher

    def unwatch(self, app: App, watcher: Watcher) -> None:
        watchers = self.local.get(app.id, [])
        if watcher in watchers:
            watchers.remove(watcher)
        if not watchers:
            self.local.pop(app.id, None)
        self.detach(self.registry.manager(app), watcher)

    def watching(self) -> list[str]:
        """Apps with a console open on this node."""
        return sorted(self.local)

    def attach(self, manager: ChannelManager, watcher: Watcher) -> ConsoleTap:
        tap = manager.console
        if tap is None:
            tap = manager.console = ConsoleTap(self.node, self.rate)
        tap.watchers.append(watcher)
        return tap

    @staticmethod
    def detach(manager: ChannelManager, watcher: Watcher) -> None:
        tap = manager.console
        if tap is None:
            return
        if watcher in tap.watchers:
            tap.watchers.remove(watcher)
        if not tap.watchers:
            manager.console = None
