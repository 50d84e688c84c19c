"""Every refused HTTP API request: exact status and JSON body, and nothing delivered to subscribers.

Each test subscribes a socket to the channel the bad request aims at; after the refusal a canary
event is published, and the socket's next frame must be that canary."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pusher
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.support.api_client import Params, assert_nothing_delivered, call, error_of, pusher_query
from tests.support.fixture_types import Connect, StartServer
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import RunningServer


@dataclass
class Target:
    """A channel with one subscribed socket, on a server."""

    server: RunningServer
    channel: str
    socket: PusherSocket

    def event(self, **fields: Any) -> dict[str, Any]:
        return {"name": "must-not-arrive", "channels": [self.channel], "data": "{}", **fields}

    async def assert_nothing_delivered(self) -> None:
        await assert_nothing_delivered(self.server, self.channel, self.socket)


async def watched(server: RunningServer, connect: Connect) -> Target:
    channel = f"watched-{uuid.uuid4().hex[:12]}"
    socket = await connect(server)
    await socket.join(channel)
    return Target(server, channel, socket)


@pytest.fixture
async def target(server: RunningServer, connect: Connect) -> AsyncIterator[Target]:
    watched_target = await watched(server, connect)
    yield watched_target
    await watched_target.assert_nothing_delivered()


def refused(response: httpx.Response, status: int, message: str) -> None:
    assert error_of(response) == (status, {"error": message}), response.text


# Authentication (401)


async def test_wrong_signature(target: Target) -> None:
    timestamp = int(time.time())
    body = b'{"name":"must-not-arrive","channels":["%s"],"data":"{}"}' % target.channel.encode()
    response = await call(
        target.server, "POST", "/events", body, secret="not-the-secret", timestamp=timestamp
    )
    md5 = hashlib.md5(body).hexdigest()
    query = f"auth_key=app-key&auth_timestamp={timestamp}&auth_version=1.0&body_md5={md5}"
    signed = f"POST\n/apps/1001/events\n{query}"
    refused(response, 401, f"Invalid signature: expected the HMAC-SHA256 of {signed!r}")


async def test_tampered_signature(target: Target) -> None:
    def flip(query: Params) -> None:
        signature = query["auth_signature"]
        query["auth_signature"] = ("1" if signature[0] == "0" else "0") + signature[1:]

    response = await call(target.server, "POST", "/events", target.event(), tamper=flip)
    assert error_of(response)[0] == 401
    assert response.json()["error"].startswith("Invalid signature: ")


async def test_wrong_auth_key_even_when_signed_with_the_right_secret(target: Target) -> None:
    response = await call(target.server, "POST", "/events", target.event(), key="other-key")
    refused(response, 401, "Invalid auth_key")


# The exact ±600/±601 edges are unit-tested with a fixed clock (tests/unit/test_signature.py); through
# a live server the second can turn between signing and checking, so these keep a few seconds clear.
@pytest.mark.parametrize("shift", [-605, 605, -86_400, 10**6])
async def test_stale_or_future_auth_timestamp(target: Target, shift: int) -> None:
    timestamp = int(time.time()) + shift
    response = await call(target.server, "POST", "/events", target.event(), timestamp=timestamp)
    refused(response, 401, "Timestamp expired: auth_timestamp is over 600 s from server time")


async def test_timestamp_inside_the_window_is_accepted(target: Target) -> None:
    for shift in (-590, 590):
        response = await call(target.server, "GET", "/channels", timestamp=int(time.time()) + shift)
        assert response.status_code == 200, response.text


async def test_body_md5_that_does_not_match_the_body(target: Target) -> None:
    """Signed honestly over a body_md5 of another body: the signature is right, the body is not."""
    response = await call(
        target.server, "POST", "/events", target.event(), send_body=b'{"name":"x","channel":"y","data":"z"}'
    )
    refused(response, 401, "Invalid body_md5: it does not match the request body")


@pytest.mark.parametrize("name", ["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"])
async def test_each_missing_auth_parameter(target: Target, name: str) -> None:
    response = await call(
        target.server, "POST", "/events", target.event(), tamper=lambda query: query.pop(name)
    )
    refused(response, 401, f"Missing authentication parameter: {name}")


async def test_no_auth_parameters_at_all(target: Target) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{target.server.http_url}/apps/1001/channels")
    refused(response, 401, "Missing authentication parameter: auth_key")


async def test_unsupported_auth_version(target: Target) -> None:
    def version_two(query: Params) -> None:
        query["auth_version"] = "2.0"

    response = await call(target.server, "POST", "/events", target.event(), tamper=version_two)
    refused(response, 401, "Unsupported auth_version: only 1.0 is supported")


async def test_the_python_sdk_sees_a_bad_auth(target: Target) -> None:
    sdk = pusher.Pusher(
        app_id="1001", key="app-key", secret="wrong", host="127.0.0.1", port=target.server.port, ssl=False
    )
    with pytest.raises(pusher.errors.PusherBadAuth) as failure:
        await asyncio.to_thread(sdk.trigger, target.channel, "must-not-arrive", "{}")
    assert str(failure.value).startswith('{"error":"Invalid signature: expected the HMAC-SHA256 of ')


async def test_the_python_sdk_sees_each_error_status(target: Target) -> None:
    sdk = pusher.Pusher(
        app_id="1001",
        key="app-key",
        secret="app-secret",
        host="127.0.0.1",
        port=target.server.port,
        ssl=False,
    )
    with pytest.raises(pusher.errors.PusherBadRequest) as bad_request:
        await asyncio.to_thread(sdk.users_info, target.channel)
    assert str(bad_request.value) == '{"error":"Users can only be retrieved for presence channels"}'
    with pytest.raises(pusher.errors.PusherBadStatus) as too_large:
        await asyncio.to_thread(sdk.trigger, target.channel, "must-not-arrive", "x" * 10_000)
    assert str(too_large.value) == '413: {"error":"The request body is larger than 10000 bytes"}'
    unknown = pusher.Pusher(
        app_id="9999",
        key="app-key",
        secret="app-secret",
        host="127.0.0.1",
        port=target.server.port,
        ssl=False,
    )
    with pytest.raises(pusher.errors.PusherBadStatus) as not_found:
        await asyncio.to_thread(unknown.trigger, target.channel, "must-not-arrive", "{}")
    assert str(not_found.value) == '404: {"error":"Application does not exist"}'


# Malformed bodies and fields (400)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "The request body is not valid JSON"),
        (b"", "The request body is empty: expected a JSON object"),
        (b"[1, 2]", "The request body must be a JSON object"),
        (b'"text"', "The request body must be a JSON object"),
    ],
)
async def test_malformed_body(target: Target, body: bytes, message: str) -> None:
    response = await call(target.server, "POST", "/events", body)
    refused(response, 400, message)


@pytest.mark.parametrize("field", ["name", "data", "channels"])
async def test_missing_required_field(target: Target, field: str) -> None:
    event = target.event()
    del event[field]
    response = await call(target.server, "POST", "/events", event)
    refused(response, 400, f"Missing required field: {field}")


@pytest.mark.parametrize("data", [{"a": 1}, ["a"], 5, True])
async def test_data_that_is_not_a_string(target: Target, data: object) -> None:
    response = await call(target.server, "POST", "/events", target.event(data=data))
    refused(response, 400, "The field data must be a string (JSON-encode it first)")


@pytest.mark.parametrize("name", ["", 5, None])
async def test_name_that_is_not_a_non_empty_string(target: Target, name: object) -> None:
    response = await call(target.server, "POST", "/events", target.event(name=name))
    message = "Missing required field: name" if name is None else "The field name must be a non-empty string"
    refused(response, 400, message)


async def test_event_name_longer_than_200_characters(target: Target) -> None:
    response = await call(target.server, "POST", "/events", target.event(name="e" * 201))
    refused(response, 400, "The event name is longer than 200 characters")
    response = await call(
        target.server, "POST", "/events", target.event(name="e" * 200, channels=["nobody-x"])
    )
    assert (response.status_code, response.json()) == (200, {})


async def test_more_than_100_channels(target: Target) -> None:
    channels = [target.channel] + [f"other-{i}" for i in range(100)]
    response = await call(target.server, "POST", "/events", target.event(channels=channels))
    refused(response, 400, "An event can be sent to at most 100 channels")


async def test_channels_that_is_not_a_list_or_empty(target: Target) -> None:
    response = await call(target.server, "POST", "/events", target.event(channels=target.channel))
    refused(response, 400, "The field channels must be an array of channel names")
    response = await call(target.server, "POST", "/events", target.event(channels=[]))
    refused(response, 400, "The field channels must name at least one channel")


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        ("has space", "'has space'"),
        ("slash/y", "'slash/y'"),
        ("emoji-\u2603", "'emoji-\u2603'"),
        ("c" * 201, repr("c" * 200)),
        (7, "'7'"),
    ],
)
async def test_invalid_channel_names(target: Target, bad: object, shown: str) -> None:
    response = await call(target.server, "POST", "/events", target.event(channels=[target.channel, bad]))
    refused(response, 400, f"Invalid channel name: {shown}")


async def test_invalid_socket_id(target: Target) -> None:
    for socket_id in ("abc", "1.2.3", "12", 12.5, "\u0661.\u0662", " 1.2"):
        response = await call(target.server, "POST", "/events", target.event(socket_id=socket_id))
        refused(response, 400, "The field socket_id is not a valid socket id")


async def test_unknown_info_attribute(target: Target) -> None:
    response = await call(target.server, "POST", "/events", target.event(info="user_count,colour"))
    refused(response, 400, "Unknown info attribute: colour")


# Batches


async def test_more_than_10_batch_events(target: Target) -> None:
    batch = [{"name": "must-not-arrive", "channel": target.channel, "data": str(i)} for i in range(11)]
    response = await call(target.server, "POST", "/batch_events", {"batch": batch})
    refused(response, 400, "A batch can hold at most 10 events")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"channel": "x", "data": "1"}, "Missing required field: name"),
        ({"name": "e", "data": "1"}, "Missing required field: channel"),
        ({"name": "e", "channel": "x"}, "Missing required field: data"),
        ({"name": "e", "channel": "x", "data": {}}, "The field data must be a string (JSON-encode it first)"),
        ({"name": "e" * 201, "channel": "x", "data": "1"}, "The event name is longer than 200 characters"),
        ({"name": "e", "channel": "bad name", "data": "1"}, "Invalid channel name: 'bad name'"),
        (
            {"name": "e", "channel": "x", "data": "1", "socket_id": "x"},
            "The field socket_id is not a valid socket id",
        ),
        ("not an event", "Each event must be a JSON object"),
    ],
)
async def test_one_bad_event_refuses_the_whole_batch(target: Target, event: object, message: str) -> None:
    batch = [{"name": "must-not-arrive", "channel": target.channel, "data": "ok"}, event]
    response = await call(target.server, "POST", "/batch_events", {"batch": batch})
    refused(response, 400, f"batch[1]: {message}")


@pytest.mark.parametrize("payload", [{}, {"batch": "x"}, {"batch": {}}, []])
async def test_batch_missing_or_not_an_array(target: Target, payload: object) -> None:
    response = await call(target.server, "POST", "/batch_events", payload)
    refused(response, 400, "Missing required field: batch (an array of events)")


async def test_empty_batch(target: Target) -> None:
    response = await call(target.server, "POST", "/batch_events", {"batch": []})
    refused(response, 400, "The field batch must hold at least one event")


# Sizes (413)


async def test_body_over_max_request_size(start_server: StartServer, connect: Connect) -> None:
    small = start_server({"REVERB_MAX_REQUEST_SIZE": "1000"})
    watched_target = await watched(small, connect)
    event = watched_target.event(data="x" * 1000)

    response = await call(small, "POST", "/events", event)
    refused(response, 413, "The request body is larger than 1000 bytes")

    # Without a Content-Length (chunked), the limit holds while reading.
    body = httpx.Request("POST", "http://x", json=event).read()
    query = "&".join(f"{k}={v}" for k, v in _signed(small, body).items())

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(f"{small.http_url}/apps/1001/events?{query}", content=chunks())
    assert "content-length" not in response.request.headers
    refused(response, 413, "The request body is larger than 1000 bytes")

    response = await call(small, "POST", "/events", watched_target.event(data="x" * 800))
    assert (response.status_code, response.json()) == (200, {})
    assert await watched_target.socket.recv() == {
        "event": "must-not-arrive",
        "channel": watched_target.channel,
        "data": "x" * 800,
    }
    await watched_target.assert_nothing_delivered()


def _signed(server: RunningServer, body: bytes) -> Params:
    return pusher_query("POST", "/apps/1001/events", body, {}, server.key, server.secret)


async def test_event_data_over_the_limit(start_server: StartServer, connect: Connect) -> None:
    roomy = start_server({"REVERB_MAX_REQUEST_SIZE": "100000"})
    watched_target = await watched(roomy, connect)

    response = await call(roomy, "POST", "/events", watched_target.event(data="x" * 10_241))
    refused(response, 413, "The event data is larger than 10240 bytes")
    batch = [{"name": "e", "channel": watched_target.channel, "data": "\u00e9" * 5_121}]  # 10 242 bytes
    response = await call(roomy, "POST", "/batch_events", {"batch": batch})
    refused(response, 413, "batch[0]: The event data is larger than 10240 bytes")
    await watched_target.assert_nothing_delivered()

    response = await call(roomy, "POST", "/events", watched_target.event(data="x" * 10_240))
    assert (response.status_code, response.json()) == (200, {})


# Unknown apps, paths and methods


async def test_unknown_app(target: Target) -> None:
    response = await call(target.server, "POST", "/events", target.event(), app_id="9999")
    refused(response, 404, "Application does not exist")


async def test_unknown_app_key_on_the_unprefixed_terminate_path(target: Target) -> None:
    response = await call(
        target.server, "POST", "", {}, url_path="/users/u/terminate_connections", key="nobody-key"
    )
    refused(response, 404, "Application does not exist")


async def test_unknown_path_is_a_json_404(target: Target) -> None:
    response = await call(target.server, "GET", "/no-such-thing")
    refused(response, 404, "Not Found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/events", "POST"),
        ("PUT", "/events", "POST"),
        ("GET", "/batch_events", "POST"),
        ("POST", "/channels", "GET"),
        ("DELETE", "/channels/x", "GET"),
        ("POST", "/channels/presence-x/users", "GET"),
        ("POST", "/connections", "GET"),
        ("GET", "/users/u/terminate_connections", "POST"),
    ],
)
async def test_wrong_method(target: Target, method: str, path: str, allowed: str) -> None:
    payload = target.event() if method != "GET" else None
    response = await call(target.server, method, path, payload)
    refused(response, 405, f"Method {method} is not allowed here: use {allowed}")
    assert response.headers["allow"] == allowed


# Queries that make no sense


async def test_queries_refused(target: Target) -> None:
    server = target.server
    cases: list[tuple[str, Params, str]] = [
        ("/channels/public-x/users", {}, "Users can only be retrieved for presence channels"),
        ("/channels/public-x", {"info": "user_count"}, "user_count is only available for presence channels"),
        ("/channels/public-x", {"info": "colour"}, "Unknown info attribute: colour"),
        ("/channels/bad name", {}, "Invalid channel name: 'bad name'"),
        (
            "/channels",
            {"info": "user_count"},
            "user_count may only be requested with filter_by_prefix=presence- (presence channels)",
        ),
        (
            "/channels",
            {"info": "user_count", "filter_by_prefix": "private-"},
            "user_count may only be requested with filter_by_prefix=presence- (presence channels)",
        ),
        ("/channels", {"info": "cache"}, "Unknown info attribute: cache"),
    ]
    for path, params, message in cases:
        response = await call(server, "GET", path, params=params)
        refused(response, 400, message)


# The signature property, through the live server (the unit test runs many more examples)

LIVE_CORRUPTIONS = (
    "none",
    "fresh_shift",
    "wrong_secret",
    "wrong_key",
    "stale",
    "future",
    "tampered_body",
    "tampered_param",
    "signed_other_path",
    "dropped_param",
    "added_param",
)
_query_keys = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).filter(
    lambda k: k not in ("info",) and not k.startswith(("auth", "body", "filter"))
)
_query_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF), max_size=12)


@st.composite
def live_requests(draw: st.DrawFn) -> tuple[str, str, bytes, Params, str]:
    """A request signed by the test's own signer, then maybe corrupted; returns it with the corruption."""
    method = draw(st.sampled_from(["GET", "POST"]))
    path = "/apps/1001/channels" if method == "GET" else "/apps/1001/events"
    event = {"name": "property", "channel": f"nobody-{draw(st.integers(0, 10**6))}", "data": draw(st.text())}
    body = json.dumps(event).encode() if method == "POST" else b""
    extra = draw(st.dictionaries(_query_keys, _query_values, max_size=3))
    corruption = draw(st.sampled_from(LIVE_CORRUPTIONS))
    now = int(time.time())
    timestamp = {
        "fresh_shift": now + draw(st.integers(-500, 500)),
        "stale": now - draw(st.integers(700, 10**8)),
        "future": now + draw(st.integers(700, 10**8)),
    }.get(corruption, now)
    key = "someone-else" if corruption == "wrong_key" else "app-key"
    secret = draw(st.text(min_size=1, max_size=12)) if corruption == "wrong_secret" else "app-secret"
    assume(secret != "app-secret" or corruption != "wrong_secret")
    signed_path = path + "/x" if corruption == "signed_other_path" else path
    query = pusher_query(method, signed_path, body, extra, key, secret, timestamp)
    if corruption == "tampered_body":
        body = body + b" " if body else b"{}"
    elif corruption == "tampered_param":
        name = draw(st.sampled_from(sorted(set(query) - {"auth_signature"})))
        query[name] += draw(st.sampled_from(["0", "a", "-"]))
    elif corruption == "dropped_param":
        del query[draw(st.sampled_from(sorted(query)))]
    elif corruption == "added_param":
        query[draw(_query_keys.filter(lambda k: k not in query))] = draw(_query_values)
    return method, path, body, query, corruption


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=live_requests())
def test_live_server_accepts_exactly_the_correctly_signed_fresh_requests(
    server: RunningServer, case: tuple[str, str, bytes, Params, str]
) -> None:
    method, path, body, query, corruption = case
    url = f"{server.http_url}{path}?" + "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items()
    )
    response = httpx.request(method, url, content=body, timeout=5)
    if corruption in ("none", "fresh_shift"):
        assert response.status_code == 200, response.text
    else:
        assert error_of(response)[0] == 401, (corruption, response.text)
        assert set(response.json()) == {"error"}
