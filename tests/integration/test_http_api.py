"""The HTTP API driven by the real Python `pusher` SDK (and raw signed requests), with exact frames."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable
from typing import Any

import pusher
import pytest
from pusher.http import GET, POST, Request

from tests.support.api_client import assert_nothing_delivered, call
from tests.support.fixture_types import Connect, StartServer
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import RunningServer


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def sdk_for(server: RunningServer) -> pusher.Pusher:
    return pusher.Pusher(
        app_id=server.app_id,
        key=server.key,
        secret=server.secret,
        host="127.0.0.1",
        port=server.port,
        ssl=False,
    )


@pytest.fixture
def sdk(server: RunningServer) -> pusher.Pusher:
    """The Python SDK (synchronous: call it through `asyncio.to_thread`) on the session server."""
    return sdk_for(server)


async def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.wait_for(asyncio.to_thread(function, *args, **kwargs), 10)


async def sign_in(socket: PusherSocket, sdk: pusher.Pusher, user: dict[str, Any]) -> None:
    """Sign a socket in with the SDK's `authenticate_user` token, as a backend's auth endpoint would."""
    token = sdk.authenticate_user(socket.socket_id, user)
    await socket.send({"event": "pusher:signin", "data": token})
    assert await socket.recv() == {
        "event": "pusher:signin_success",
        "data": compact({"user_data": token["user_data"]}),
    }


# Publishing


async def test_trigger_delivers_the_exact_frame_to_every_subscriber(
    connect: Connect, sdk: pusher.Pusher
) -> None:
    channel = unique("orders-")
    first, second = await connect(), await connect()
    for socket in (first, second):
        await socket.join(channel)

    assert await run(sdk.trigger, channel, "order-placed", {"id": 7, "total": "9.50"}) == {}

    for socket in (first, second):
        frame = await socket.recv_raw()
        # The SDK JSON-encodes the data with spaces; it is relayed byte for byte as a string.
        assert frame == compact(
            {"event": "order-placed", "channel": channel, "data": '{"id": 7, "total": "9.50"}'}
        )
        await socket.assert_silent(0.1)


async def test_trigger_to_several_channels_excludes_the_socket_id(
    connect: Connect, sdk: pusher.Pusher, server: RunningServer
) -> None:
    left, right = unique("left-"), unique("right-")
    author, reader = await connect(), await connect()
    for socket in (author, reader):
        await socket.join(left)
        await socket.join(right)

    assert await run(sdk.trigger, [left, right], "moved", "plain text", socket_id=author.socket_id) == {}

    assert await reader.recv() == {"event": "moved", "channel": left, "data": "plain text"}
    assert await reader.recv() == {"event": "moved", "channel": right, "data": "plain text"}
    await assert_nothing_delivered(server, left, author)


async def test_trigger_with_info_reports_counts_per_channel(connect: Connect, sdk: pusher.Pusher) -> None:
    """`Pusher.trigger` has no `info` argument; the SDK's own request signer sends what Node and PHP send."""
    room, lobby = unique("presence-room-"), unique("lobby-")
    ann_1, ann_2, bob = await connect(), await connect(), await connect()
    ann = compact({"user_id": "ann"})
    await ann_1.join(room, ann)
    await ann_2.join(room, ann)
    await bob.join(lobby)
    client = sdk._pusher_client
    event = {"name": "tick", "channels": [room, lobby], "data": "1", "info": "user_count,subscription_count"}

    def trigger_with_info() -> Any:
        return client.http.send_request(Request(client, POST, f"/apps/{client.app_id}/events", event))

    assert await run(trigger_with_info) == {
        "channels": {room: {"user_count": 1, "subscription_count": 2}, lobby: {"subscription_count": 1}}
    }
    assert await bob.recv() == {"event": "tick", "channel": lobby, "data": "1"}
    for socket in (ann_1, ann_2):
        assert await socket.recv() == {"event": "tick", "channel": room, "data": "1"}


