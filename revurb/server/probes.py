"""The operations routes: `/up` (liveness), `{path}/ready` (readiness) and `{path}/metrics`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from revurb.wire import frames

if TYPE_CHECKING:
    from revurb.server.app import Revurb

#: Readiness while starting or draining: load balancers and Kubernetes stop sending traffic.
NOT_READY = 503


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(frames.dumps_bytes(payload), status, media_type="application/json")


async def health(request: Request) -> Response:
    """Liveness: the process answers. A degraded backend (Redis away) says so in the body."""
    app: Revurb = request.app.state.revurb
    return json_response({"health": "OK", **app.backend.health()})


async def ready(request: Request) -> Response:
    """Readiness: 503 while starting or draining. Redis being away does not make a node unready
    (serving its own sockets beats every node refusing at once); the body reports it."""
    app: Revurb = request.app.state.revurb
    drain = app.drain
    body = {"ready": drain.ready, "phase": drain.phase.value, **app.backend.health()}
    return json_response(body, 200 if drain.ready else NOT_READY)


async def metrics(request: Request) -> Response:
    """`{path}/metrics` on the main port (metrics port 0), behind the bearer token."""
    from revurb.server.metrics import CONTENT_TYPE, exposition, take_snapshot
    from revurb.server.metrics_files import read_snapshots
    from revurb.server.metrics_http import authorized

    app: Revurb = request.app.state.revurb
    settings = app.settings.metrics
    if not authorized(request.headers.get("authorization"), settings.token):
        return json_response({"error": "a bearer token is required"}, 401)
    own = take_snapshot(app, os.getpid())
    if settings.directory is None:
        return Response(exposition([own]), media_type=CONTENT_TYPE)
    every, live = read_snapshots(settings.directory, skip_pid=own["pid"])
    return Response(exposition([own, *every], [own, *live]), media_type=CONTENT_TYPE)
