"""The live dashboard and debug console (docs/dashboard.md), served at `{path}{dashboard.path}`.

`Dashboard` puts the parts together: logins (`session.py`, `throttle.py`), this node's figures
(`figures.py`), the other nodes' through Redis (`share.py`), the console's taps (`consoles.py`,
`relay.py`), the live feed (`feed.py`), the test event (`sender.py`) and the routes and static
files (`routes.py`, `static/`). `create_app` builds one only when the dashboard is enabled.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any, Protocol

from revurb.api.routes import HttpApi
from revurb.apps import AppProvider
from revurb.channels.registry import Registry
from revurb.config import Settings
from revurb.scaling.base import Backend
from revurb.server.dashboard.consoles import Consoles
from revurb.server.dashboard.figures import NodeFigures, Sampler
from revurb.server.dashboard.session import Session, Sessions
from revurb.server.dashboard.share import ClusterShare
from revurb.server.dashboard.throttle import LoginThrottle
from revurb.server.dashboard.view import NodeView, node_view
from revurb.server.drain import Drain
from revurb.server.metrics import snapshot_of

if TYPE_CHECKING:
    from starlette.routing import Route


class Part(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def node_name(settings: Settings) -> str:
    """How the page names this node: host, port and process (workers share a port)."""
    return f"{socket.gethostname()}:{settings.port} pid {os.getpid()}"


class Dashboard:
    """Everything the dashboard serves from, for one Revurb app."""

    def __init__(
        self,
        settings: Settings,
        provider: AppProvider,
        registry: Registry,
        backend: Backend,
        api: HttpApi,
        drain: Drain,
    ) -> None:
        options = settings.dashboard
        if options.secret is None:  # the settings refuse this; a hand-built Settings may not
            raise ValueError("the dashboard needs a secret (REVURB_DASHBOARD_SECRET)")
        self.settings = settings
        self.provider = provider
        self.registry = registry
        self.backend = backend
        self.api = api
        self.drain = drain
        self.base = settings.path + options.path
        self.sessions = Sessions(options.secret)
        self.throttle = LoginThrottle()
        pid = os.getpid()
        self.own = NodeFigures(backend.node_id, node_name(settings))
        self.sampler = Sampler(
            self.own, lambda: snapshot_of(registry, api.tally, backend, pid), self.bus_state
        )
        self.consoles = Consoles(registry, self.own.id, options.console_rate)
        self.share: ClusterShare | None = None
        self.parts: list[Part] = [self.sampler]
        if settings.scaling.enabled:
            from revurb.server.dashboard.relay import ConsoleRelay

            self.share = ClusterShare(
                settings.scaling, options.share_interval, self.own, self.consoles.watching
            )
            self.parts += [self.share, ConsoleRelay(settings.scaling, registry, self.consoles, self.share)]

    def bus_state(self) -> dict[str, Any]:
        """The backend's bus as `/up` reports it: its driver and whether it is connected."""
        scaling = self.backend.health().get("scaling")
        if not isinstance(scaling, dict):
            return {"driver": "memory", "connected": True}
        return {"driver": scaling.get("driver", "redis"), "connected": bool(scaling.get("connected"))}

    def nodes(self, session: Session, history: bool = False) -> list[NodeView]:
        """This node first, then the others by name."""
        views = [node_view(self.own, True, session, history)]
        if self.share is not None:
            others = sorted(self.share.others.values(), key=lambda node: node.name)
            views += [node_view(node, False, session, history) for node in others]
        return views

    def cluster(self) -> dict[str, Any]:
        share = self.share
        return {"enabled": share is not None, "connected": share is not None and share.connected}

    def routes(self) -> list[Route]:
        from revurb.server.dashboard.routes import DashboardRoutes

        return DashboardRoutes(self).routes()