async def test_trigger_to_channels_without_subscribers_is_accepted(sdk: pusher.Pusher) -> None:
    assert await run(sdk.trigger, [unique("nobody-"), unique("private-nobody-")], "e", "{}") == {}


async def test_trigger_batch_without_and_with_info(connect: Connect, sdk: pusher.Pusher) -> None:
    public, room = unique("feed-"), unique("presence-feed-")
    reader, member = await connect(), await connect()
    await reader.join(public)
    await member.join(room, compact({"user_id": "m-1", "user_info": {"name": "M"}}))

    batch = [
        {"channel": public, "name": "first", "data": {"n": 1}},
        {"channel": room, "name": "second", "data": "two"},
    ]
    assert await run(sdk.trigger_batch, batch) == {}
    assert await reader.recv() == {"event": "first", "channel": public, "data": '{"n": 1}'}
    assert await member.recv() == {"event": "second", "channel": room, "data": "two"}

    batch = [
        {"channel": public, "name": "third", "data": "3", "info": "subscription_count"},
        {"channel": room, "name": "fourth", "data": "4", "info": "user_count,subscription_count"},
        {"channel": public, "name": "fifth", "data": "5"},
    ]
    assert await run(sdk.trigger_batch, batch) == {
        "batch": [{"subscription_count": 1}, {"user_count": 1, "subscription_count": 1}, {}]
    }
    assert await reader.recv() == {"event": "third", "channel": public, "data": "3"}
    assert await reader.recv() == {"event": "fifth", "channel": public, "data": "5"}
    assert await member.recv() == {"event": "fourth", "channel": room, "data": "4"}


# Queries


async def test_channels_info_filters_by_prefix_and_reports_attributes(
    connect: Connect, sdk: pusher.Pusher
) -> None:
    tag = uuid.uuid4().hex[:12]
    red, blue, room = f"{tag}-red", f"{tag}-blue", f"presence-{tag}-room"
    one, two = await connect(), await connect()
    await one.join(red)
    await two.join(red)
    await two.join(blue)
    await one.join(room, compact({"user_id": "1"}))
    await two.join(room, compact({"user_id": "2"}))

    assert await run(sdk.channels_info, tag) == {"channels": {blue: {}, red: {}}}
    assert await run(sdk.channels_info, tag, ["subscription_count"]) == {
        "channels": {blue: {"subscription_count": 1}, red: {"subscription_count": 2}}
    }
    assert await run(sdk.channels_info, f"presence-{tag}", ["user_count"]) == {
        "channels": {room: {"user_count": 2}}
    }
    everything = await run(sdk.channels_info)
    assert {red, blue, room} <= set(everything["channels"])
    assert all(info == {} for info in everything["channels"].values())


async def test_channels_info_lists_only_occupied_channels(connect: Connect, sdk: pusher.Pusher) -> None:
    tag = uuid.uuid4().hex[:12]
    socket = await connect()
    await socket.join(f"{tag}-gone")
    await socket.send({"event": "pusher:unsubscribe", "data": {"channel": f"{tag}-gone"}})
    await socket.join(f"{tag}-here")  # its reply proves the unsubscribe was handled first
    await run(sdk.trigger, f"{tag}-never", "e", "{}")

    assert await run(sdk.channels_info, tag) == {"channels": {f"{tag}-here": {}}}


async def test_channel_info_of_public_presence_and_empty_channels(
    connect: Connect, sdk: pusher.Pusher
) -> None:
    public, room = unique("stats-"), unique("presence-stats-")
    a, b, c = await connect(), await connect(), await connect()
    for socket in (a, b):
        await socket.join(public)
    await a.join(room, compact({"user_id": "1"}))
    await b.join(room, compact({"user_id": "1"}))
    await c.join(room, compact({"user_id": "2"}))

    assert await run(sdk.channel_info, public) == {"occupied": True}
    assert await run(sdk.channel_info, public, ["subscription_count"]) == {
        "occupied": True,
        "subscription_count": 2,
    }
    assert await run(sdk.channel_info, room, ["user_count", "subscription_count"]) == {
        "occupied": True,
        "user_count": 2,
        "subscription_count": 3,
    }
    assert await run(sdk.channel_info, unique("empty-"), ["subscription_count"]) == {
        "occupied": False,
        "subscription_count": 0,
    }


