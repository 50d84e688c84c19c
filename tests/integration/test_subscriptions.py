"""Subscribing to every kind of channel, with the exact frames Pusher clients expect."""

from typing import Any

from tests.support.fixture_types import Connect, StartServer
from tests.support.http import trigger
from tests.support.pusher_socket import PusherSocket, dumps, unique
from tests.support.servers import RunningServer

AUTH_ERROR = {"type": "AuthError", "error": "The connection is unauthorized.", "status": 401}


def succeeded(channel: str, data: str = "{}") -> dict[str, Any]:
    return {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": data}


def subscription_error(channel: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event": "pusher:subscription_error", "channel": channel, "data": data}


async def assert_alive(client: PusherSocket) -> None:
    await client.send({"event": "pusher:ping", "data": {}})
    assert await client.recv() == {"event": "pusher:pong"}


async def test_public_channel_subscribe_receive_unsubscribe(connect: Connect, server: RunningServer) -> None:
    client = await connect()
    channel = unique("public-")
    await client.subscribe(channel)
    assert await client.recv() == succeeded(channel)
    await trigger(server, channel, "greeting", '{"hello":"world"}')
    assert await client.recv() == {"event": "greeting", "channel": channel, "data": '{"hello":"world"}'}
    await client.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    await assert_alive(client)  # unsubscribe has no reply: the next frame is the pong
    await trigger(server, channel, "greeting", "{}")
    await client.assert_silent()


async def test_subscribe_data_may_be_a_json_string(connect: Connect) -> None:
    client = await connect()
    channel = unique()
    await client.send({"event": "pusher:subscribe", "data": dumps({"channel": channel})})
    assert await client.recv() == succeeded(channel)


async def test_subscribing_twice_answers_twice_and_counts_once(
    connect: Connect, server: RunningServer
) -> None:
    client = await connect()
    channel = unique()
    await client.join(channel)
    assert await client.join(channel) == succeeded(channel)
    await trigger(server, channel, "once", "1")
    assert await client.recv() == {"event": "once", "channel": channel, "data": "1"}
    await client.assert_silent()


async def test_private_channel_needs_valid_auth(connect: Connect, server: RunningServer) -> None:
    client = await connect()
    channel = unique("private-")
    await client.subscribe(channel)
    assert await client.recv() == subscription_error(channel, AUTH_ERROR)
    await client.subscribe(channel, f"{server.key}:{'0' * 64}")
    assert await client.recv() == subscription_error(channel, AUTH_ERROR)
    # Signed for another socket: refused too.
    other_socket_auth = PusherSocket(client.ws, server.key, server.secret)
    other_socket_auth.socket_id = "1.1"
    await client.subscribe(channel, other_socket_auth.auth_for(channel))
    assert await client.recv() == subscription_error(channel, AUTH_ERROR)
    await assert_alive(client)
    assert await client.join(channel) == succeeded(channel)


async def test_private_auth_with_another_apps_key_is_refused(connect: Connect, server: RunningServer) -> None:
    client = await connect()
    channel = unique("private-")
    signature = client.auth_for(channel).split(":", 1)[1]
    await client.subscribe(channel, f"other-key:{signature}")
    assert await client.recv() == subscription_error(channel, AUTH_ERROR)


async def test_private_encrypted_channel_relays_ciphertext_untouched(
    connect: Connect, server: RunningServer
) -> None:
    client = await connect()
    channel = unique("private-encrypted-")
    assert await client.join(channel) == succeeded(channel)
    payload = dumps({"nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"})
    await trigger(server, channel, "secret", payload)
    assert await client.recv() == {"event": "secret", "channel": channel, "data": payload}


async def test_presence_roster_member_added_and_removed(connect: Connect) -> None:
    channel = unique("presence-")
    alice = await connect()
    alice_data = dumps({"user_id": "1", "user_info": {"name": "Alice"}})
    assert await alice.join(channel, alice_data) == succeeded(
        channel, dumps({"presence": {"count": 1, "ids": ["1"], "hash": {"1": {"name": "Alice"}}}})
    )
    bob = await connect()
    bob_data = dumps({"user_id": "2", "user_info": {"name": "Bob"}})
    assert await bob.join(channel, bob_data) == succeeded(
        channel,
        dumps(
            {
                "presence": {
                    "count": 2,
                    "ids": ["1", "2"],
                    "hash": {"1": {"name": "Alice"}, "2": {"name": "Bob"}},
                }
            }
        ),
    )
    assert await alice.recv() == {
        "event": "pusher_internal:member_added",
        "channel": channel,
        "data": dumps({"user_id": "2", "user_info": {"name": "Bob"}}),
    }
    await bob.close()
    assert await alice.recv() == {
        "event": "pusher_internal:member_removed",
        "channel": channel,
        "data": dumps({"user_id": "2"}),
    }


async def test_presence_users_are_deduplicated_across_sockets(connect: Connect) -> None:
    channel = unique("presence-")
    watcher = await connect()
    await watcher.join(channel, dumps({"user_id": "w", "user_info": None}))
    first = await connect()
    data = dumps({"user_id": "7", "user_info": {"n": 1}})
    await first.join(channel, data)
    assert (await watcher.recv())["event"] == "pusher_internal:member_added"
    second = await connect()
    joined = await second.join(channel, data)
    assert joined["data"] == dumps(
        {"presence": {"count": 2, "ids": ["w", "7"], "hash": {"w": None, "7": {"n": 1}}}}
    )
    await watcher.assert_silent()  # the user's second socket is not a new member
    await first.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    await watcher.assert_silent()  # one socket of the user is still there
    await second.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    assert await watcher.recv() == {
        "event": "pusher_internal:member_removed",
        "channel": channel,
        "data": dumps({"user_id": "7"}),
    }


async def test_presence_numeric_user_id_becomes_a_string(connect: Connect) -> None:
    channel = unique("presence-")
    client = await connect()
    joined = await client.join(channel, dumps({"user_id": 42, "user_info": {}}))
    assert joined["data"] == dumps({"presence": {"count": 1, "ids": ["42"], "hash": {"42": {}}}})


async def test_presence_needs_channel_data_signed_as_sent(connect: Connect) -> None:
    channel = unique("presence-")
    client = await connect()
    data = dumps({"user_id": "1", "user_info": {}})
    await client.subscribe(channel, client.auth_for(channel))  # signed without channel_data
    assert await client.recv() == subscription_error(channel, AUTH_ERROR)
    await client.subscribe(channel, client.auth_for(channel, data), data.replace('"1"', '"2"'))
    assert await client.recv() == subscription_error(channel, AUTH_ERROR)
    no_user = dumps({"user_info": {}})
    await client.subscribe(channel, client.auth_for(channel, no_user), no_user)
    assert await client.recv() == subscription_error(
        channel, {"type": "AuthError", "error": "The channel_data has no user_id.", "status": 401}
    )


async def test_presence_member_over_2kb_is_refused(connect: Connect) -> None:
    channel = unique("presence-")
    client = await connect()
    data = dumps({"user_id": "1", "user_info": {"bio": "x" * 2100}})
    await client.subscribe(channel, client.auth_for(channel, data), data)
    assert await client.recv() == subscription_error(
        channel,
        {"type": "LimitReached", "error": "The maximum size for a channel member is 2 KB.", "status": 4301},
    )


async def test_cache_channel_miss_then_replays_the_last_event(
    connect: Connect, server: RunningServer
) -> None:
    channel = unique("cache-")
    first = await connect()
    assert await first.join(channel) == succeeded(channel)
    assert await first.recv() == {"event": "pusher:cache_miss", "channel": channel}
    await trigger(server, channel, "price", '{"v":1}')
    await trigger(server, channel, "price", '{"v":2}')
    assert (await first.recv())["data"] == '{"v":1}'
    assert (await first.recv())["data"] == '{"v":2}'
    late = await connect()
    assert await late.join(channel) == succeeded(channel)
    assert await late.recv() == {"event": "price", "channel": channel, "data": '{"v":2}'}


async def test_private_and_presence_cache_channels_replay_too(
    connect: Connect, server: RunningServer
) -> None:
    for channel in (unique("private-cache-"), unique("private-encrypted-cache-"), unique("presence-cache-")):
        await trigger(server, channel, "last", "x")
        client = await connect()
        data = dumps({"user_id": "1", "user_info": {}}) if channel.startswith("presence-") else None
        await client.join(channel, data)
        assert await client.recv() == {"event": "last", "channel": channel, "data": "x"}


async def test_invalid_and_overlong_channel_names(connect: Connect) -> None:
    client = await connect()
    await client.subscribe("bad channel!")
    assert await client.recv() == subscription_error(
        "bad channel!", {"type": "InvalidChannel", "error": "The channel name is invalid.", "status": 4009}
    )
    long_name = "a" * 201
    await client.subscribe(long_name)
    assert await client.recv() == subscription_error(
        long_name,
        {
            "type": "LimitReached",
            "error": "The channel name is longer than the allowed 200 characters.",
            "status": 4009,
        },
    )
    assert await client.join("a" * 200) == succeeded("a" * 200)


async def test_server_to_user_channel_needs_sign_in(connect: Connect) -> None:
    client = await connect()
    await client.subscribe("#server-to-user-1", "")
    assert await client.recv() == subscription_error("#server-to-user-1", AUTH_ERROR)


async def test_subscription_count_is_sent_when_enabled(start_server: StartServer, connect: Connect) -> None:
    server = start_server({"REVERB_APP_SUBSCRIPTION_COUNT": "true"})
    channel = unique()
    first = await connect(server)
    await first.join(channel)
    count_frame = await first.recv_event("pusher_internal:subscription_count")
    assert count_frame == {
        "event": "pusher_internal:subscription_count",
        "channel": channel,
        "data": dumps({"subscription_count": 1}),
    }
    second = await connect(server)
    await second.join(channel)
    third = await connect(server)
    await third.join(channel)
    # Coalesced: one update carrying the latest count, not one per join.
    assert (await first.recv_event("pusher_internal:subscription_count"))["data"] == dumps(
        {"subscription_count": 3}
    )
    await first.assert_silent(0.3)


async def test_subscription_count_is_off_by_default(connect: Connect) -> None:
    client = await connect()
    await client.join(unique())
    await client.assert_silent(1.3)
