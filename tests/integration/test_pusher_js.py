"""pusher-js 8 and the Node ``pusher`` SDK against a real Revurb server."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from typing import Any

import pytest

from tests.clients.node import Message, NodeDriver, ServerLike
from tests.support.fixture_types import StartServer

pytestmark = pytest.mark.node

MASTER_KEY = base64.b64encode(b"revurb-e2e-test-master-key-32byt").decode()
ALICE = {"user_id": "1", "user_info": {"name": "Alice"}}
BOB = {"user_id": "2", "user_info": {"name": "Bob"}}
AUTH_ERROR = {"type": "AuthError", "error": "The connection is unauthorized.", "status": 401}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def channel_event(client: str, channel: str, event: str, **more: Any) -> dict[str, Any]:
    return {"type": "event", "client": client, "channel": channel, "event": event, **more}


async def test_connects_and_gets_a_socket_id(node_driver: NodeDriver, server: ServerLike) -> None:
    socket_id = await node_driver.connect(server, "a")

    assert re.fullmatch(r"[1-9]\d*\.[1-9]\d*", socket_id), socket_id
    state = await node_driver.expect({"type": "state", "client": "a", "current": "connected"})
    assert state == {
        "type": "state",
        "client": "a",
        "previous": "connecting",
        "current": "connected",
        "socket_id": socket_id,
    }
    reply = await node_driver.ok({"cmd": "socket_id", "client": "a"})
    assert reply["socket_id"] == socket_id
    assert reply["state"] == "connected"


async def test_two_clients_get_different_socket_ids(node_driver: NodeDriver, server: ServerLike) -> None:
    first = await node_driver.connect(server, "a")
    second = await node_driver.connect(server, "b")

    assert first != second


async def test_public_channel_receives_sdk_event(node_driver: NodeDriver, server: ServerLike) -> None:
    channel = unique("orders-")
    await node_driver.connect(server, "a")

    result = await node_driver.subscribe("a", channel)
    assert (result["ok"], result["subscribed"]) == (True, True)
    assert "error" not in result
    reply = await node_driver.rest(server, "trigger", channel, "order-shipped", {"id": 7})
    assert (reply["ok"], reply["status"], reply["body"]) == (True, 200, {})

    event = await node_driver.expect(channel_event("a", channel, "order-shipped"))
    assert event["data"] == {"id": 7}
    assert "user_id" not in event


async def test_private_channel_receives_sdk_event(node_driver: NodeDriver, server: ServerLike) -> None:
    channel = unique("private-orders-")
    await node_driver.connect(server, "a")

    assert (await node_driver.subscribe("a", channel))["subscribed"] is True
    reply = await node_driver.rest(server, "trigger", channel, "status", {"state": "paid"})
    assert reply["status"] == 200

    event = await node_driver.expect(channel_event("a", channel, "status"))
    assert event["data"] == {"state": "paid"}


async def test_encrypted_channel_payload_is_decrypted_by_the_client(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    channel = unique("private-encrypted-vault-")
    await node_driver.connect(server, "a", masterKey=MASTER_KEY)

    assert (await node_driver.subscribe("a", channel))["subscribed"] is True
    payload = {"pin": "1234", "note": "ünïcode ✓"}
    reply = await node_driver.rest(server, "trigger", channel, "secret", payload, master_key=MASTER_KEY)
    assert reply["status"] == 200

    event = await node_driver.expect(channel_event("a", channel, "secret"))
    assert event["data"] == payload
    # What crossed the server was ciphertext, relayed untouched.
    raw = await node_driver.expect(lambda m: m["type"] == "message" and m["message"]["event"] == "secret")
    assert raw["message"]["channel"] == channel
    assert sorted(raw["message"]["data"]) == ["ciphertext", "nonce"]


async def test_client_events_are_refused_by_pusher_js_on_encrypted_channels(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    channel = unique("private-encrypted-chat-")
    await node_driver.connect(server, "a", masterKey=MASTER_KEY)
    assert (await node_driver.subscribe("a", channel))["subscribed"] is True

    reply = await node_driver.call(
        {"cmd": "trigger", "client": "a", "channel": channel, "event": "client-x", "data": {}}
    )
    assert reply["ok"] is False
    assert "not currently supported for encrypted channels" in reply["error"]


async def test_presence_members_join_and_leave(node_driver: NodeDriver, server: ServerLike) -> None:
    channel = unique("presence-room-")
    await node_driver.connect(server, "alice", presence=ALICE)
    await node_driver.connect(server, "bob", presence=BOB)

    assert (await node_driver.subscribe("alice", channel))["subscribed"] is True
    members = await node_driver.expect({"type": "members", "client": "alice", "channel": channel})
    assert members == {
        "type": "members",
        "client": "alice",
        "channel": channel,
        "count": 1,
        "me": {"id": "1", "info": {"name": "Alice"}},
        "members": {"1": {"name": "Alice"}},
    }
    await node_driver.expect(
        {
            "type": "message",
            "client": "alice",
            "message": {
                "event": "pusher_internal:subscription_succeeded",
                "channel": channel,
                "data": {"presence": {"count": 1, "ids": ["1"], "hash": {"1": {"name": "Alice"}}}},
            },
        }
    )

    assert (await node_driver.subscribe("bob", channel))["subscribed"] is True
    added = await node_driver.expect(channel_event("alice", channel, "pusher:member_added"))
    assert added["data"] == {"id": "2", "info": {"name": "Bob"}}
    raw_added = await node_driver.expect(
        {
            "type": "message",
            "client": "alice",
            "message": {
                "event": "pusher_internal:member_added",
                "channel": channel,
                "data": {"user_id": "2", "user_info": {"name": "Bob"}},
            },
        }
    )
    assert raw_added
    bob_members = await node_driver.expect({"type": "members", "client": "bob", "channel": channel})
    assert (bob_members["count"], bob_members["me"], bob_members["members"]) == (
        2,
        {"id": "2", "info": {"name": "Bob"}},
        {"1": {"name": "Alice"}, "2": {"name": "Bob"}},
    )
    await node_driver.assert_none(channel_event("bob", channel, "pusher:member_added"), within=0.3)

    users = await node_driver.rest(server, "get", {"path": f"/channels/{channel}/users"})
    assert users["status"] == 200
    assert sorted(users["body"]["users"], key=lambda u: u["id"]) == [{"id": "1"}, {"id": "2"}]

    await node_driver.ok({"cmd": "disconnect", "client": "bob"})
    removed = await node_driver.expect(channel_event("alice", channel, "pusher:member_removed"))
    assert removed["data"] == {"id": "2", "info": {"name": "Bob"}}
    await node_driver.expect(
        {
            "type": "message",
            "client": "alice",
            "message": {
                "event": "pusher_internal:member_removed",
                "channel": channel,
                "data": {"user_id": "2"},
            },
        }
    )
    snapshot = await node_driver.ok({"cmd": "members", "client": "alice", "channel": channel})
    assert (snapshot["count"], snapshot["members"]) == (1, {"1": {"name": "Alice"}})


async def test_presence_deduplicates_a_user_across_sockets(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    channel = unique("presence-dedup-")
    await node_driver.connect(server, "alice", presence=ALICE)
    await node_driver.connect(server, "bob-phone", presence=BOB)
    await node_driver.connect(server, "bob-laptop", presence=BOB)
    assert (await node_driver.subscribe("alice", channel))["subscribed"] is True

    assert (await node_driver.subscribe("bob-phone", channel))["subscribed"] is True
    added = await node_driver.expect(channel_event("alice", channel, "pusher:member_added"))
    assert added["data"] == {"id": "2", "info": {"name": "Bob"}}

    assert (await node_driver.subscribe("bob-laptop", channel))["subscribed"] is True
    laptop = await node_driver.expect({"type": "members", "client": "bob-laptop", "channel": channel})
    assert (laptop["count"], laptop["members"]) == (
        2,
        {"1": {"name": "Alice"}, "2": {"name": "Bob"}},
    )
    # Bob's second socket is the same member: nobody hears about it.
    await node_driver.assert_none(
        lambda m: m["type"] == "event" and m["channel"] == channel and m["event"] == "pusher:member_added",
        within=0.5,
    )
    users = await node_driver.rest(server, "get", {"path": f"/channels/{channel}/users"})
    assert sorted(users["body"]["users"], key=lambda u: u["id"]) == [{"id": "1"}, {"id": "2"}]

    await node_driver.ok({"cmd": "disconnect", "client": "bob-phone"})
    await node_driver.assert_none(channel_event("alice", channel, "pusher:member_removed"))

    await node_driver.ok({"cmd": "disconnect", "client": "bob-laptop"})
    removed = await node_driver.expect(channel_event("alice", channel, "pusher:member_removed"))
    assert removed["data"] == {"id": "2", "info": {"name": "Bob"}}


@pytest.mark.parametrize(
    "prefix", ["cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-"]
)
async def test_cache_channel_replays_last_event_to_late_subscriber(
    node_driver: NodeDriver, server: ServerLike, prefix: str
) -> None:
    channel = unique(f"{prefix}scores-")
    await node_driver.connect(server, "early", masterKey=MASTER_KEY, presence=ALICE)
    await node_driver.connect(server, "late", masterKey=MASTER_KEY, presence=BOB)

    assert (await node_driver.subscribe("early", channel))["subscribed"] is True
    miss = await node_driver.expect(channel_event("early", channel, "pusher:cache_miss"))
    assert miss["data"] is None

    for score in (1, 2):
        reply = await node_driver.rest(
            server, "trigger", channel, "score", {"home": score}, master_key=MASTER_KEY
        )
        assert reply["status"] == 200
        event = await node_driver.expect(channel_event("early", channel, "score"))
        assert event["data"] == {"home": score}

    assert (await node_driver.subscribe("late", channel))["subscribed"] is True
    replayed = await node_driver.expect(channel_event("late", channel, "score"))
    assert replayed["data"] == {"home": 2}
    await node_driver.assert_none(
        lambda m: (
            m["type"] == "event"
            and m["channel"] == channel
            and (m["event"] == "pusher:cache_miss" or m["event"] == "score")
        ),
        within=0.3,
    )


async def test_client_events_on_private_channel(node_driver: NodeDriver, server: ServerLike) -> None:
    channel = unique("private-chat-")
    await node_driver.connect(server, "a")
    await node_driver.connect(server, "b")
    assert (await node_driver.subscribe("a", channel))["subscribed"] is True
    assert (await node_driver.subscribe("b", channel))["subscribed"] is True

    sent = await node_driver.ok(
        {
            "cmd": "trigger",
            "client": "a",
            "channel": channel,
            "event": "client-typing",
            "data": {"typing": True},
        }
    )
    assert sent["result"] is True

    event = await node_driver.expect(channel_event("b", channel, "client-typing"))
    assert event["data"] == {"typing": True}
    assert "user_id" not in event
    raw = await node_driver.expect(
        {
            "type": "message",
            "client": "b",
            "message": {"event": "client-typing", "channel": channel, "data": {"typing": True}},
        }
    )
    assert raw
    await node_driver.assert_none(channel_event("a", channel, "client-typing"))


async def test_client_events_on_presence_channel_carry_user_id(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    channel = unique("presence-chat-")
    await node_driver.connect(server, "alice", presence=ALICE)
    await node_driver.connect(server, "bob", presence=BOB)
    assert (await node_driver.subscribe("alice", channel))["subscribed"] is True
    assert (await node_driver.subscribe("bob", channel))["subscribed"] is True

    sent = await node_driver.ok(
        {
            "cmd": "trigger",
            "client": "alice",
            "channel": channel,
            "event": "client-wave",
            "data": {"hand": "left"},
        }
    )
    assert sent["result"] is True

    event = await node_driver.expect(channel_event("bob", channel, "client-wave"))
    assert (event["data"], event["user_id"]) == ({"hand": "left"}, "1")
    raw = await node_driver.expect(
        {
            "type": "message",
            "client": "bob",
            "message": {"event": "client-wave", "channel": channel, "data": {"hand": "left"}, "user_id": "1"},
        }
    )
    assert raw
    await node_driver.assert_none(channel_event("alice", channel, "client-wave"))


async def test_signin_and_send_to_user(node_driver: NodeDriver, server: ServerLike) -> None:
    user_id = unique("u")
    user = {"id": user_id, "name": "Carol"}
    await node_driver.connect(server, "phone", user=user)
    await node_driver.connect(server, "laptop", user=user)
    await node_driver.connect(server, "stranger")

    for client in ("phone", "laptop"):
        signed = await node_driver.ok({"cmd": "signin", "client": client, "wait": True})
        assert signed["user_data"] == user
    success = await node_driver.expect({"type": "event", "client": "phone", "event": "pusher:signin_success"})
    assert success["data"]["user_data"] == f'{{"id":"{user_id}","name":"Carol"}}'
    # pusher-js subscribes to the server-to-user channel once signed in.
    for client in ("phone", "laptop"):

        def subscribed_to_user(m: Message, client: str = client) -> bool:
            return bool(
                m["type"] == "message"
                and m["client"] == client
                and m["message"]["event"] == "pusher_internal:subscription_succeeded"
                and m["message"]["channel"] == f"#server-to-user-{user_id}"
            )

        await node_driver.expect(subscribed_to_user)

    reply = await node_driver.rest(server, "sendToUser", user_id, "invoice-paid", {"total": 42})
    assert (reply["status"], reply["body"]) == (200, {})

    for client in ("phone", "laptop"):
        event = await node_driver.expect({"type": "user_event", "client": client})
        assert (event["event"], event["data"]) == ("invoice-paid", {"total": 42})
    await node_driver.assert_none({"type": "user_event", "client": "stranger"})


async def test_terminate_user_connections_closes_the_users_sockets(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    user_id = unique("u")
    await node_driver.connect(server, "target", user={"id": user_id})
    await node_driver.connect(server, "bystander")
    await node_driver.ok({"cmd": "signin", "client": "target", "wait": True})

    reply = await node_driver.rest(server, "terminateUserConnections", user_id)
    assert (reply["status"], reply["body"]) == (200, {})

    closed = await node_driver.expect({"type": "closed", "client": "target"})
    # A 4000-4099 code: pusher-js must not reconnect the terminated user on its own.
    assert 4000 < closed["code"] < 4100, closed
    await node_driver.expect({"type": "state", "client": "target", "current": "disconnected"})
    await node_driver.assert_none({"type": "state", "client": "target", "current": "connecting"}, 1.5)
    await node_driver.assert_none({"type": "closed", "client": "bystander"}, 0.1)


@pytest.mark.parametrize("prefix", ["private-", "presence-", "private-encrypted-"])
async def test_bad_auth_is_a_subscription_error(
    node_driver: NodeDriver, server: ServerLike, prefix: str
) -> None:
    channel = unique(f"{prefix}locked-")
    await node_driver.connect(server, "a", badAuth=True, presence=ALICE, masterKey=MASTER_KEY)

    result = await node_driver.subscribe("a", channel)
    assert (result["subscribed"], result["error"]) == (False, AUTH_ERROR)
    event = await node_driver.expect(channel_event("a", channel, "pusher:subscription_error"))
    assert event["data"] == AUTH_ERROR

    # The socket stays open and usable.
    await node_driver.assert_none({"type": "closed", "client": "a"}, within=0.3)
    reply = await node_driver.ok({"cmd": "socket_id", "client": "a"})
    assert reply["state"] == "connected"
    await node_driver.ok({"cmd": "set_auth", "client": "a", "badAuth": False})
    fine = unique(f"{prefix}open-")
    assert (await node_driver.subscribe("a", fine))["subscribed"] is True


async def test_unsubscribe_stops_delivery(node_driver: NodeDriver, server: ServerLike) -> None:
    channel = unique("news-")
    await node_driver.connect(server, "a")
    assert (await node_driver.subscribe("a", channel))["subscribed"] is True

    await node_driver.ok({"cmd": "unsubscribe", "client": "a", "channel": channel})
    # pusher:unsubscribe has no reply, and the WebSocket and the API are separate connections: wait
    # until the API sees the channel empty, then publish.
    async with asyncio.timeout(5):
        while (await node_driver.rest(server, "get", {"path": f"/channels/{channel}"}))["body"] != {
            "occupied": False
        }:
            await asyncio.sleep(0.02)
    await node_driver.rest(server, "trigger", channel, "headline", {"title": "late"})

    await node_driver.assert_none(channel_event("a", channel, "headline"))


async def test_sdk_trigger_excludes_the_given_socket(node_driver: NodeDriver, server: ServerLike) -> None:
    channel = unique("private-feed-")
    author = await node_driver.connect(server, "author")
    await node_driver.connect(server, "reader")
    for client in ("author", "reader"):
        assert (await node_driver.subscribe(client, channel))["subscribed"] is True

    reply = await node_driver.rest(server, "trigger", channel, "post", {"id": 1}, {"socket_id": author})
    assert (reply["status"], reply["body"]) == (200, {})

    event = await node_driver.expect(channel_event("reader", channel, "post"))
    assert event["data"] == {"id": 1}
    await node_driver.assert_none(channel_event("author", channel, "post"))


async def test_sdk_trigger_info_and_batch(node_driver: NodeDriver, server: ServerLike) -> None:
    public = unique("scores-")
    encrypted = unique("private-encrypted-scores-")
    for client in ("a", "b"):
        await node_driver.connect(server, client, masterKey=MASTER_KEY)
        for channel in (public, encrypted):
            assert (await node_driver.subscribe(client, channel))["subscribed"] is True

    reply = await node_driver.rest(
        server, "trigger", public, "goal", {"n": 1}, {"info": "subscription_count"}
    )
    assert (reply["status"], reply["body"]) == (
        200,
        {"channels": {public: {"subscription_count": 2}}},
    )
    batch = [
        {"channel": public, "name": "goal", "data": {"n": 2}},
        {"channel": encrypted, "name": "lineup", "data": {"players": ["Ann", "Bo"]}},
    ]
    reply = await node_driver.rest(server, "triggerBatch", batch, master_key=MASTER_KEY)
    assert (reply["status"], reply["body"]) == (200, {})  # Pusher: {} when no event asked for info
    counted = [{**item, "info": "subscription_count"} for item in batch]
    reply = await node_driver.rest(server, "triggerBatch", counted, master_key=MASTER_KEY)
    assert (reply["status"], reply["body"]) == (
        200,
        {"batch": [{"subscription_count": 2}, {"subscription_count": 2}]},
    )

    for client in ("a", "b"):
        goals = [await node_driver.expect(channel_event(client, public, "goal")) for _ in range(3)]
        assert [goal["data"] for goal in goals] == [{"n": 1}, {"n": 2}, {"n": 2}]
        for _ in range(2):
            lineup = await node_driver.expect(channel_event(client, encrypted, "lineup"))
            assert lineup["data"] == {"players": ["Ann", "Bo"]}


async def test_sdk_channel_queries(node_driver: NodeDriver, server: ServerLike) -> None:
    tag = uuid.uuid4().hex[:12]
    public, presence = f"lobby-{tag}", f"presence-lobby-{tag}"
    await node_driver.connect(server, "alice", presence=ALICE)
    await node_driver.connect(server, "bob", presence=BOB)
    for client in ("alice", "bob"):
        assert (await node_driver.subscribe(client, public))["subscribed"] is True
    assert (await node_driver.subscribe("alice", presence))["subscribed"] is True

    one = await node_driver.rest(
        server, "get", {"path": f"/channels/{public}", "params": {"info": "subscription_count"}}
    )
    assert (one["status"], one["body"]) == (200, {"occupied": True, "subscription_count": 2})
    listed = await node_driver.rest(
        server,
        "get",
        {"path": "/channels", "params": {"filter_by_prefix": presence, "info": "user_count"}},
    )
    assert (listed["status"], listed["body"]) == (
        200,
        {"channels": {presence: {"user_count": 1}}},
    )
    empty = await node_driver.rest(server, "get", {"path": f"/channels/{public}-nobody"})
    assert (empty["status"], empty["body"]) == (200, {"occupied": False})
    not_presence = await node_driver.rest(server, "get", {"path": f"/channels/{public}/users"})
    assert (not_presence["ok"], not_presence["status"]) == (False, 400)


async def test_unknown_app_key_is_refused_without_reconnecting(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    await node_driver.ok(
        {
            "cmd": "connect",
            "client": "a",
            "key": "no-such-key",
            "secret": server.secret,
            "host": server.host,
            "port": server.port,
            "path": server.path,
        }
    )

    error = await node_driver.expect({"type": "error", "client": "a"})
    assert error["error"] == {
        "type": "WebSocketError",
        "error": {
            "type": "PusherError",
            "data": {"code": 4001, "message": "Application does not exist"},
        },
    }
    closed = await node_driver.expect({"type": "closed", "client": "a"})
    assert (closed["code"], closed["reason"]) == (4001, "Application does not exist")
    await node_driver.expect({"type": "state", "client": "a", "current": "disconnected"})
    await node_driver.assert_none({"type": "state", "client": "a", "current": "connecting"}, 1.5)


async def test_bad_signin_is_an_error_and_closes_with_4009(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    await node_driver.connect(server, "a", user={"id": "7"}, badAuth=True)
    await node_driver.ok({"cmd": "signin", "client": "a"})

    error = await node_driver.expect({"type": "error", "client": "a"})
    assert error["error"]["type"] == "PusherError"
    assert error["error"]["data"]["code"] == 4009
    closed = await node_driver.expect({"type": "closed", "client": "a"})
    assert closed["code"] == 4009
    # 4000-4099 means "do not reconnect".
    await node_driver.expect({"type": "state", "client": "a", "current": "disconnected"})
    await node_driver.assert_none({"type": "state", "client": "a", "current": "connecting"}, 1.5)


async def test_activity_timeout_drives_client_pings(
    node_driver: NodeDriver, start_server: StartServer
) -> None:
    quick = start_server({"REVERB_APP_ACTIVITY_TIMEOUT": "1"})
    await node_driver.connect(quick, "a")
    await node_driver.expect({"type": "state", "client": "a", "current": "connected"})

    # pusher-js pings after activity_timeout seconds of silence and expects a pong in time.
    for _ in range(2):
        await node_driver.expect(
            {
                "type": "message",
                "client": "a",
                "message": {"event": "pusher:pong", "channel": None, "data": None},
            },
            timeout=4.0,
        )
    await node_driver.assert_none(lambda m: m["type"] == "state" and m["client"] == "a", 0.1)
    reply = await node_driver.ok({"cmd": "socket_id", "client": "a"})
    assert reply["state"] == "connected"


async def test_server_path_prefix(node_driver: NodeDriver, start_server: StartServer) -> None:
    prefixed = start_server({"REVERB_SERVER_PATH": "/realtime"})
    assert prefixed.path == "/realtime"
    channel = unique("private-prefixed-")
    await node_driver.connect(prefixed, "a")
    assert (await node_driver.subscribe("a", channel))["subscribed"] is True

    reply = await node_driver.rest(prefixed, "trigger", channel, "hello", {"via": "prefix"})
    assert (reply["status"], reply["body"]) == (200, {})

    event = await node_driver.expect(channel_event("a", channel, "hello"))
    assert event["data"] == {"via": "prefix"}
