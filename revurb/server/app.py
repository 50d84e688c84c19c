"""`create_app()`: the Starlette application with the WebSocket endpoint, the HTTP API and `/up`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

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
from revurb.server.endpoint import PusherEndpoint
from revurb.server.fast_path import RevurbFastPath
from revurb.server.restart import RestartWatch
from revurb.wire import codes, frames
from revurb.wire.codes import ErrorCode
from revurb.wire.types import Receive, Scope, Send

logger = logging.getLogger("revurb.server")

#: Bounds of the ping / prune sweep period, derived from the shortest ping interval.
_SWEEP_MIN, _SWEEP_MAX = 0.05, 5.0


class Revurb(Starlette):
    """The ASGI app. `state.revurb` exposes the parts for embedding hosts and tests."""

    registry: Registry
    backend: Backend
    provider: AppProvider
    settings: Settings
    api: HttpApi
    #: Offered to Revurb's own transport (`revurb.transport.hook.HOOK_ATTRIBUTE`).
    transport_fast_path: RevurbFastPath

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The HTTP API answers before Starlette's middleware and router: triggers are the hot path.
        if scope["type"] == "http":
            matched = self.api.match(scope)
            if matched is not None:
                await self.api(scope, receive, send, matched)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    apps: Sequence[App] | None = None,
    provider: AppProvider | None = None,
    backend: Backend | None = None,
) -> Revurb:
    """Build the app. Apps come from `provider`, else `apps`, else `settings.apps`."""
    settings = settings or Settings()
    if provider is None:
        provider = (
            ConfigAppProvider(apps)
            if apps is not None
            else create_provider(settings.app_provider, settings.apps, settings)
        )
    backend = backend or backend_for(settings)
    registry = Registry(backend)
    dispatcher = Dispatcher(registry)
    path = settings.path
    routes: list[BaseRoute] = [
        WebSocketRoute(path + "/app/{key}", PusherEndpoint(settings, provider, dispatcher)),
        Route("/up", health, methods=["GET", "HEAD"]),
    ]
    if path:
        routes.append(Route(path + "/up", health, methods=["GET", "HEAD"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start(registry)
        sweeper = asyncio.create_task(_sweep_forever(registry, await _sweep_interval(settings, provider)))
        restart = RestartWatch(settings)
        await restart.start()
        try:
            yield
        finally:
            await restart.stop()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            registry.close_all(ErrorCode.RECONNECT_NOW, codes.SERVER_SHUTTING_DOWN)
            await backend.stop()
            await registry.stop()

    app = Revurb(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    app.registry, app.backend, app.provider, app.settings = registry, backend, provider, settings
    app.api = HttpApi(settings, provider, registry)
    app.transport_fast_path = RevurbFastPath(settings, provider, dispatcher, app.api, backend)
    app.state.revurb = app
    return app


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


async def health(request: Request) -> Response:
    app: Revurb = request.app.state.revurb
    return json_response({"health": "OK", **app.backend.health()})


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(frames.dumps_bytes(payload), status, media_type="application/json")


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
