"""Client events: who may send them, where, how often, and what the others receive."""

from typing import Any

from tests.support.fixture_types import Connect, StartServer
from tests.support.pusher_socket import PusherSocket, dumps, unique
from tests.support.servers import RunningServer


def error(code: int, message: str) -> dict[str, Any]:
    return {"event": "pusher:error", "data": dumps({"code": code, "message": message})}


async def pair(
    connect: Connect, channel: str, server: RunningServer | None = None
) -> tuple[PusherSocket, PusherSocket]:
    sender, receiver = await connect(server), await connect(server)
    for index, client in enumerate((sender, receiver)):
        data = dumps({"user_id": f"u{index}", "user_info": {}}) if channel.startswith("presence-") else None
        await client.join(channel, data)
    if channel.startswith("presence-"):
        await sender.recv_event("pusher_internal:member_added")
    return sender, receiver


async def test_private_client_event_reaches_others_not_the_sender(connect: Connect) -> None:
    channel = unique("private-")
    sender, receiver = await pair(connect, channel)
    await sender.send({"event": "client-typing", "channel": channel, "data": {"who": "me"}})
    assert await receiver.recv() == {"event": "client-typing", "channel": channel, "data": {"who": "me"}}
    await sender.assert_silent()


async def test_presence_client_event_carries_the_senders_user_id(connect: Connect) -> None:
    channel = unique("presence-")
    sender, receiver = await pair(connect, channel)
    await sender.send({"event": "client-wave", "channel": channel, "data": {"x": 1}})
    assert await receiver.recv() == {
        "event": "client-wave",
        "channel": channel,
        "data": {"x": 1},
        "user_id": "u0",
    }


async def test_client_event_on_public_or_encrypted_channel_is_rejected(connect: Connect) -> None:
    for channel in (unique("public-"), unique("private-encrypted-")):
        sender, receiver = await pair(connect, channel)
        await sender.send({"event": "client-x", "channel": channel, "data": {}})
        assert await sender.recv() == error(
            4009, "Client event rejected: only supported on private and presence channels"
        )
        await receiver.assert_silent()


async def test_client_event_from_a_non_member_is_rejected(connect: Connect) -> None:
    channel = unique("private-")
    _, receiver = await pair(connect, channel)
    outsider = await connect()
    await outsider.send({"event": "client-x", "channel": channel, "data": {}})
    assert await outsider.recv() == error(4009, "Client event rejected: not subscribed to the channel")
    await receiver.assert_silent()
    await outsider.send({"event": "pusher:ping"})
    assert await outsider.recv() == {"event": "pusher:pong"}


async def test_accept_client_events_from_none(start_server: StartServer, connect: Connect) -> None:
    server = start_server({"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "none"})
    channel = unique("private-")
    sender, receiver = await pair(connect, channel, server)
    await sender.send({"event": "client-x", "channel": channel, "data": {}})
    assert await sender.recv() == error(4301, "Client events are disabled for this application")
    await receiver.assert_silent()


async def test_accept_client_events_from_all(start_server: StartServer, connect: Connect) -> None:
    server = start_server({"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "all"})
    channel = unique("private-")
    _, receiver = await pair(connect, channel, server)
    outsider = await connect(server)
    await outsider.send({"event": "client-x", "channel": channel, "data": {"from": "outside"}})
    assert await receiver.recv() == {"event": "client-x", "channel": channel, "data": {"from": "outside"}}


async def test_client_events_are_rate_limited_per_socket(connect: Connect) -> None:
    channel = unique("private-")
    sender, receiver = await pair(connect, channel)
    for index in range(11):
        await sender.send({"event": "client-n", "channel": channel, "data": {"i": index}})
    for index in range(10):
        assert (await receiver.recv())["data"] == {"i": index}
    assert await sender.recv() == error(4301, "Client event rate limit reached")
    await receiver.assert_silent()
