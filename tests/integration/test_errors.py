"""Malformed input: exact `pusher:error` frames, the socket stays usable, nobody else is affected."""

import asyncio
import os

import websockets

from tests.support.fixture_types import Connect, StartServer
from tests.support.http import trigger
from tests.support.pusher_socket import PusherSocket, dumps, unique
from tests.support.servers import RunningServer

INVALID = {"event": "pusher:error", "data": dumps({"code": 4200, "message": "Invalid message format"})}

MALFORMED: list[str | bytes] = [
    "not json",
    "{",
    "[]",
    "42",
    '"pusher:ping"',
    "null",
    "{}",
    '{"event": 5}',
    '{"data": {}}',
    '{"event": "pusher:unknown"}',
    '{"event": "pusher_internal:subscription_succeeded", "channel": "x"}',
    '{"event": "something-else"}',
    '{"event": "pusher:subscribe"}',
    '{"event": "pusher:subscribe", "data": "not an object"}',
    '{"event": "pusher:subscribe", "data": {"channel": 5}}',
    '{"event": "pusher:subscribe", "data": [1, 2]}',
    '{"event": "pusher:unsubscribe", "data": {}}',
    '{"event": "client-x", "channel": 7, "data": {}}',
    '{"event": "client-x", "data": {}}',
    b"\x00\xff\xfe binary",
]


async def test_each_malformed_frame_is_4200_and_the_socket_stays_open(connect: Connect) -> None:
    client = await connect()
    for frame in MALFORMED:
        await client.send(frame)
        assert await client.recv() == INVALID, frame
    await client.send({"event": "pusher:ping", "data": {}})
    assert await client.recv() == {"event": "pusher:pong"}
    channel = unique()
    assert (await client.join(channel))["channel"] == channel


async def test_garbage_never_disturbs_other_sockets(connect: Connect, server: RunningServer) -> None:
    channel = unique()
    listener = await connect()
    await listener.join(channel)
    vandals = [await connect() for _ in range(3)]

    async def vandalise(client: PusherSocket, seed: int) -> None:
        rng = __import__("random").Random(seed)
        for _ in range(50):
            choice = rng.randrange(4)
            if choice == 0:
                await client.send(os.urandom(rng.randrange(1, 512)))
            elif choice == 1:
                await client.send(rng.choice(MALFORMED))
            elif choice == 2:
                await client.send(
                    '{"event":"pusher:subscribe","data":{"channel":"private-x","auth":"k:bad"}}'
                )
            else:
                await client.send('{"event":"client-x","channel":"' + channel + '","data":{}}')

    async def publish() -> None:
        for index in range(20):
            await trigger(server, channel, "tick", str(index))

    await asyncio.gather(publish(), *(vandalise(client, seed) for seed, client in enumerate(vandals)))
    for index in range(20):
        assert await listener.recv() == {"event": "tick", "channel": channel, "data": str(index)}
    await listener.assert_silent()
    for client in vandals:  # each vandal is still connected and answered
        await client.send({"event": "pusher:ping"})
        await client.recv_event("pusher:pong")


async def test_frame_over_max_message_size_closes_with_1009(
    start_server: StartServer, connect: Connect
) -> None:
    server = start_server({"REVERB_APP_MAX_MESSAGE_SIZE": "1000"})
    bystander = await connect(server)
    channel = unique()
    await bystander.join(channel)
    client = await connect(server)
    await client.send({"event": "client-x", "channel": "private-y", "data": {"pad": "x" * 1000}})
    assert (await client.closed_with())[0] == 1009
    await trigger(server, channel, "still", "here")
    assert await bystander.recv() == {"event": "still", "channel": channel, "data": "here"}


async def test_huge_frame_on_default_settings_closes_with_1009(connect: Connect) -> None:
    client = await connect(max_size=None)
    try:
        await client.send("x" * (2 * 1024 * 1024))
    except websockets.ConnectionClosed as closed:
        # The server may refuse the frame while the client is still writing it.
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1009
        return
    assert (await client.closed_with())[0] == 1009


async def test_origin_not_allowed_is_4009_and_closes(start_server: StartServer, connect: Connect) -> None:
    server = start_server({"REVERB_ALLOWED_ORIGINS": "laravel.com,*.example.com"})
    for origin in ("https://laravel.com", "https://app.example.com", "http://deep.app.example.com:8000"):
        allowed = await connect(server, origin=origin)
        assert allowed.socket_id
    for foreign in ("https://evil.com", "https://example.com.evil.com", None):
        refused = await connect(server, handshake=False, origin=foreign)
        assert await refused.recv() == {
            "event": "pusher:error",
            "data": dumps({"code": 4009, "message": "Origin not allowed"}),
        }
        assert await refused.closed_with() == (4009, "Origin not allowed")


async def test_over_connection_quota_is_4004_and_closes(start_server: StartServer, connect: Connect) -> None:
    server = start_server({"REVERB_APP_MAX_CONNECTIONS": "2"})
    first = await connect(server)
    await connect(server)
    refused = await connect(server, handshake=False)
    assert await refused.recv() == {
        "event": "pusher:error",
        "data": dumps({"code": 4004, "message": "Application is over connection quota"}),
    }
    assert await refused.closed_with() == (4004, "Application is over connection quota")
    await first.close()
    await asyncio.sleep(0.2)
    assert (await connect(server)).socket_id  # a freed slot can be used again


async def test_protocol_version_checks(connect: Connect) -> None:
    cases = [
        ("protocol=abc", 4006, "Invalid version string format"),
        ("protocol=99", 4007, "Unsupported protocol version"),
        ("protocol=4", 4007, "Unsupported protocol version"),
    ]
    for query, code, message in cases:
        client = await connect(query=query, handshake=False)
        assert await client.recv() == {
            "event": "pusher:error",
            "data": dumps({"code": code, "message": message}),
        }
        assert await client.closed_with() == (code, message)
    for query in ("", "protocol=7", "protocol=5&client=js"):
        assert (await connect(query=query)).socket_id
