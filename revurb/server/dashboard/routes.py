"""The dashboard's JSON and SSE endpoints, each behind the session check (401 without one).

An app's login sees its own app only: a request naming another answers 403 without looking it up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from revurb.apps import App
from revurb.channels.names import kind_of
from revurb.server.dashboard.answers import Refused, error, json, json_body, secured
from revurb.server.dashboard.feed import HEADERS, MEDIA_TYPE, Feed
from revurb.server.dashboard.pages import Pages
from revurb.server.dashboard.sender import send_test_event
from revurb.server.dashboard.session import Session
from revurb.server.dashboard.view import fields

if TYPE_CHECKING:
    from revurb.server.dashboard import Dashboard

#: Rows of a list the API returns at most.
MAX_ROWS = 500

Handler = Callable[[Request, Session], Awaitable[Response]]


class DashboardRoutes:
    """The pages and the API of one `Dashboard`."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.pages = Pages(dashboard)

    def routes(self) -> list[Route]:
        base = self.dashboard.base
        return [
            *self.pages.routes(),
            Route(base + "/api/overview", self.guarded(self.overview), methods=["GET"]),
            Route(base + "/api/channels", self.guarded(self.channels), methods=["GET"]),
            Route(base + "/api/members", self.guarded(self.members), methods=["GET"]),
            Route(base + "/api/stream", self.guarded(self.stream), methods=["GET"]),
            Route(base + "/api/events", self.guarded(self.send_event), methods=["POST"]),
        ]

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """The handler behind the session check (401 without one) and its refusals as answers."""

        async def endpoint(request: Request) -> Response:
            session = self.pages.session(request)
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
        payload = await json_body(request)
        app = await self.app_for(session, payload.get("app"))
        channel, event, data = payload.get("channel"), payload.get("event"), payload.get("data")
        if not isinstance(channel, str) or not isinstance(event, str) or not isinstance(data, str):
            return error(400, "Send channel, event and data, each a string")
        answer = await send_test_event(self.dashboard.api, app, channel, event, data)
        return secured(Response(answer.body, answer.status, media_type="application/json"))
