"""The page's "send a test event": a Pusher HTTP API request, signed here with the app's secret.

As Pusher's Event creator does, the request is signed server-side (the page never holds a secret)
and goes through the same endpoint, checks and counters as any backend's trigger.
"""

from __future__ import annotations

import hashlib
import time

from revurb.api.routes import ApiResponse, HttpApi, settled
from revurb.api.signature import string_to_sign
from revurb.apps import App
from revurb.wire import auth, frames

AUTH_VERSION = "1.0"


def signed_query(app: App, method: str, path: str, body: bytes, now: float | None = None) -> str:
    """The query string of a request signed as the Pusher SDKs sign it."""
    params = {
        "auth_key": app.key,
        "auth_timestamp": str(int(time.time() if now is None else now)),
        "auth_version": AUTH_VERSION,
        "body_md5": hashlib.md5(body).hexdigest(),
    }
    signature = auth.sign(app.secret, string_to_sign(method, path, params))
    return "&".join(f"{key}={value}" for key, value in params.items()) + f"&auth_signature={signature}"


async def send_test_event(api: HttpApi, app: App, channel: str, event: str, data: str) -> ApiResponse:
    """Trigger `event` on `channel` through the HTTP API; its answer as a backend would get it."""
    body = frames.dumps_bytes({"name": event, "channel": channel, "data": data})
    signed = f"/apps/{app.id}/events"
    path = api.settings.path + signed
    matched = api.match_path(path)
    if matched is None:  # the API's own routes always match this path
        raise RuntimeError(f"the HTTP API does not route {path}")
    query = signed_query(app, "POST", signed, body).encode()
    return await settled(api.answer("POST", path, path, query, body, matched))