async def test_users_info_lists_each_presence_user_once(connect: Connect, sdk: pusher.Pusher) -> None:
    room = unique("presence-users-")
    for user_id in ("u-1", "u-2", "u-1"):
        socket = await connect()
        await socket.join(room, compact({"user_id": user_id, "user_info": {"name": user_id}}))

    assert await run(sdk.users_info, room) == {"users": [{"id": "u-1"}, {"id": "u-2"}]}
    assert await run(sdk.users_info, unique("presence-empty-")) == {"users": []}


async def test_connections_counts_open_sockets(start_server: StartServer, connect: Connect) -> None:
    """`GET /connections` (a Reverb extension) through the SDK's own request signer."""
    fresh = start_server()
    client = sdk_for(fresh)._pusher_client

    def connections() -> Any:
        return client.http.send_request(Request(client, GET, f"/apps/{fresh.app_id}/connections"))

    assert await run(connections) == {"connections": 0}
    first = await connect(fresh)
    await connect(fresh)
    assert await run(connections) == {"connections": 2}
    await first.close()
    for _ in range(50):  # the server learns of the close asynchronously
        if await run(connections) == {"connections": 1}:
            break
        await asyncio.sleep(0.05)
    assert await run(connections) == {"connections": 1}


# Cache channels


async def test_cache_channel_keeps_the_last_event_for_late_subscribers(
    connect: Connect, sdk: pusher.Pusher
) -> None:
    channel = unique("cache-price-")
    assert await run(sdk.trigger, channel, "price", {"eur": 1}) == {}
    assert await run(sdk.trigger, channel, "price", {"eur": 2}) == {}

    info = await run(sdk.channel_info, channel, ["cache"])
    ttl = info["cache"].pop("ttl")
    assert info == {"occupied": False, "cache": {"event": "price", "data": '{"eur": 2}'}}
    assert 1790 <= ttl <= 1800

    late = await connect()
    assert await late.join(channel) == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": channel,
        "data": "{}",
    }
    assert await late.recv() == {"event": "price", "channel": channel, "data": '{"eur": 2}'}

    uncached = unique("cache-none-")
    await late.join(uncached)
    assert await late.recv() == {"event": "pusher:cache_miss", "channel": uncached}
    assert await run(sdk.channel_info, uncached, ["cache"]) == {"occupied": True}


# Users


async def test_send_to_user_reaches_every_socket_of_that_user_only(
    connect: Connect, sdk: pusher.Pusher
) -> None:
    user_id = unique("user-")
    first, second, other = await connect(), await connect(), await connect()
    await sign_in(first, sdk, {"id": user_id, "name": "Ann"})
    await sign_in(second, sdk, {"id": user_id})
    await sign_in(other, sdk, {"id": unique("other-")})

    assert await run(sdk.send_to_user, user_id, "notice", {"unread": 3}) == {}

    for socket in (first, second):
        assert await socket.recv() == {
            "event": "notice",
            "channel": f"#server-to-user-{user_id}",
            "data": '{"unread": 3}',
        }
    await other.assert_silent(0.2)


async def test_terminate_user_connections_closes_only_that_users_sockets(
    connect: Connect, sdk: pusher.Pusher, server: RunningServer
) -> None:
    """The Python SDK posts to `/users/{id}/terminate_connections`, without `/apps/{id}`."""
    user_id = unique("leaver-")
    first, second, bystander = await connect(), await connect(), await connect()
    await sign_in(first, sdk, {"id": user_id})
    await sign_in(second, sdk, {"id": user_id})
    await sign_in(bystander, sdk, {"id": unique("stayer-")})
    channel = unique("after-terminate-")
    await bystander.join(channel)

    assert await run(sdk.terminate_user_connections, user_id) == {}

    for socket in (first, second):
        assert await socket.recv() == {
            "event": "pusher:error",
            "data": compact({"code": 4009, "message": "Connection terminated by the application"}),
        }
        assert await socket.closed_with() == (4009, "Connection terminated by the application")
    await assert_nothing_delivered(server, channel, bystander)


