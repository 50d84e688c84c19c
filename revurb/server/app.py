"""`create_app()`: the Starlette application with the WebSocket endpoint, the HTTP API and `/up`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from revurb.api.routes import HttpApi
from revurb.apps import App, AppProvider, ConfigAppProvider, create_provider
from revurb.channels.registry import Registry
from revurb.config import ConfigError, Settings
from revurb.protocol.dispatch import Dispatcher
from revurb.scaling.base import Backend
from revurb.scaling.memory import MemoryBackend
from revurb.server.address_limit import AddressLimit
from revurb.server.drain import Drain
from revurb.server.endpoint import PusherEndpoint
from revurb.server.fast_path import RevurbFastPath
from revurb.server.probes import health, json_response, metrics, ready
from revurb.server.restart import RestartWatch
from revurb.transport.release import compact_after_waves
from revurb.webhooks import Webhooks
from revurb.wire.types import Receive, Scope, Send

if TYPE_CHECKING:
    from revurb.server.dashboard import Dashboard

logger = logging.getLogger("revurb.server")

#: Bounds of the ping / prune sweep period, derived from the shortest ping interval.
_SWEEP_MIN, _SWEEP_MAX = 0.05, 5.0
#: RFC 6455 "try again later", for a handshake that races in during the drain.
_TRY_ANOTHER_SERVER = 1013


class Revurb(Starlette):
    """The ASGI app. `state.revurb` exposes the parts for embedding hosts and tests."""

    registry: Registry
    backend: Backend
    provider: AppProvider
    settings: Settings
    api: HttpApi
    #: Offered to Revurb's own transport (`revurb.transport.hook.HOOK_ATTRIBUTE`).
    transport_fast_path: RevurbFastPath
    drain: Drain
    webhooks: Webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The HTTP API answers before Starlette's middleware and router: triggers are the hot path.
        if scope["type"] == "http":
            matched = self.api.match(scope)
            if matched is not None:
                await self.api(scope, receive, send, matched)
                return
        elif scope["type"] == "websocket" and self.drain.refusing:
            # Closing before accepting refuses the handshake (HTTP 403): a proxy tries another node.
            await receive()
            await send({"type": "websocket.close", "code": _TRY_ANOTHER_SERVER})
            return
        await super().__call__(scope, receive, send)


class Part(Protocol):
    """Something the lifespan starts after the backend and stops after the drain."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_app(
    settings: Settings | None = None,
    *,
    apps: Sequence[App] | None = None,
    provider: AppProvider | None = None,
    backend: Backend | None = None,
    drain_on_signals: bool = False,
) -> Revurb:
    """Build the app. Apps come from `provider`, else `apps`, else `settings.apps`.

    `drain_on_signals` starts the drain from SIGTERM / SIGINT (for servers other than `revurb start`'s).
    """
    settings = settings or Settings()
    if provider is None:
        provider = (
            ConfigAppProvider(apps)
            if apps is not None
            else create_provider(settings.app_provider, settings.apps, settings)
        )
    backend = backend or backend_for(settings)
    registry = Registry(backend)
    compact_after_waves(registry)  # once a wave of sockets has gone, its tables shrink
    dispatcher = Dispatcher(registry)
    api = HttpApi(settings, provider, registry)
    drain = Drain(settings, registry, backend, api)
    addresses = AddressLimit(settings.limits.max_connections_per_ip)
    webhooks = Webhooks(settings.webhooks, provider, registry, backend)
    path = settings.path
    routes: list[BaseRoute] = [
        WebSocketRoute(path + "/app/{key}", PusherEndpoint(settings, provider, dispatcher, addresses)),
        Route("/up", health, methods=["GET", "HEAD"]),
        Route("/ready", ready, methods=["GET", "HEAD"]),
    ]
    if path:
        routes.append(Route(path + "/up", health, methods=["GET", "HEAD"]))
        routes.append(Route(path + "/ready", ready, methods=["GET", "HEAD"]))
    if settings.metrics.on_main_port:
        routes.append(Route(path + "/metrics", metrics, methods=["GET"]))
    dashboard = _dashboard(settings, provider, registry, backend, api, drain)
    if dashboard is not None:
        routes += dashboard.routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start(registry)
        sweeper = asyncio.create_task(_sweep_forever(registry, await _sweep_interval(settings, provider)))
        restart = RestartWatch(settings)
        await restart.start()
        parts: list[Part] = [webhooks, *_metrics_parts(revurb)]
        parts += dashboard.parts if dashboard is not None else []
        for part in parts:
            await part.start()
        undo_signals = _drain_on_signals(drain) if drain_on_signals else None
        drain.started()
        try:
            yield
        finally:
            if undo_signals is not None:
                undo_signals()
            # Under `revurb start` the drain has run before uvicorn closed anything; elsewhere
            # (plain uvicorn, a host app) it runs now. It stops the backend.
            await drain.run()
            for part in reversed(parts):
                await part.stop()
            await restart.stop()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await api.rate.close()
            await registry.stop()

    revurb = Revurb(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    revurb.registry, revurb.backend, revurb.provider, revurb.settings = registry, backend, provider, settings
    revurb.api, revurb.drain, revurb.webhooks = api, drain, webhooks
    revurb.transport_fast_path = RevurbFastPath(settings, provider, dispatcher, api, backend, addresses)
    revurb.state.revurb = revurb
    return revurb


def backend_for(settings: Settings) -> Backend:
    """The memory backend, or the Redis one when `scaling.enabled` (imported only then)."""
    if not settings.scaling.enabled:
        return MemoryBackend()
    try:
        redis_scaling = importlib.import_module("revurb.scaling.redis")
    except ImportError as error:
        raise ConfigError(f"scaling is enabled but the Redis backend cannot be loaded: {error}") from error
    factory: Callable[[Settings], Backend] = redis_scaling.backend_from_settings
    return factory(settings)


def _dashboard(
    settings: Settings,
    provider: AppProvider,
    registry: Registry,
    backend: Backend,
    api: HttpApi,
    drain: Drain,
) -> Dashboard | None:
    """The dashboard's routes and parts when it is enabled (imported only then)."""
    if not settings.dashboard.enabled:
        return None
    from revurb.server.dashboard import Dashboard

    return Dashboard(settings, provider, registry, backend, api, drain)


def _drain_on_signals(drain: Drain) -> Callable[[], None]:
    from revurb.server.drain_signals import drain_on_signals

    return drain_on_signals(drain)


def _metrics_parts(app: Revurb) -> list[Part]:
    """The metrics listener (own port, one process) or the snapshot file (a `--workers` worker)."""
    metrics = app.settings.metrics
    if not metrics.enabled:
        return []
    from revurb.server.metrics import exposition, take_snapshot
    from revurb.server.metrics_files import SnapshotWriter
    from revurb.server.metrics_http import MetricsListener

    pid = os.getpid()
    if metrics.directory is not None:  # the supervisor serves the port, from every worker's file
        return [SnapshotWriter(metrics.directory, lambda: take_snapshot(app, pid))]
    if metrics.on_main_port:
        return []
    host = metrics.host or app.settings.host
    return [MetricsListener(host, metrics.port, metrics.token, lambda: exposition([take_snapshot(app, pid)]))]


async def _http_error(request: Request, error: HTTPException) -> Response:
    return json_response({"error": error.detail}, error.status_code)


async def _sweep_interval(settings: Settings, provider: AppProvider) -> float:
    if settings.sweep_interval > 0:
        return settings.sweep_interval
    intervals = [app.ping_interval for app in await provider.all()] or [60.0]
    return min(_SWEEP_MAX, max(_SWEEP_MIN, min(intervals) / 4))


async def _sweep_forever(registry: Registry, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            registry.sweep()
        except Exception:
            logger.exception("ping / prune sweep failed")


def lifespan_of(app: Any) -> Any:
    """The lifespan context of a Revurb app, for hosts that compose it into their own."""
    return app.router.lifespan_context
