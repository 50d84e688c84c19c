"""The dashboard's HTTP routes: pages, login and logout, the JSON and SSE endpoints, static files.

Every answer carries a strict Content-Security-Policy (scripts and styles from this server only,
nothing inline, no framing). Pages without a session redirect to the login; the API answers 401.
Changes (login, logout, a test event) must be JSON posts from this origin: a cross-site form can
send neither, and the session cookie is `SameSite=Strict` besides.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from revurb.apps import App
from revurb.channels.names import kind_of
from revurb.server.dashboard.feed import HEADERS, MEDIA_TYPE, Feed
from revurb.server.dashboard.sender import send_test_event
from revurb.server.dashboard.session import COOKIE, SESSION_SECONDS, Session
from revurb.server.dashboard.view import fields
from revurb.wire import frames

if TYPE_CHECKING:
    from revurb.server.dashboard import Dashboard

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
#: Files under `static/` and their media types; nothing else is served.
ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "login.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
PAGES = ("index.html", "login.html")
HTML = "text/html; charset=utf-8"
#: Largest JSON body a dashboard post may have (a test event's data is limited by the app besides).
MAX_BODY = 64 * 1024
#: Rows of a list the API returns at most.
MAX_ROWS = 500
SEE_OTHER = 303

Handler = Callable[[Request, Session], Awaitable[Response]]


def _load(name: str) -> bytes:
    return (resources.files("revurb.server.dashboard") / "static" / name).read_bytes()


def secured(response: Response, cache: str = "no-store") -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache
    return response


def json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(frames.dumps_bytes(payload), status, headers, media_type="application/json")
    return secured(response)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json({"error": message}, status, headers)


class Refused(Exception):
    """A request the dashboard turns away, as its JSON answer."""

    def __init__(self, response: Response) -> None:
        self.response = response


class DashboardRoutes:
    """Handlers bound to one `Dashboard`."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.assets = {name: _load(name) for name in (*ASSETS, *PAGES)}

    def routes(self) -> list[Route]:
        base = self.dashboard.base
        read = ["GET", "HEAD"]
        return [
            Route(base, self.root, methods=read),
            Route(base + "/", self.index, methods=read),
            Route(base + "/login", self.login_page, methods=read),
            Route(base + "/login", self.login, methods=["POST"]),
            Route(base + "/logout", self.logout, methods=["POST"]),
            Route(base + "/static/{name}", self.static, methods=read),
            Route(base + "/api/overview", self.guarded(self.overview), methods=["GET"]),
            Route(base + "/api/channels", self.guarded(self.channels), methods=["GET"]),
            Route(base + "/api/members", self.guarded(self.members), methods=["GET"]),
            Route(base + "/api/stream", self.guarded(self.stream), methods=["GET"]),
            Route(base + "/api/events", self.guarded(self.send_event), methods=["POST"]),
        ]

    # Helpers

    def mount(self, request: Request) -> str:
        """The dashboard's path as the browser sees it (a host app's mount point included)."""
        root: str = request.scope.get("root_path", "")
        return root + self.dashboard.base

    def session(self, request: Request) -> Session | None:
        return self.dashboard.sessions.read(request.cookies.get(COOKIE))

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """The handler behind the session check (401 without one) and its refusals as answers."""

        async def endpoint(request: Request) -> Response:
            session = self.session(request)
            if session is None:
                return error(401, "Log in first")
            try:
                response: Response = await handler(request, session)
            except Refused as refused:
                return refused.response
            return response

        return endpoint

    async def app_for(self, session: Session, app_id: str | None) -> App:
        """The app a request names, if this login sees it; an app's login never looks up another."""
        if not app_id:
            raise Refused(error(400, "Name an app: ?app=<app id>"))
        if not session.sees(app_id):
            raise Refused(error(403, "This login sees one app only"))
        app = await self.dashboard.provider.find_by_id(app_id)
        if app is None:
            raise Refused(error(404, "Application does not exist"))
        return app

    async def json_body(self, request: Request) -> dict[str, Any]:
        """A same-origin JSON post's body, or the refusal."""
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise Refused(error(403, "Cross-origin requests are refused"))
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Refused(error(415, "Send JSON (Content-Type: application/json)"))
        body = await request.body()
        if len(body) > MAX_BODY:
            raise Refused(error(413, f"The body is larger than {MAX_BODY} bytes"))
        try:
            payload = frames.loads(body)
        except frames.JSONDecodeError:
            raise Refused(error(400, "The body is not valid JSON")) from None
        if not isinstance(payload, dict):
            raise Refused(error(400, "The body must be a JSON object"))
        return payload

    def page(self, name: str) -> Response:
        return secured(Response(self.assets[name], media_type=HTML))

    # Pages and login

    async def root(self, request: Request) -> Response:
        return secured(RedirectResponse(self.mount(request) + "/", SEE_OTHER))

    async def index(self, request: Request) -> Response:
        if self.session(request) is None:
            return secured(RedirectResponse(self.mount(request) + "/login", SEE_OTHER))
        return self.page("index.html")

    async def login_page(self, request: Request) -> Response:
        return self.page("login.html")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return error(404, "Not Found")
        return secured(Response(self.assets[name], media_type=ASSETS[name]), cache="no-cache")

    async def login(self, request: Request) -> Response:
        dashboard = self.dashboard
        address = request.client.host if request.client is not None else "unknown"
        wait = dashboard.throttle.retry_after(address)
        if wait:
            headers = {"Retry-After": str(math.ceil(wait))}
            return error(429, "Too many failed logins: try again later", headers)
        try:
            payload = await self.json_body(request)
        except Refused as refused:
            return refused.response
        key, secret = payload.get("key") or "", payload.get("secret")
        if not isinstance(key, str) or not isinstance(secret, str) or not secret:
            return error(400, "Send the secret, and an app key to log in to that app only")
        scope = await dashboard.sessions.login(dashboard.provider, key.strip(), secret)
        if scope is None:
            dashboard.throttle.failed(address)
            return error(401, "Wrong key or secret")
        dashboard.throttle.succeeded(address)
        response = json({"scope": scope})
        response.set_cookie(
            COOKIE,
            dashboard.sessions.issue(scope),
            max_age=SESSION_SECONDS,
            path=self.mount(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(self, request: Request) -> Response:
        try:
            await self.json_body(request)
        except Refused as refused:
            return refused.response
        response = json({})
        response.delete_cookie(
            COOKIE,
            path=self.mount(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    # The API

    async def overview(self, request: Request, session: Session) -> Response:
        dashboard = self.dashboard
        if session.every_app:
            apps = list(await dashboard.provider.all())[:MAX_ROWS]
        else:
            found = await dashboard.provider.find_by_id(session.scope)
            apps = [found] if found is not None else []
        return json(
            {
                "scope": session.scope,
                "apps": [{"id": app.id, "key": app.key} for app in apps],
                "fields": fields(),
                "cluster": dashboard.cluster(),
                "nodes": dashboard.nodes(session, history=True),
            }
        )

    async def channels(self, request: Request, session: Session) -> Response:
        app = await self.app_for(session, request.query_params.get("app"))
        prefix = request.query_params.get("prefix", "")
        occupied = await self.dashboard.backend.occupied_channels(app.id)
        names = sorted(name for name in occupied if name.startswith(prefix))
        rows = [
            {"name": name, "subscriptions": occupied[name], "presence": kind_of(name).presence}
            for name in names[:MAX_ROWS]
        ]
        return json({"app": app.id, "channels": rows, "total": len(names)})

    async def members(self, request: Request, session: Session) -> Response:
        app = await self.app_for(session, request.query_params.get("app"))
        channel = request.query_params.get("channel", "")
        if not kind_of(channel).presence:
            raise Refused(error(400, "Members are kept for presence channels only"))
        members = await self.dashboard.backend.members(app.id, channel)
        rows = [{"id": user_id, "info": info} for user_id, info in list(members.items())[:MAX_ROWS]]
        return json({"app": app.id, "channel": channel, "members": rows, "total": len(members)})

    async def stream(self, request: Request, session: Session) -> Response:
        # Revurb's transport may run a request without a Task until it first suspends; the streaming
        # response needs one (an anyio task group), and suspending once here gets it.
        await asyncio.sleep(0)
        dashboard = self.dashboard
        query = request.query_params
        own = dashboard.own
        app: App | None = None
        if query.get("console"):
            app = await self.app_for(session, query.get("console"))
        watcher = dashboard.consoles.watch(app, query.get("channel")) if app is not None else None
        manager = dashboard.registry.manager(app) if app is not None else None

        def skipped() -> int:
            tap = manager.console if manager is not None else None
            return tap.skipped if tap is not None else 0

        feed = Feed(
            session,
            dashboard.nodes,
            lambda: own.samples[-1]["t"] if own.samples else 0.0,
            lambda: dashboard.drain.refusing,
            watcher,
            skipped,
            ticks=query.get("ticks") != "0",
        )

        async def events() -> AsyncIterator[bytes]:
            try:
                async for chunk in feed.events():
                    yield chunk
            finally:
                if app is not None and watcher is not None:
                    dashboard.consoles.unwatch(app, watcher)

        return secured(StreamingResponse(events(), media_type=MEDIA_TYPE, headers=HEADERS), cache="no-store")

    async def send_event(self, request: Request, session: Session) -> Response:
        payload = await self.json_body(request)
        app = await self.app_for(session, payload.get("app"))
        channel, event, data = payload.get("channel"), payload.get("event"), payload.get("data")
        if not isinstance(channel, str) or not isinstance(event, str) or not isinstance(data, str):
            return error(400, "Send channel, event and data, each a string")
        answer = await send_test_event(self.dashboard.api, app, channel, event, data)
        return secured(Response(answer.body, answer.status, media_type="application/json"))
