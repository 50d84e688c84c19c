"""One `ChannelManager` per app on this node, and the routing of bus messages to them."""

from __future__ import annotations

from revurb.apps import App
from revurb.channels.manager import ChannelManager
from revurb.channels.names import forget_valid_names
from revurb.scaling.base import Backend, BusMessage


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

    def compact(self) -> None:
        """After a wave of sockets has gone: tables at the size they need now, no names kept for them."""
        for manager in self.managers.values():
            manager.compact()
        forget_valid_names()

    async def reconcile(self) -> bool:
        """After an outage, bring every app's presence sockets in line with Redis (see the manager)."""
        done = True
        for manager in list(self.managers.values()):
            done = await manager.reconcile() and done
        return done

    async def stop(self) -> None:
        """Cancel every manager's background work (shutdown)."""
        for manager in list(self.managers.values()):
            await manager.stop()

    def sweep(self) -> None:
        for manager in list(self.managers.values()):
            manager.sweep()

    def close_all(self, code: int, reason: str) -> None:
        for manager in list(self.managers.values()):
            manager.close_all(code, reason)
