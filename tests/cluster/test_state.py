"""Cluster-wide truth: presence rosters, member events once per user, and exact HTTP answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.cluster.conftest import StartCluster, eventually
from tests.support.fixture_types import ConnectToNode
from tests.support.http import api, trigger
from tests.support.pusher_socket import PusherSocket, dumps, unique
from tests.support.servers import RunningServer


def _member(user_id: str) -> str:
    return dumps({"user_id": user_id, "user_info": {"name": user_id.upper()}})


async def _join(socket: PusherSocket, channel: str, user_id: str) -> dict[str, Any]:
    succeeded = await socket.join(channel, _member(user_id))
    presence: dict[str, Any] = json.loads(succeeded["data"])["presence"]
    return presence


async def _sync(socket: PusherSocket, *origins: RunningServer) -> None:
    """Wait until the socket's node has handled what each origin node published so far (a canary
    sent through each origin arrives after them), so the frames a test reads next are its own."""
    channel = unique("sync-")
    await socket.join(channel)
    for origin in origins:
        await trigger(origin, channel, "sync", "{}")
        assert await socket.recv() == {"event": "sync", "channel": channel, "data": "{}"}


def _roster(*users: str) -> dict[str, Any]:
    return {user: {"name": user.upper()} for user in users}


async def _all_silent(*sockets: PusherSocket) -> None:
    for socket in sockets:
        await socket.assert_silent(0.2)


def _added(channel: str, user_id: str) -> dict[str, Any]:
    data = dumps({"user_id": user_id, "user_info": {"name": user_id.upper()}})
    return {"event": "pusher_internal:member_added", "channel": channel, "data": data}


def _removed(channel: str, user_id: str) -> dict[str, Any]:
    return {
        "event": "pusher_internal:member_removed",
        "channel": channel,
        "data": dumps({"user_id": user_id}),
    }


async def test_presence_roster_and_member_events_are_cluster_wide(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    a, b, c = cluster(3)
    channel = unique("presence-room-")
    a1, b1, c1, c2 = await client(a), await client(b), await client(c), await client(c)

    assert await _join(a1, channel, "u1") == {"count": 1, "ids": ["u1"], "hash": _roster("u1")}
    await _sync(b1, a)
    here = await _join(b1, channel, "u2")
    assert here["count"] == 2 and sorted(here["ids"]) == ["u1", "u2"] and here["hash"] == _roster("u1", "u2")
    assert await a1.recv() == _added(channel, "u2")
    await _all_silent(a1, b1)

    # u1's second socket, on another node: the roster does not change and nobody hears of it.
    await _sync(c1, a, b)
    here = await _join(c1, channel, "u1")
    assert here["count"] == 2 and here["hash"] == _roster("u1", "u2")
    await _all_silent(a1, b1, c1)

    here = await _join(c2, channel, "u3")
    assert here["count"] == 3 and here["hash"] == _roster("u1", "u2", "u3")
    for socket in (a1, b1, c1):
        assert await socket.recv() == _added(channel, "u3")
    await _all_silent(a1, b1, c1, c2)

    for node in (a, b, c):
        users = (await api(node, "GET", f"/channels/{channel}/users")).json()["users"]
        assert sorted(user["id"] for user in users) == ["u1", "u2", "u3"]
        info = (
            await api(node, "GET", f"/channels/{channel}", params={"info": "user_count,subscription_count"})
        ).json()
        assert info == {"occupied": True, "user_count": 3, "subscription_count": 4}

    # One of u1's two sockets leaves: u1 is still here.
    await c1.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    await _all_silent(a1, b1, c1, c2)
    # The last one goes: everyone left hears it exactly once.
    await a1.close()
    for socket in (b1, c2):
        assert await socket.recv() == _removed(channel, "u1")
    await _all_silent(b1, c1, c2)
    for node in (a, b, c):
        users = (await api(node, "GET", f"/channels/{channel}/users")).json()["users"]
        assert sorted(user["id"] for user in users) == ["u2", "u3"]


async def test_http_queries_are_identical_and_exact_from_every_node(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    nodes = cluster(3)
    public, private, presence = unique("news-"), unique("private-x-"), unique("presence-y-")
    sockets = [await client(node) for node in nodes for _ in range(2)]  # two sockets per node
    for i, socket in enumerate(sockets):
        await socket.join(public)
        if i % 2 == 0:
            await socket.join(private)
        if i < 3:
            await socket.join(presence, _member(f"user{i % 2}"))

    expected_channels = {
        public: {"subscription_count": 6},
        private: {"subscription_count": 3},
        presence: {"subscription_count": 3},
    }
    for node in nodes:
        assert (await api(node, "GET", "/connections")).json() == {"connections": 6}
        listed = (await api(node, "GET", "/channels", params={"info": "subscription_count"})).json()
        assert listed == {"channels": dict(sorted(expected_channels.items()))}
        present = (
            await api(
                node, "GET", "/channels", params={"filter_by_prefix": "presence-", "info": "user_count"}
            )
        ).json()
        assert present == {"channels": {presence: {"user_count": 2}}}
        assert (await api(node, "GET", f"/channels/{private}")).json() == {"occupied": True}
        users = (await api(node, "GET", f"/channels/{presence}/users")).json()["users"]
        assert sorted(user["id"] for user in users) == ["user0", "user1"]

    for socket in sockets[:4]:
        await socket.close()

    async def closed() -> bool:
        return bool((await api(nodes[0], "GET", "/connections")).json() == {"connections": 2})

    await eventually(closed, timeout=5)
    for node in nodes:
        assert (await api(node, "GET", "/connections")).json() == {"connections": 2}
        listed = (await api(node, "GET", "/channels", params={"info": "subscription_count"})).json()
        assert listed == {"channels": {public: {"subscription_count": 2}, private: {"subscription_count": 1}}}
        assert (await api(node, "GET", f"/channels/{presence}")).json() == {"occupied": False}


async def test_a_join_right_after_another_nodes_join_gets_no_stale_member_added(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    """The roster a subscriber gets already lists a user who joined on another node an instant
    before; the membership change that follows on the bus is not news to it, so it is not sent."""
    a, b = cluster(2)
    for round_ in range(15):
        channel = unique("presence-race-")
        first, second = await client(a), await client(b)
        joined = asyncio.gather(_join(first, channel, f"x{round_}"), _join(second, channel, f"y{round_}"))
        here_first, here_second = await joined
        for socket, here, other in ((first, here_first, f"y{round_}"), (second, here_second, f"x{round_}")):
            if other in here["ids"]:
                await socket.assert_silent(0.15)  # it was in the roster: no member_added after
            else:
                assert await socket.recv() == _added(channel, other)
        await first.close()
        await second.close()
