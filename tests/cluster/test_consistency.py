"""Concurrent joins and leaves spread over three nodes leave exact counts and well-formed member events."""

from __future__ import annotations

import asyncio
import json

from tests.cluster.conftest import StartCluster, eventually
from tests.cluster.test_state import _join
from tests.support.fixture_types import ConnectToNode
from tests.support.http import api
from tests.support.pusher_socket import PusherSocket, unique

SOCKETS = 45
USERS = 12


async def test_concurrent_churn_keeps_cluster_state_exact(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    nodes = cluster(3)
    room, news = unique("presence-room-"), unique("news-")
    observer = await client(nodes[0])
    await _join(observer, room, "observer")
    sockets: list[PusherSocket] = [await client(nodes[i % 3]) for i in range(SOCKETS)]

    async def join(i: int, socket: PusherSocket) -> None:
        await _join(socket, room, f"u{i % USERS}")
        await socket.join(news)

    await asyncio.gather(*(join(i, socket) for i, socket in enumerate(sockets)))
    leaving = sockets[::2]
    await asyncio.gather(*(socket.close() for socket in leaving))
    staying = {f"u{i % USERS}" for i in range(1, SOCKETS, 2)}

    async def settled() -> bool:
        count = (await api(nodes[1], "GET", "/connections")).json()["connections"]
        return bool(count == 1 + SOCKETS - len(leaving))

    await eventually(settled, timeout=10)
    await asyncio.sleep(0.5)  # member events still in flight
    for node in nodes:
        users = (await api(node, "GET", f"/channels/{room}/users")).json()["users"]
        assert sorted(user["id"] for user in users) == sorted({"observer", *staying})
        info = (await api(node, "GET", f"/channels/{room}", params={"info": "subscription_count"})).json()
        assert info == {"occupied": True, "subscription_count": 1 + SOCKETS - len(leaving)}
        info = (await api(node, "GET", f"/channels/{news}", params={"info": "subscription_count"})).json()
        assert info == {"occupied": True, "subscription_count": SOCKETS - len(leaving)}

    # What the observer heard: per user, added and removed alternate, starting with added,
    # and end in the user's final state.
    heard: dict[str, list[str]] = {}
    while True:
        try:
            frame = await observer.recv(timeout=0.5)
        except TimeoutError:
            break
        kind = frame["event"].removeprefix("pusher_internal:member_")
        heard.setdefault(json.loads(frame["data"])["user_id"], []).append(kind)
    assert sorted(heard) == sorted(f"u{i}" for i in range(USERS))
    for user, events in heard.items():
        expected = ["added"] if user in staying else ["added", "removed"]
        assert events == expected, (user, events)
