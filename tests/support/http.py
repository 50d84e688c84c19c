"""Short forms of the signed HTTP API calls in `api_client` for tests that need no special knobs."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api_client import call, pusher_query
from tests.support.servers import RunningServer


def signed_params(
    method: str, path: str, key: str, secret: str, body: bytes = b"", params: dict[str, str] | None = None
) -> dict[str, str]:
    """The signed query of a request to `path` (as SDKs sign it: without a server prefix)."""
    return pusher_query(method, path, body, params or {}, key, secret)


async def api(
    server: RunningServer,
    method: str,
    path: str,
    payload: object = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """Call `{prefix}/apps/{id}{path}` signed with the server's default app."""
    return await call(server, method, path, payload, params)


async def trigger(
    server: RunningServer, channel: str, name: str, data: str, socket_id: str | None = None
) -> httpx.Response:
    payload: dict[str, Any] = {"name": name, "channels": [channel], "data": data}
    if socket_id is not None:
        payload["socket_id"] = socket_id
    response = await api(server, "POST", "/events", payload)
    assert response.status_code == 200, response.text
    return response