async def test_terminate_connections_on_the_prefixed_path(connect: Connect, server: RunningServer) -> None:
    """The Node and PHP SDKs post to `/apps/{id}/users/{id}/terminate_connections`."""
    user_id = unique("prefixed-")
    socket = await connect()
    await sign_in(socket, sdk_for(server), {"id": user_id})

    response = await call(server, "POST", f"/users/{user_id}/terminate_connections", {})

    assert (response.status_code, response.json()) == (200, {})
    assert (await socket.recv())["event"] == "pusher:error"
    assert await socket.closed_with() == (4009, "Connection terminated by the application")


# Channel authorization tokens from the SDK


async def test_sdk_authenticate_tokens_are_accepted_on_subscribe(
    connect: Connect, sdk: pusher.Pusher
) -> None:
    private, room = unique("private-doc-"), unique("presence-doc-")
    socket = await connect()

    token = sdk.authenticate(private, socket.socket_id)
    assert set(token) == {"auth"}
    await socket.subscribe(private, token["auth"])
    assert await socket.recv() == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": private,
        "data": "{}",
    }

    member = {"user_id": "7", "user_info": {"name": "Gus"}}
    token = sdk.authenticate(room, socket.socket_id, member)
    assert set(token) == {"auth", "channel_data"}
    await socket.subscribe(room, token["auth"], token["channel_data"])
    assert await socket.recv() == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": room,
        "data": compact({"presence": {"count": 1, "ids": ["7"], "hash": {"7": {"name": "Gus"}}}}),
    }

    other = await connect()
    stolen = sdk.authenticate(private, socket.socket_id)  # signed for another socket
    await other.subscribe(private, stolen["auth"])
    assert (await other.recv())["event"] == "pusher:subscription_error"


# Behind a reverse proxy that keeps the path prefix


async def test_api_and_websocket_under_a_path_prefix(start_server: StartServer, connect: Connect) -> None:
    prefixed = start_server({"REVERB_SERVER_PATH": "/ws"})
    assert prefixed.path == "/ws"
    channel = unique("behind-proxy-")
    socket = await connect(prefixed)
    await socket.join(channel)
    payload = {"name": "hello", "channel": channel, "data": "x"}

    # Signed over the path without the prefix (what PROTOCOL.md specifies) ...
    response = await call(prefixed, "POST", "/events", payload)
    assert (response.status_code, response.json()) == (200, {})
    assert await socket.recv() == {"event": "hello", "channel": channel, "data": "x"}
    # ... or over the full path (SDKs configured with the prefix in their host) ...
    response = await call(prefixed, "POST", "/events", payload, signed_path="/ws/apps/1001/events")
    assert (response.status_code, response.json()) == (200, {})
    assert await socket.recv() == {"event": "hello", "channel": channel, "data": "x"}
    # ... but not over any other path.
    response = await call(prefixed, "POST", "/events", payload, signed_path="/api/apps/1001/events")
    assert response.status_code == 401
    assert response.json()["error"].startswith(
        "Invalid signature: expected the HMAC-SHA256 of 'POST\\n/apps/1001/"
    )

    response = await call(prefixed, "GET", "/channels", params={"filter_by_prefix": "behind-proxy-"})
    assert (response.status_code, response.json()) == (200, {"channels": {channel: {}}})

    unprefixed = dataclasses.replace(prefixed, path="")
    response = await call(unprefixed, "POST", "/events", payload)
    assert (response.status_code, response.json()) == (404, {"error": "Not Found"})
    await assert_nothing_delivered(prefixed, channel, socket)
