"""Faults: a node killed with SIGKILL, and redis-server stopped while events keep coming."""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from pathlib import Path

from tests.cluster.conftest import StartCluster, eventually, up
from tests.cluster.test_state import _join, _removed, _sync
from tests.support.fixture_types import ConnectToNode, StartServer
from tests.support.http import api, trigger
from tests.support.pusher_socket import unique
from tests.support.servers import RedisServer, RunningServer, free_port

KILL_HEARTBEAT = 2.0


async def _user_ids(node: RunningServer, channel: str) -> list[str]:
    users = (await api(node, "GET", f"/channels/{channel}/users")).json()["users"]
    return sorted(user["id"] for user in users)


async def test_killed_node_leaves_every_roster_within_two_heartbeats(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    a, b, c = cluster(3, env={"REVERB_SCALING_HEARTBEAT_INTERVAL": str(KILL_HEARTBEAT)})
    channel = unique("presence-room-")
    a1, a2, b1, c1 = await client(a), await client(a), await client(b), await client(c)
    await _join(a1, channel, "u1")
    await _join(a2, channel, "u2")
    await _sync(b1, a)
    await _join(b1, channel, "u2")
    await _sync(c1, a, b)
    await _join(c1, channel, "u3")
    assert (await b1.recv())["event"] == "pusher_internal:member_added"  # u3; u2 was already here
    await b1.assert_silent(0.2)

    killed_at = time.monotonic()
    a.stop(signal.SIGKILL)
    for socket in (b1, c1):
        assert await socket.recv(timeout=2 * KILL_HEARTBEAT + 3) == _removed(channel, "u1")
    elapsed = time.monotonic() - killed_at
    # Two heartbeat intervals, plus scheduling slack on a shared machine.
    assert elapsed <= 2 * KILL_HEARTBEAT + 0.5, elapsed
    # u2 still has a socket on b: nobody hears that u2 left.
    await b1.assert_silent(0.5)
    await c1.assert_silent(0.1)
    for node in (b, c):
        assert await _user_ids(node, channel) == ["u2", "u3"]
        assert (await api(node, "GET", "/connections")).json() == {"connections": 2}
        info = (await api(node, "GET", f"/channels/{channel}", params={"info": "subscription_count"})).json()
        assert info == {"occupied": True, "subscription_count": 2}


async def test_redis_outage_delays_but_never_loses_events(
    cluster: StartCluster, client: ConnectToNode, redis_server: RedisServer
) -> None:
    nodes = cluster(3)
    a, b, c = nodes
    news, room = unique("news-"), unique("presence-room-")
    listeners = [await client(node) for node in nodes]
    for socket in listeners:
        await socket.join(news)
    u1, u2 = await client(a), await client(b)
    await _join(u1, room, "u1")
    await _join(u2, room, "u2")
    await u1.recv_event("pusher_internal:member_added")

    redis_server.stop()
    try:
        for node in nodes:
            await eventually(functools.partial(_degraded, node), timeout=5)
        sent = [f'{{"n":{i}}}' for i in range(20)]
        for data in sent:
            await trigger(a, news, "tick", data)
            await asyncio.sleep(0.1)
        # The node's own subscribers are served throughout.
        for data in sent:
            assert await listeners[0].recv() == {"event": "tick", "channel": news, "data": data}
        await listeners[1].assert_silent(0.5)
    finally:
        redis_server.start()

    for socket in listeners[1:]:
        for data in sent:
            assert await socket.recv(timeout=10) == {"event": "tick", "channel": news, "data": data}
    for socket in listeners:
        await socket.assert_silent(0.3)
    assert all(node.alive() for node in nodes)
    for node in nodes:
        await eventually(functools.partial(_healthy, node), timeout=5)
        assert await _user_ids(node, room) == ["u1", "u2"]
        assert (await api(node, "GET", "/connections")).json() == {"connections": 5}
        info = (await api(node, "GET", f"/channels/{news}", params={"info": "subscription_count"})).json()
        assert info == {"occupied": True, "subscription_count": 3}
    late = await client(c)
    here = await _join(late, room, "u3")
    assert here["count"] == 3 and sorted(here["ids"]) == ["u1", "u2", "u3"]


async def _degraded(node: RunningServer) -> bool:
    return (await up(node)).get("health") == "DEGRADED"


async def _healthy(node: RunningServer) -> bool:
    return (await up(node)).get("health") == "OK"


async def test_a_node_starts_without_redis_and_joins_when_it_appears(
    start_server: StartServer, client: ConnectToNode, tmp_path: Path
) -> None:
    redis = RedisServer(port=free_port(), directory=str(tmp_path))
    env = {
        "REVERB_SCALING_ENABLED": "true",
        "REDIS_URL": redis.url,
        "REVERB_SCALING_CHANNEL": unique("revurb-test-"),
        "REVERB_SCALING_HEARTBEAT_INTERVAL": "1",
    }
    node = start_server(env=env)
    try:
        assert (await up(node))["health"] == "DEGRADED"
        channel = unique("presence-room-")
        socket = await client(node)
        assert (await _join(socket, channel, "u1"))["ids"] == ["u1"]  # served alone meanwhile
        redis.start()
        await eventually(functools.partial(_healthy, node), timeout=10)
        other = start_server(env=env)
        assert await _user_ids(other, channel) == ["u1"]
        assert (await api(other, "GET", "/connections")).json() == {"connections": 1}
        assert node.alive()
    finally:
        redis.stop()
