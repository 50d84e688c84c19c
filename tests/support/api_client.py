"""Raw signed HTTP API requests with every knob a rejection test needs; signed here, not by revurb."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from tests.support.pusher_socket import PusherSocket, sign
from tests.support.servers import RunningServer

Params = dict[str, str]


def pusher_query(
    method: str,
    path: str,
    body: bytes,
    params: Mapping[str, str],
    key: str,
    secret: str,
    timestamp: int | None = None,
) -> Params:
    """The query of a Pusher-signed request: `params` plus `auth_*` and `body_md5` (when there is a body)."""
    query = dict(params)
    query["auth_key"] = key
    query["auth_timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
    query["auth_version"] = "1.0"
    if body:
        query["body_md5"] = hashlib.md5(body).hexdigest()
    string = "&".join(f"{k}={v}" for k, v in sorted((k.lower(), v) for k, v in query.items()))
    query["auth_signature"] = sign(secret, f"{method}\n{path}\n{string}")
    return query


def encode_body(payload: object) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload).encode()


async def call(
    server: RunningServer,
    method: str,
    path: str,
    payload: object = None,
    params: Mapping[str, str] | None = None,
    *,
    app_id: str | None = None,
    key: str | None = None,
    secret: str | None = None,
    timestamp: int | None = None,
    signed_path: str | None = None,
    url_path: str | None = None,
    tamper: Callable[[Params], object] | None = None,
    send_body: bytes | None = None,
) -> httpx.Response:
    """`method {prefix}/apps/{app_id}{path}`, signed over the path without the prefix unless told.

    `tamper` edits the query after signing; `send_body` replaces the body after signing."""
    local = f"/apps/{app_id or server.app_id}{path}" if url_path is None else url_path
    body = encode_body(payload)
    query = pusher_query(
        method,
        local if signed_path is None else signed_path,
        body,
        params or {},
        key or server.key,
        secret or server.secret,
        timestamp,
    )
    if tamper is not None:
        tamper(query)
    content = body if send_body is None else send_body
    url = f"http://{server.host}:{server.port}{server.path}{local}?" + "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items()
    )
    headers = {"content-type": "application/json"} if content else {}
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.request(method, url, content=content, headers=headers)


def error_of(response: httpx.Response) -> tuple[int, Any]:
    """Status and decoded body, after checking the error is JSON."""
    assert response.headers["content-type"] == "application/json", response.headers
    return response.status_code, response.json()


async def assert_nothing_delivered(server: RunningServer, channel: str, *sockets: PusherSocket) -> None:
    """Publish a canary on `channel`: each socket's next frame must be it, so nothing came before."""
    payload = {"name": "canary", "channels": [channel], "data": "{}"}
    response = await call(server, "POST", "/events", payload)
    assert (response.status_code, response.json()) == (200, {}), response.text
    for socket in sockets:
        assert await socket.recv() == {"event": "canary", "channel": channel, "data": "{}"}
