"""The HTTP API as a raw ASGI app: match, read and sign-check the request, then act and answer JSON.

It sits in front of Starlette's router (see `server/app.py`): an event trigger is the hottest HTTP
path a Pusher server has, and it needs no middleware, no `Request` object and no route scan.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import parse_qsl

from revurb.api import events, queries, signature
from revurb.api.errors import (
    ApiError,
    bad_request,
    draining,
    method_not_allowed,
    not_found,
    too_large,
    too_many_events,
    unauthorized,
)
from revurb.api.tally import ApiTally
from revurb.apps import App, AppProvider, ConfigAppProvider
from revurb.channels.manager import ChannelManager
from revurb.channels.names import is_valid_name
from revurb.channels.registry import Registry
from revurb.config import Settings
from revurb.scaling.event_rate import EventRate, event_rate_for
from revurb.wire import frames
from revurb.wire.types import Receive, Scope, Send

_JSON_HEADERS = [(b"content-type", b"application/json")]
#: An endpoint's empty JSON object (`{}`), answered without encoding it; never to be changed.
NOTHING: dict[str, Any] = {}
_NOTHING_BODY = b"{}"
#: Answers from this status up count as errors in an app's figures.
_ERROR_STATUS = 400


@dataclass(slots=True)
class ApiRequest:
    """What an endpoint needs of a request, read once."""

    method: str
    path_params: dict[str, str]
    query: dict[str, str]
    body: bytes


#: An endpoint's JSON result, now or to be awaited (an endpoint that never has to wait answers at once).
Result = dict[str, Any] | Awaitable[dict[str, Any]]
Handler = Callable[[ApiRequest, ChannelManager], Result]
Matched = tuple[Handler, str, dict[str, str]]
#: What `HttpApi.answer` returns: the response, or (when something had to be awaited) an awaitable of it.
Answer = Union["ApiResponse", Awaitable["ApiResponse"]]


def parse_query(raw: bytes) -> dict[str, str]:
    """Query parameters as Starlette reads them; the common all-plain string skips unquoting."""
    text = raw.decode("latin-1")
    if not text:
        return {}
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    query: dict[str, str] = {}
    for part in text.split("&"):
        if part:
            key, _, value = part.partition("=")
            query[key] = value
    return query


@dataclass(slots=True)
class ApiResponse:
    """An endpoint's answer: status, JSON body bytes and any extra headers (`Allow` on a 405).

    Not frozen: one is made per request, and a frozen dataclass's fields are set four times slower.
    """

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
    extra = tuple((name.lower().encode(), value.encode()) for name, value in (headers or {}).items())
    return ApiResponse(status, frames.dumps_bytes(payload), extra)


def error_response(error: ApiError) -> ApiResponse:
    return json_response(error.status, {"error": error.message}, error.headers)


async def settled(answer: Answer) -> ApiResponse:
    """The response of `HttpApi.answer`, awaited if it had to wait."""
    return answer if isinstance(answer, ApiResponse) else await answer


async def respond(send: Send, response: ApiResponse) -> None:
    body = response.body
    headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(body)), *response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HttpApi:
    """The API endpoints around the app provider and the channel managers."""

    def __init__(self, settings: Settings, provider: AppProvider, registry: Registry) -> None:
        self.settings = settings
        self.provider = provider
        self.registry = registry
        #: Events accepted per app and second (closed by the app's lifespan).
        self.rate: EventRate = event_rate_for(settings)
        prefix = re.escape(settings.path)
        app = r"/apps/(?P<app_id>[^/]+)"
        endpoints: list[tuple[str, Handler, str]] = [
            (f"{app}/events", self.trigger, "POST"),
            (f"{app}/batch_events", self.trigger_batch, "POST"),
            (f"{app}/channels", self.channels, "GET"),
            (f"{app}/channels/(?P<channel>[^/]+)", self.channel, "GET"),
            (f"{app}/channels/(?P<channel>[^/]+)/users", self.users, "GET"),
            (f"{app}/connections", self.connections, "GET"),
            (f"{app}/users/(?P<user_id>[^/]+)/terminate_connections", self.terminate, "POST"),
            # The Python SDK posts this one without the /apps/{id} prefix.
            ("/users/(?P<user_id>[^/]+)/terminate_connections", self.terminate, "POST"),
        ]
        self.endpoints = [
            (re.compile(prefix + route), handler, method) for route, handler, method in endpoints
        ]
        self._starts = (settings.path + "/apps/", settings.path + "/users/")
        self._apps_prefix = settings.path + "/apps/"
        #: The two publishing endpoints, matched without a regular expression (the hot path).
        self._publishing = {
            "events": (self.trigger, "POST"),
            "batch_events": (self.trigger_batch, "POST"),
        }
        #: Apps from configuration are found without awaiting the provider.
        self._known_apps = provider if type(provider) is ConfigAppProvider else None
        self.tally = ApiTally()
        #: Set by the drain: every request is answered 503, so a proxy retries it on another node.
        self.refusing = False

    def local_path(self, scope: Scope) -> str:
        """The request path below a host app's mount point, if any."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        return path[len(root) :] if root and path.startswith(root) else path

    def match(self, scope: Scope) -> Matched | None:
        return self.match_path(self.local_path(scope))

    def match_path(self, path: str) -> Matched | None:
        """The endpoint for a path below the mount point: handler, allowed method, path parameters."""
        if not path.startswith(self._starts):
            return None
        if path.startswith(self._apps_prefix):
            app_id, _, endpoint = path[len(self._apps_prefix) :].partition("/")
            publishing = self._publishing.get(endpoint)
            if publishing is not None and app_id:
                return publishing[0], publishing[1], {"app_id": app_id}
        for pattern, handler, method in self.endpoints:
            found = pattern.fullmatch(path)
            if found is not None:
                return handler, method, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, matched: Matched) -> None:
        """Serve a matched request as a plain ASGI app: read the body, answer, send the JSON."""
        method: str = scope["method"]
        body = b""
        if method == matched[1]:
            try:
                body = await self._read_body(scope, receive)
            except ApiError as error:
                # The body is refused unread: close, or the server would read it all to find the next request.
                headers = {**error.headers, "Connection": "close"}
                await respond(send, json_response(error.status, {"error": error.message}, headers))
                return
        answer = self.answer(
            method, self.local_path(scope), scope["path"], scope.get("query_string", b""), body, matched
        )
        await respond(send, await settled(answer))

    def answer(
        self, method: str, local_path: str, full_path: str, query_string: bytes, body: bytes, matched: Matched
    ) -> Answer:
        """Check and run one complete request; `HttpProtocol` calls this directly for speed.

        `local_path` is the path below a host app's mount point, `full_path` the path as received.
        The response comes at once when nothing had to be awaited (a trigger on the memory backend
        with apps from configuration), else as an awaitable.
        """
        started = time.perf_counter()
        handler, allowed, path_params = matched
        try:
            if self.refusing:
                raise draining()
            # Every method reaches the endpoint, which answers a wrong one with a JSON 405 of its own.
            if method != allowed:
                raise method_not_allowed(method, allowed)
            if len(body) > self.settings.max_request_size:
                raise self.body_too_large()
            request = ApiRequest(method, path_params, parse_query(query_string), body)
            known = self._known_apps
            app_id = path_params.get("app_id")
            if known is None or app_id is None:
                return self._answer_later(started, request, local_path, full_path, matched)
            result = self._run(known.by_id(app_id), request, local_path, full_path, handler)
        except ApiError as error:
            return self._done(started, matched, error_response(error))
        if result is NOTHING:
            return self._done(started, matched, ApiResponse(200, _NOTHING_BODY))
        if isinstance(result, dict):
            return self._done(started, matched, ApiResponse(200, frames.dumps_bytes(result)))
        return self._finish(started, matched, result)

    def _run(
        self, app: App | None, request: ApiRequest, local_path: str, full_path: str, handler: Handler
    ) -> Result:
        """Check the signature and call the endpoint."""
        if app is None:
            raise not_found("Application does not exist")
        signature.verify(
            app, request.method, self._signed_paths(local_path, full_path), request.query, request.body
        )
        return handler(request, self.registry.manager(app))

    async def _answer_later(
        self, started: float, request: ApiRequest, local_path: str, full_path: str, matched: Matched
    ) -> ApiResponse:
        """`answer` once the app had to be asked of the provider."""
        try:
            app = await self._find_app(request)
            result = self._run(app, request, local_path, full_path, matched[0])
            if not isinstance(result, dict):
                result = await result
        except ApiError as error:
            return self._done(started, matched, error_response(error))
        return self._done(started, matched, ApiResponse(200, frames.dumps_bytes(result)))

    async def _finish(
        self, started: float, matched: Matched, pending: Awaitable[dict[str, Any]]
    ) -> ApiResponse:
        """`answer` once the endpoint had to wait."""
        try:
            result = await pending
        except ApiError as error:
            return self._done(started, matched, error_response(error))
        return self._done(started, matched, ApiResponse(200, frames.dumps_bytes(result)))

    def _done(self, started: float, matched: Matched, response: ApiResponse) -> ApiResponse:
        """Count the answer: by endpoint and status with its latency, and per app (for apps that
        have a manager: a made-up id in a path adds nothing)."""
        status = response.status
        self.tally.record(matched[0].__name__, status, time.perf_counter() - started)
        app_id = matched[2].get("app_id")
        manager = None if app_id is None else self.registry.managers.get(app_id)
        if manager is not None:
            tally = manager.tally
            tally.api_requests += 1
            if status >= _ERROR_STATUS:
                tally.api_errors += 1
        return response

    def body_too_large(self) -> ApiError:
        """The refusal of a request body over `max_request_size` (413)."""
        return too_large(f"The request body is larger than {self.settings.max_request_size} bytes")

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.settings.max_request_size
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    raise self.body_too_large()
                break
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise self.body_too_large()
            return bytes(body)
        chunks = bytearray(body)
        while message.get("more_body", False):
            message = await receive()
            chunks += message.get("body", b"")
            if len(chunks) > limit:
                raise self.body_too_large()
        return bytes(chunks)

    async def _find_app(self, request: ApiRequest) -> App | None:
        app_id = request.path_params.get("app_id")
        if app_id is not None:
            app = await self.provider.find_by_id(app_id)
        else:
            # Without /apps/{id} in the path, the signed auth_key is all that names the app.
            key = request.query.get("auth_key")
            if key is None:
                raise unauthorized("Missing authentication parameter: auth_key")
            app = await self.provider.find_by_key(key)
        return app

    def _signed_paths(self, local: str, full: str) -> tuple[str, ...]:
        """The path SDKs sign: without our prefix (and without a host app's mount point)."""
        prefix = self.settings.path
        if prefix and local.startswith(prefix):
            local = local[len(prefix) :]
        return (local,) if local == full else (local, full)

    # Endpoints

    async def _within_rate(self, app: App, events_in: list[events.Event]) -> None:
        """Count the events (once per channel, as Soketi does) against the app's limit, if it has one."""
        limit = app.max_backend_events_per_sec
        if limit is None:
            return
        points = sum(max(len(event.channels), 1) for event in events_in)
        if not await self.rate.take(app.id, points, limit):
            raise too_many_events(limit)

    def trigger(self, request: ApiRequest, manager: ChannelManager) -> Result:
        event = events.parse_event(manager.app, events.parse_body(request.body))
        return self._publish(manager, [event], batch=False)

    def trigger_batch(self, request: ApiRequest, manager: ChannelManager) -> Result:
        batch = events.parse_batch(manager.app, events.parse_body(request.body))
        return self._publish(manager, batch, batch=True)

    def _publish(self, manager: ChannelManager, published: list[events.Event], batch: bool) -> Result:
        """Publish the events; `{}` at once when nothing has to be awaited or counted for the answer."""
        if manager.app.max_backend_events_per_sec is not None:
            return self._publish_within_rate(manager, published, batch)
        placed = events.publish_all(manager, published)
        if placed is None:
            for event in published:
                if event.info:
                    break
            else:
                return NOTHING
        return self._published(manager, published, batch, placed)

    async def _publish_within_rate(
        self, manager: ChannelManager, published: list[events.Event], batch: bool
    ) -> dict[str, Any]:
        await self._within_rate(manager.app, published)
        return await self._published(manager, published, batch, events.publish_all(manager, published))

    async def _published(
        self,
        manager: ChannelManager,
        published: list[events.Event],
        batch: bool,
        placed: Awaitable[None] | None,
    ) -> dict[str, Any]:
        """The answer once the events have their place in the cluster's order."""
        if placed is not None:
            await placed
        if not any(event.info for event in published):
            return {}
        if batch:
            # Pusher answers one object per event, in order, `{}` for those that asked for nothing.
            return {
                "batch": [
                    await events.channel_info(manager, event.channels[0], event.info) for event in published
                ]
            }
        (event,) = published
        return {
            "channels": {
                channel: await events.channel_info(manager, channel, event.info) for channel in event.channels
            }
        }

    async def channels(self, request: ApiRequest, manager: ChannelManager) -> Any:
        query = request.query
        return await queries.channels(manager, query.get("filter_by_prefix", ""), query.get("info"))

    async def channel(self, request: ApiRequest, manager: ChannelManager) -> Any:
        return await queries.channel(manager, _channel_name(request), request.query.get("info"))

    async def users(self, request: ApiRequest, manager: ChannelManager) -> Any:
        return await queries.users(manager, _channel_name(request))

    async def connections(self, request: ApiRequest, manager: ChannelManager) -> Any:
        return await queries.connections(manager)

    async def terminate(self, request: ApiRequest, manager: ChannelManager) -> Any:
        manager.terminate_user(request.path_params["user_id"])
        return {}


def _channel_name(request: ApiRequest) -> str:
    name = request.path_params["channel"]  # the ASGI path is already percent-decoded
    if not is_valid_name(name):
        raise bad_request(f"Invalid channel name: {name[:200]!r}")
    return name
