"""One `ChannelManager` per app on this node, and the routing of bus messages to them."""

from __future__ import annotations

from typing import Any

from revurb.apps import App
from revurb.channels.manager import ChannelManager
from revurb.scaling.base import Backend, BusMessage
from revurb.wire import frames


class Registry:
    """Finds or creates the manager of an app; routes other nodes' messages to it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.managers: dict[str, ChannelManager] = {}
        #: Set when the server drains: the drain tells each socket to reconnect, in its own time.
        self.draining = False

    def manager(self, app: App) -> ChannelManager:
        manager = self.managers.get(app.id)
        if manager is None:
            manager = self.managers[app.id] = ChannelManager(app, self.backend)
        elif manager.app is not app:
            # A provider may hand out a fresh App object with new options; keep the newest.
            manager.app = app
        return manager

    def on_bus_message(self, message: BusMessage) -> None:
        manager = self.managers.get(message["app"])
        if manager is not None:
            manager.deliver_local(message)

    def on_members_changed(
        self, app_id: str, channel: str, added: dict[str, Any], removed: list[str]
    ) -> None:
        """Announce presence changes found by the backend (a dead node swept) to every node."""
        outgoing = [frames.member_added(channel, user_id, info) for user_id, info in added.items()]
        outgoing += [frames.member_removed(channel, user_id) for user_id in removed]
        manager = self.managers.get(app_id)
        for frame in outgoing:
            if manager is not None:
                manager.broadcast(channel, frame)
            else:
                self.backend.publish({"type": "event", "app": app_id, "channel": channel, "frame": frame})

    def sweep(self) -> None:
        for manager in list(self.managers.values()):
            manager.sweep()

    def close_all(self, code: int, reason: str) -> None:
        for manager in list(self.managers.values()):
            manager.close_all(code, reason)
