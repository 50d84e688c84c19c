"""The HTTP API driven by the real Node `pusher` SDK, with the effect on real pusher-js clients."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from tests.clients.node import NodeDriver
from tests.support.fixture_types import StartServer
from tests.support.servers import RunningServer

pytestmark = pytest.mark.node

ALICE = {"user_id": "1", "user_info": {"name": "Alice"}}
BOB = {"user_id": "2", "user_info": {"name": "Bob"}}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def channel_event(client: str, channel: str, event: str) -> dict[str, Any]:
    return {"type": "event", "client": client, "channel": channel, "source": "channel", "event": event}


async def ok(driver: NodeDriver, server: RunningServer, call: str, *args: Any) -> Any:
    """Call the SDK and return the body of its 200 reply."""
    reply = await driver.rest(server, call, *args)
    assert (reply["ok"], reply["status"]) == (True, 200), reply
    return reply["body"]


async def subscribed(driver: NodeDriver, client: str, channel: str, **fields: Any) -> None:
    result = await driver.subscribe(client, channel, **fields)
    assert result["subscribed"] is True, result


async def test_trigger_reaches_pusher_js_except_the_excluded_socket(
    node_driver: NodeDriver, server: RunningServer
) -> None:
    first, second = unique("node-a-"), unique("node-b-")
    author = await node_driver.connect(server, "author")
    await node_driver.connect(server, "reader")
    for client in ("author", "reader"):
        await subscribed(node_driver, client, first)
        await subscribed(node_driver, client, second)

    body = await ok(node_driver, server, "trigger", [first, second], "moved", {"x": 1}, {"socket_id": author})

    assert body == {}
    for channel in (first, second):
        event = await node_driver.expect(channel_event("reader", channel, "moved"))
        assert event["data"] == {"x": 1}
    assert await ok(node_driver, server, "trigger", first, "fence", "") == {}
    await node_driver.expect(channel_event("author", first, "fence"))
    await node_driver.assert_none(channel_event("author", first, "moved"), within=0)
    await node_driver.assert_none(channel_event("author", second, "moved"), within=0)


async def test_trigger_with_info_on_a_presence_channel(
    node_driver: NodeDriver, server: RunningServer
) -> None:
    room, lobby = unique("presence-node-"), unique("node-lobby-")
    await node_driver.connect(server, "alice", presence=ALICE)
    await node_driver.connect(server, "bob", presence=BOB)
    for client in ("alice", "bob"):
        await subscribed(node_driver, client, room)
    await subscribed(node_driver, "bob", lobby)

    body = await ok(
        node_driver,
        server,
        "trigger",
        [room, lobby],
        "score",
        {"n": 3},
        {"info": "user_count,subscription_count"},
    )

    assert body == {
        "channels": {room: {"user_count": 2, "subscription_count": 2}, lobby: {"subscription_count": 1}}
    }
    for client in ("alice", "bob"):
        assert (await node_driver.expect(channel_event(client, room, "score")))["data"] == {"n": 3}
    assert (await node_driver.expect(channel_event("bob", lobby, "score")))["data"] == {"n": 3}


async def test_trigger_batch_with_and_without_info(node_driver: NodeDriver, server: RunningServer) -> None:
    feed, room = unique("node-feed-"), unique("presence-node-feed-")
    await node_driver.connect(server, "alice", presence=ALICE)
    await subscribed(node_driver, "alice", feed)
    await subscribed(node_driver, "alice", room)

    plain = [
        {"channel": feed, "name": "one", "data": {"n": 1}},
        {"channel": room, "name": "two", "data": "2"},
    ]
    assert await ok(node_driver, server, "triggerBatch", plain) == {}
    counted = [
        {"channel": feed, "name": "three", "data": "3"},
        {"channel": room, "name": "four", "data": "4", "info": "user_count,subscription_count"},
    ]
    assert await ok(node_driver, server, "triggerBatch", counted) == {
        "batch": [{}, {"user_count": 1, "subscription_count": 1}]
    }

    for channel, name, data in (
        (feed, "one", {"n": 1}),
        (room, "two", 2),
        (feed, "three", 3),
        (room, "four", 4),
    ):
        assert (await node_driver.expect(channel_event("alice", channel, name)))["data"] == data


async def test_channel_queries(node_driver: NodeDriver, start_server: StartServer) -> None:
    fresh = start_server()
    tag = uuid.uuid4().hex[:8]
    public, room = f"node-{tag}", f"presence-node-{tag}"
    await node_driver.connect(fresh, "alice", presence=ALICE)
    await node_driver.connect(fresh, "bob", presence=BOB)
    for client in ("alice", "bob"):
        await subscribed(node_driver, client, public)
        await subscribed(node_driver, client, room)

    def get(path: str, **params: str) -> tuple[str, dict[str, Any]]:
        return ("get", {"path": path, "params": params})

    users = {"users": [{"id": "1"}, {"id": "2"}]}
    counts = {"occupied": True, "user_count": 2, "subscription_count": 2}
    cases: list[tuple[tuple[str, dict[str, Any]], Any]] = [
        (get("/channels"), {"channels": {public: {}, room: {}}}),
        (
            get("/channels", filter_by_prefix="node-", info="subscription_count"),
            {"channels": {public: {"subscription_count": 2}}},
        ),
        (
            get("/channels", filter_by_prefix="presence-", info="user_count"),
            {"channels": {room: {"user_count": 2}}},
        ),
        (get(f"/channels/{public}"), {"occupied": True}),
        (get(f"/channels/{room}", info="user_count,subscription_count"), counts),
        (get(f"/channels/{room}/users"), users),
        (get("/connections"), {"connections": 2}),
    ]
    for (call, options), expected in cases:
        assert await ok(node_driver, fresh, call, options) == expected, options


async def test_cache_channel_serves_late_pusher_js_subscribers(
    node_driver: NodeDriver, server: RunningServer
) -> None:
    cached, empty = unique("cache-node-"), unique("cache-node-empty-")
    assert await ok(node_driver, server, "trigger", cached, "price", {"eur": 5}) == {}

    info = await ok(node_driver, server, "get", {"path": f"/channels/{cached}", "params": {"info": "cache"}})
    assert 1790 <= info["cache"].pop("ttl") <= 1800
    assert info == {"occupied": False, "cache": {"event": "price", "data": '{"eur":5}'}}

    await node_driver.connect(server, "late")
    await subscribed(node_driver, "late", cached)
    assert (await node_driver.expect(channel_event("late", cached, "price")))["data"] == {"eur": 5}
    await subscribed(node_driver, "late", empty)
    await node_driver.expect(channel_event("late", empty, "pusher:cache_miss"))


async def test_send_to_user_and_terminate_user_connections(
    node_driver: NodeDriver, server: RunningServer
) -> None:
    user_id = unique("node-user-")
    for client in ("phone", "laptop"):
        await node_driver.connect(server, client, user={"id": user_id})
        await node_driver.ok({"cmd": "signin", "client": client, "wait": True})
    await node_driver.connect(server, "stranger", user={"id": unique("node-other-")})
    await node_driver.ok({"cmd": "signin", "client": "stranger", "wait": True})

    assert await ok(node_driver, server, "sendToUser", user_id, "ping", {"n": 1}) == {}
    for client in ("phone", "laptop"):
        event = await node_driver.expect({"type": "user_event", "client": client, "event": "ping"})
        assert event["data"] == {"n": 1}

    # The Node SDK posts to /apps/{id}/users/{id}/terminate_connections.
    assert await ok(node_driver, server, "terminateUserConnections", user_id) == {}
    for client in ("phone", "laptop"):
        closed = await node_driver.expect({"type": "closed", "client": client})
        assert (closed["code"], closed["reason"]) == (4009, "Connection terminated by the application")
    await node_driver.assert_none({"type": "user_event", "client": "stranger"}, within=0)
    await node_driver.assert_none({"type": "closed", "client": "stranger"}, within=0.2)


async def test_rejections_through_the_node_sdk(node_driver: NodeDriver, server: RunningServer) -> None:
    """What the SDK does not refuse itself, the server does, with a JSON body; nothing is delivered."""
    channel = unique("node-guarded-")
    await node_driver.connect(server, "watcher")
    await subscribed(node_driver, "watcher", channel)
    wrong_secret = dataclasses.replace(server, secret="not-the-secret")
    wrong_app = dataclasses.replace(server, app_id="9999")
    batch = [{"channel": channel, "name": "nope", "data": str(i)} for i in range(11)]

    missing_data = {"path": "/events", "body": {"name": "nope", "channel": channel}}
    numeric_data = {"path": "/events", "body": {"name": "nope", "channels": [channel], "data": 1}}
    cases: list[tuple[RunningServer, str, tuple[Any, ...], int, str]] = [
        (wrong_app, "trigger", (channel, "nope", "{}"), 404, "Application does not exist"),
        (
            server,
            "trigger",
            (channel, "nope", "x" * 10_241),
            413,
            "The request body is larger than 10000 bytes",
        ),
        (
            server,
            "trigger",
            (channel, "nope", "{}", {"info": "colour"}),
            400,
            "Unknown info attribute: colour",
        ),
        (server, "triggerBatch", (batch,), 400, "A batch can hold at most 10 events"),
        (server, "post", (missing_data,), 400, "Missing required field: data"),
        (server, "post", (numeric_data,), 400, "The field data must be a string (JSON-encode it first)"),
        (server, "get", ({"path": "/events"},), 405, "Method GET is not allowed here: use POST"),
        (
            server,
            "get",
            ({"path": f"/channels/{channel}/users"},),
            400,
            "Users can only be retrieved for presence channels",
        ),
    ]
    for target, call, args, status, message in cases:
        reply = await node_driver.rest(target, call, *args)
        assert (reply["ok"], reply["status"], reply["body"]) == (False, status, {"error": message}), reply

    reply = await node_driver.rest(wrong_secret, "trigger", channel, "nope", "{}")
    assert (reply["ok"], reply["status"]) == (False, 401)
    assert reply["body"]["error"].startswith(
        "Invalid signature: expected the HMAC-SHA256 of 'POST\\n/apps/1001/events\\n"
    )

    assert await ok(node_driver, server, "trigger", channel, "canary", "") == {}
    await node_driver.expect(channel_event("watcher", channel, "canary"))
    await node_driver.assert_none(channel_event("watcher", channel, "nope"), within=0)


async def test_node_sdk_and_pusher_js_under_a_path_prefix(
    node_driver: NodeDriver, start_server: StartServer
) -> None:
    """The SDK's host carries the prefix; it signs the path without it, as Pusher specifies."""
    prefixed = start_server({"REVERB_SERVER_PATH": "/ws"})
    channel = unique("node-proxied-")
    await node_driver.connect(prefixed, "behind")
    await subscribed(node_driver, "behind", channel)

    assert await ok(node_driver, prefixed, "trigger", channel, "through", {"ok": True}) == {}
    assert (await node_driver.expect(channel_event("behind", channel, "through")))["data"] == {"ok": True}
    assert await ok(node_driver, prefixed, "get", {"path": "/channels"}) == {"channels": {channel: {}}}
    assert await ok(node_driver, prefixed, "get", {"path": "/connections"}) == {"connections": 1}

    unprefixed = dataclasses.replace(prefixed, path="")
    reply = await node_driver.rest(unprefixed, "trigger", channel, "through", {"ok": False})
    assert (reply["ok"], reply["status"], reply["body"]) == (False, 404, {"error": "Not Found"})
