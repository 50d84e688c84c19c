"""Liveness: server pings quiet sockets, closes those that never answer, keeps those that do."""

from tests.support.fixture_types import Connect, StartServer
from tests.support.pusher_socket import dumps, unique


async def test_quiet_socket_is_pinged_then_closed_with_4201(
    start_server: StartServer, connect: Connect
) -> None:
    server = start_server({"REVERB_APP_PING_INTERVAL": "0.5"})
    never_subscribed = await connect(server)
    subscribed = await connect(server)
    await subscribed.join(unique())
    for client in (never_subscribed, subscribed):
        assert await client.recv(timeout=3) == {"event": "pusher:ping"}
        assert await client.recv(timeout=3) == {
            "event": "pusher:error",
            "data": dumps({"code": 4201, "message": "Pong reply not received in time"}),
        }
        assert await client.closed_with(timeout=3) == (4201, "Pong reply not received in time")


async def test_socket_that_answers_pings_stays_open(start_server: StartServer, connect: Connect) -> None:
    server = start_server({"REVERB_APP_PING_INTERVAL": "0.5"})
    client = await connect(server)
    for _ in range(3):
        assert await client.recv(timeout=3) == {"event": "pusher:ping"}
        await client.send({"event": "pusher:pong", "data": {}})
    await client.send({"event": "pusher:ping"})
    assert await client.recv_event("pusher:pong", timeout=3) == {"event": "pusher:pong"}


async def test_activity_timeout_is_announced(start_server: StartServer) -> None:
    from tests.support.pusher_socket import PusherSocket

    server = start_server({"REVERB_APP_ACTIVITY_TIMEOUT": "12"})
    client = await PusherSocket.connect(server.ws_url(), server.key, server.secret, handshake=False)
    frame = await client.recv()
    assert __import__("json").loads(frame["data"])["activity_timeout"] == 12
    await client.close()


async def test_shutdown_tells_clients_to_reconnect(start_server: StartServer, connect: Connect) -> None:
    server = start_server()
    client = await connect(server)
    await client.join(unique())
    server.stop()
    assert await client.recv() == {
        "event": "pusher:error",
        "data": dumps({"code": 4200, "message": "Server is shutting down"}),
    }
    assert await client.closed_with() == (4200, "Server is shutting down")
