"""The dashboard's pages, its static files, and logging in and out.

A page without a session redirects to the login page. A login posts the secret (and an app's key
for that app alone) as JSON and gets the session cookie; failures count against the address.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from revurb.server.dashboard.answers import Refused, error, json, json_body, secured
from revurb.server.dashboard.session import COOKIE, SESSION_SECONDS, Session

if TYPE_CHECKING:
    from revurb.server.dashboard import Dashboard

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
SEE_OTHER = 303


def _load(name: str) -> bytes:
    return (resources.files("revurb.server.dashboard") / "static" / name).read_bytes()


class Pages:
    """The pages, the files and the login of one `Dashboard`, read from the package once."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.files = {name: _load(name) for name in (*ASSETS, *PAGES)}

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
        ]

    def mount(self, request: Request) -> str:
        """The dashboard's path as the browser sees it (a host app's mount point included)."""
        root: str = request.scope.get("root_path", "")
        return root + self.dashboard.base

    def session(self, request: Request) -> Session | None:
        return self.dashboard.sessions.read(request.cookies.get(COOKIE))

    def page(self, name: str) -> Response:
        return secured(Response(self.files[name], media_type=HTML))

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
        return secured(Response(self.files[name], media_type=ASSETS[name]), cache="no-cache")

    async def login(self, request: Request) -> Response:
        dashboard = self.dashboard
        address = request.client.host if request.client is not None else "unknown"
        wait = dashboard.throttle.retry_after(address)
        if wait:
            headers = {"Retry-After": str(math.ceil(wait))}
            return error(429, "Too many failed logins: try again later", headers)
        try:
            payload = await json_body(request)
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
            await json_body(request)
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
