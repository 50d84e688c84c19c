"""The HTTP API's endpoints: read and sign-check the request, then act and answer JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revurb.api import events, queries, signature
from revurb.api.errors import (
    ApiError,
    bad_request,
    method_not_allowed,
    not_found,
    too_large,
    unauthorized,
)
from revurb.apps import App, AppProvider
from revurb.channels.manager import ChannelManager
from revurb.channels.names import is_valid_name
from revurb.channels.registry import Registry
from revurb.config import Settings
from revurb.protocol import frames


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(frames.dumps_bytes(payload), status, media_type="application/json")


def error_response(error: ApiError) -> Response:
    response = json_response({"error": error.message}, error.status)
    response.headers.update(error.headers)
    return response


Handler = Callable[[Request, ChannelManager, bytes], Awaitable[Any]]
_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class HttpApi:
    """Builds the API routes around the app provider and the channel managers."""

    def __init__(self, settings: Settings, provider: AppProvider, registry: Registry) -> None:
        self.settings = settings
        self.provider = provider
        self.registry = registry

    def routes(self) -> list[Route]:
        prefix = "/apps/{app_id}"
        endpoints: list[tuple[str, Handler, str]] = [
            (f"{prefix}/events", self.trigger, "POST"),
            (f"{prefix}/batch_events", self.trigger_batch, "POST"),
            (f"{prefix}/channels", self.channels, "GET"),
            (f"{prefix}/channels/{{channel}}", self.channel, "GET"),
            (f"{prefix}/channels/{{channel}}/users", self.users, "GET"),
            (f"{prefix}/connections", self.connections, "GET"),
            (f"{prefix}/users/{{user_id}}/terminate_connections", self.terminate, "POST"),
            # The Python SDK posts this one without the /apps/{id} prefix.
            ("/users/{user_id}/terminate_connections", self.terminate, "POST"),
        ]
        path = self.settings.path
        # Every method reaches the endpoint, which answers a wrong one with a JSON 405 of its own.
        return [
            Route(path + route, self._endpoint(handler, method), methods=_ALL_METHODS)
            for route, handler, method in endpoints
        ]

    def _endpoint(self, handler: Handler, method: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if request.method != method:
                    raise method_not_allowed(request.method, method)
                body = await self._read_body(request)
                app = await self._find_app(request)
                params = dict(request.query_params)
                signature.verify(app, request.method, self._signed_paths(request), params, body)
                result = await handler(request, self.registry.manager(app), body)
            except ApiError as error:
                return error_response(error)
            return json_response(result)

        return endpoint

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_request_size
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large(f"The request body is larger than {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large(f"The request body is larger than {limit} bytes")
        return bytes(body)

    async def _find_app(self, request: Request) -> App:
        app_id = request.path_params.get("app_id")
        if app_id is not None:
            app = await self.provider.find_by_id(app_id)
        else:
            # Without /apps/{id} in the path, the signed auth_key is all that names the app.
            key = request.query_params.get("auth_key")
            if key is None:
                raise unauthorized("Missing authentication parameter: auth_key")
            app = await self.provider.find_by_key(key)
        if app is None:
            raise not_found("Application does not exist")
        return app

    def _signed_paths(self, request: Request) -> list[str]:
        """The path SDKs sign: without our prefix (and without a host app's mount point)."""
        full: str = request.scope["path"]
        root: str = request.scope.get("root_path", "")
        local = full[len(root) :] if root and full.startswith(root) else full
        prefix = self.settings.path
        if prefix and local.startswith(prefix):
            local = local[len(prefix) :]
        return [local] if local == full else [local, full]

    # Endpoints

    async def trigger(self, request: Request, manager: ChannelManager, body: bytes) -> Any:
        event = events.parse_event(manager.app, events.parse_body(body))
        await events.publish(manager, event)
        if not event.info:
            return {}
        return {
            "channels": {
                channel: await events.channel_info(manager, channel, event.info) for channel in event.channels
            }
        }

    async def trigger_batch(self, request: Request, manager: ChannelManager, body: bytes) -> Any:
        batch = events.parse_batch(manager.app, events.parse_body(body))
        for event in batch:
            await events.publish(manager, event)
        if not any(event.info for event in batch):
            return {}
        # Pusher answers one object per event, in order, `{}` for those that asked for nothing.
        return {
            "batch": [await events.channel_info(manager, event.channels[0], event.info) for event in batch]
        }

    async def channels(self, request: Request, manager: ChannelManager, body: bytes) -> Any:
        query = request.query_params
        return await queries.channels(manager, query.get("filter_by_prefix", ""), query.get("info"))

    async def channel(self, request: Request, manager: ChannelManager, body: bytes) -> Any:
        name = _channel_name(request)
        return await queries.channel(manager, name, request.query_params.get("info"))

    async def users(self, request: Request, manager: ChannelManager, body: bytes) -> Any:
        return await queries.users(manager, _channel_name(request))

    async def connections(self, request: Request, manager: ChannelManager, body: bytes) -> Any:
        return await queries.connections(manager)

    async def terminate(self, request: Request, manager: ChannelManager, body: bytes) -> Any:
        manager.terminate_user(request.path_params["user_id"])
        return {}


def _channel_name(request: Request) -> str:
    name: str = request.path_params["channel"]
    if not is_valid_name(name):
        raise bad_request(f"Invalid channel name: {name[:200]!r}")
    return name
