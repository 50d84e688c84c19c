"""User authentication (`pusher:signin`), server-to-user events and terminating a user's sockets."""

from tests.support.fixture_types import Connect
from tests.support.http import api, trigger
from tests.support.pusher_socket import PusherSocket, dumps, sign
from tests.support.servers import RunningServer


async def sign_in(client: PusherSocket, user_data: str, secret: str | None = None) -> None:
    auth = f"{client.key}:{sign(secret or client.secret, f'{client.socket_id}::user::{user_data}')}"
    await client.send({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})


async def test_signin_success_and_server_to_user_delivery(connect: Connect, server: RunningServer) -> None:
    client = await connect()
    user_data = dumps({"id": "u-1", "name": "Ann"})
    await sign_in(client, user_data)
    assert await client.recv() == {
        "event": "pusher:signin_success",
        "data": dumps({"user_data": user_data}),
    }
    # pusher-js then subscribes to its user channel with an empty auth.
    await client.subscribe("#server-to-user-u-1", "")
    assert await client.recv() == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": "#server-to-user-u-1",
        "data": "{}",
    }
    await trigger(server, "#server-to-user-u-1", "notice", '{"n":1}')
    assert await client.recv() == {"event": "notice", "channel": "#server-to-user-u-1", "data": '{"n":1}'}
    await client.assert_silent()  # delivered once, though signed in and subscribed


async def test_signin_with_a_bad_signature_is_4009_and_closes(connect: Connect) -> None:
    client = await connect()
    await sign_in(client, dumps({"id": "1"}), secret="wrong")
    assert await client.recv() == {
        "event": "pusher:error",
        "data": dumps({"code": 4009, "message": "Connection is unauthorized"}),
    }
    assert await client.closed_with() == (4009, "Connection is unauthorized")


async def test_signin_without_a_string_id_is_4009_and_closes(connect: Connect) -> None:
    for user_data in (dumps({"id": 5}), dumps({"name": "x"}), dumps({"id": ""}), "not json"):
        client = await connect()
        await sign_in(client, user_data)
        assert await client.recv() == {
            "event": "pusher:error",
            "data": dumps({"code": 4009, "message": "The user data must be a JSON object with a string id"}),
        }
        assert (await client.closed_with())[0] == 4009


async def test_terminate_connections_closes_every_socket_of_the_user(
    connect: Connect, server: RunningServer
) -> None:
    first, second, bystander = await connect(), await connect(), await connect()
    for client in (first, second):
        await sign_in(client, dumps({"id": "doomed"}))
        await client.recv_event("pusher:signin_success")
    await sign_in(bystander, dumps({"id": "other"}))
    await bystander.recv_event("pusher:signin_success")
    response = await api(server, "POST", "/users/doomed/terminate_connections", {})
    assert (response.status_code, response.json()) == (200, {})
    for client in (first, second):
        assert await client.recv() == {
            "event": "pusher:error",
            "data": dumps({"code": 4009, "message": "Connection terminated by the application"}),
        }
        assert await client.closed_with() == (4009, "Connection terminated by the application")
    await bystander.send({"event": "pusher:ping"})
    assert await bystander.recv() == {"event": "pusher:pong"}
