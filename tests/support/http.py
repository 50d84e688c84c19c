"""Signed Pusher HTTP API requests, signed here independently of revurb's own code."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import httpx

from tests.support.pusher_socket import sign
from tests.support.servers import RunningServer


def signed_params(
    method: str, path: str, key: str, secret: str, body: bytes = b"", params: dict[str, str] | None = None
) -> dict[str, str]:
    query = dict(params or {})
    query.update({"auth_key": key, "auth_timestamp": str(int(time.time())), "auth_version": "1.0"})
    if body:
        query["body_md5"] = hashlib.md5(body).hexdigest()
    string = "&".join(f"{k}={v}" for k, v in sorted((k.lower(), v) for k, v in query.items()))
    query["auth_signature"] = sign(secret, f"{method}\n{path}\n{string}")
    return query


async def api(
    server: RunningServer, method: str, path: str, payload: Any = None, params: dict[str, str] | None = None
) -> httpx.Response:
    """Call `{prefix}/apps/{id}{path}` signed with the server's default app."""
    full = f"/apps/{server.app_id}{path}"
    body = json.dumps(payload).encode() if payload is not None else b""
    query = signed_params(method, full, server.key, server.secret, body, params)
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.request(
            method,
            f"{server.http_url}{full}",
            params=query,
            content=body,
            headers={"content-type": "application/json"} if body else {},
        )


async def trigger(
    server: RunningServer, channel: str, name: str, data: str, socket_id: str | None = None
) -> httpx.Response:
    payload: dict[str, Any] = {"name": name, "channels": [channel], "data": data}
    if socket_id is not None:
        payload["socket_id"] = socket_id
    response = await api(server, "POST", "/events", payload)
    assert response.status_code == 200, response.text
    return response
