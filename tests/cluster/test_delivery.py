"""Every delivery path reaches every node's subscribers, with socket_id exclusion on every node."""

from __future__ import annotations

import json
from typing import Any

from tests.cluster.conftest import StartCluster
from tests.support.fixture_types import ConnectToNode
from tests.support.http import api, trigger
from tests.support.pusher_socket import PusherSocket, dumps, sign, unique
from tests.support.servers import RunningServer


async def _one_per_node(
    cluster: StartCluster, client: ConnectToNode, channel: str
) -> tuple[list[RunningServer], list[PusherSocket]]:
    nodes = cluster(3)
    sockets = [await client(node) for node in nodes]
    for socket in sockets:
        await socket.join(channel)
    return nodes, sockets


async def test_http_event_through_any_node_reaches_every_node(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    channel = unique("news-")
    nodes, sockets = await _one_per_node(cluster, client, channel)
    for i, node in enumerate(nodes):
        await trigger(node, channel, "update", f'{{"n":{i}}}')
        for socket in sockets:
            assert await socket.recv() == {"event": "update", "channel": channel, "data": f'{{"n":{i}}}'}


async def test_socket_id_exclusion_holds_on_every_node(cluster: StartCluster, client: ConnectToNode) -> None:
    channel = unique("news-")
    nodes, sockets = await _one_per_node(cluster, client, channel)
    for excluded in sockets:
        await trigger(nodes[0], channel, "update", "x", socket_id=excluded.socket_id)
        for socket in sockets:
            if socket is excluded:
                await socket.assert_silent()
            else:
                assert await socket.recv() == {"event": "update", "channel": channel, "data": "x"}


async def test_batch_events_reach_every_node(cluster: StartCluster, client: ConnectToNode) -> None:
    first, second = unique("a-"), unique("b-")
    nodes = cluster(3)
    sockets = [await client(node) for node in nodes]
    for socket in sockets:
        await socket.join(first)
        await socket.join(second)
    batch = {
        "batch": [
            {"name": "one", "channel": first, "data": "1"},
            {"name": "two", "channel": second, "data": "2", "socket_id": sockets[2].socket_id},
        ]
    }
    response = await api(nodes[1], "POST", "/batch_events", batch)
    assert response.status_code == 200, response.text
    for i, socket in enumerate(sockets):
        assert await socket.recv() == {"event": "one", "channel": first, "data": "1"}
        if i != 2:
            assert await socket.recv() == {"event": "two", "channel": second, "data": "2"}
        await socket.assert_silent()


async def test_client_events_reach_other_nodes_not_the_sender(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    channel = unique("private-chat-")
    _, sockets = await _one_per_node(cluster, client, channel)
    await sockets[1].send({"event": "client-typing", "channel": channel, "data": {"who": "b"}})
    for i, socket in enumerate(sockets):
        if i == 1:
            await socket.assert_silent()
        else:
            assert await socket.recv() == {"event": "client-typing", "channel": channel, "data": {"who": "b"}}


async def _sign_in(socket: PusherSocket, user_id: str) -> None:
    user_data = json.dumps({"id": user_id})
    auth = f"{socket.key}:{sign(socket.secret, f'{socket.socket_id}::user::{user_data}')}"
    await socket.send({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})
    assert (await socket.recv_event("pusher:signin_success"))["data"] == dumps({"user_data": user_data})


async def _alice_twice_and_bob(
    cluster: StartCluster, client: ConnectToNode
) -> tuple[list[RunningServer], str, PusherSocket, PusherSocket, PusherSocket]:
    """Three nodes; one user signed in on nodes 0 and 2, another user on node 1."""
    nodes = cluster(3)
    user = unique("user-")
    alice_a, alice_c, bob = await client(nodes[0]), await client(nodes[2]), await client(nodes[1])
    for socket in (alice_a, alice_c):
        await _sign_in(socket, user)
    await _sign_in(bob, unique("user-"))
    return nodes, user, alice_a, alice_c, bob


async def test_server_to_user_events_reach_the_user_on_every_node(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    nodes, user, alice_a, alice_c, bob = await _alice_twice_and_bob(cluster, client)
    channel = f"#server-to-user-{user}"
    response = await api(nodes[1], "POST", "/events", {"name": "hello", "channel": channel, "data": "hi"})
    assert response.status_code == 200, response.text
    for socket in (alice_a, alice_c):
        assert await socket.recv() == {"event": "hello", "channel": channel, "data": "hi"}
    await bob.assert_silent()


async def test_terminate_closes_the_users_sockets_on_every_node(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    nodes, user, alice_a, alice_c, bob = await _alice_twice_and_bob(cluster, client)
    response = await api(nodes[1], "POST", f"/users/{user}/terminate_connections", {})
    assert response.status_code == 200, response.text
    for socket in (alice_a, alice_c):
        error = await socket.recv_event("pusher:error")
        assert json.loads(error["data"])["code"] == 4009
        assert (await socket.closed_with())[0] == 4009
    await bob.send({"event": "pusher:ping"})
    assert await bob.recv() == {"event": "pusher:pong"}


async def test_cache_channel_payload_is_shared(cluster: StartCluster, client: ConnectToNode) -> None:
    nodes = cluster(3)
    channel = unique("cache-prices-")
    await trigger(nodes[0], channel, "price", '{"p":1}')
    for node in nodes:
        socket = await client(node)
        await socket.join(channel)
        assert await socket.recv() == {"event": "price", "channel": channel, "data": '{"p":1}'}
    for node in nodes:
        response = await api(node, "GET", f"/channels/{channel}", params={"info": "cache,subscription_count"})
        body = response.json()
        assert body["occupied"] is True
        assert body["subscription_count"] == 3
        assert body["cache"]["event"] == "price" and body["cache"]["data"] == '{"p":1}'
        assert 1790 <= body["cache"]["ttl"] <= 1800


async def test_max_connections_holds_cluster_wide(cluster: StartCluster, client: ConnectToNode) -> None:
    nodes = cluster(3, env={"REVERB_APP_MAX_CONNECTIONS": "2"})
    await client(nodes[0])
    await client(nodes[1])
    refused = await client(nodes[2], handshake=False)
    error = await refused.recv()
    assert error == {
        "event": "pusher:error",
        "data": dumps({"code": 4004, "message": "Application is over connection quota"}),
    }
    assert (await refused.closed_with())[0] == 4004
    for node in nodes:
        assert (await api(node, "GET", "/connections")).json() == {"connections": 2}


async def test_subscription_count_updates_reach_every_node(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    a, b = cluster(
        2, env={"REVERB_APP_SUBSCRIPTION_COUNT": "true", "REVERB_APP_SUBSCRIPTION_COUNT_INTERVAL": "0.1"}
    )
    channel = unique("news-")

    def count(n: int) -> dict[str, Any]:
        return {
            "event": "pusher_internal:subscription_count",
            "channel": channel,
            "data": dumps({"subscription_count": n}),
        }

    first = await client(a)
    await first.join(channel)
    assert await first.recv() == count(1)
    second = await client(b)
    await second.join(channel)
    assert await first.recv() == count(2)
    assert await second.recv() == count(2)
    await second.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    assert await first.recv() == count(1)
    await second.assert_silent()


async def test_clusters_with_different_prefixes_share_one_redis_apart(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    first, second = cluster(2), cluster(2)  # each call picks its own REVERB_SCALING_CHANNEL
    channel = unique("news-")
    mine, theirs = await client(first[1]), await client(second[1])
    await mine.join(channel)
    await theirs.join(channel)
    await trigger(first[0], channel, "update", "x")
    assert await mine.recv() == {"event": "update", "channel": channel, "data": "x"}
    await theirs.assert_silent(0.5)
    for node in (*first, *second):
        assert (await api(node, "GET", "/connections")).json() == {"connections": 1}
        assert (await api(node, "GET", "/channels", params={"info": "subscription_count"})).json() == {
            "channels": {channel: {"subscription_count": 1}}
        }
