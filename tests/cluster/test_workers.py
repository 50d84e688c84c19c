"""`revurb start --workers 2`: worker processes on one port share state and events through Redis."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.cluster.test_state import _member
from tests.support.fixture_types import ConnectToNode, StartServer
from tests.support.http import api, trigger
from tests.support.pusher_socket import PusherSocket, unique
from tests.support.servers import RedisServer


async def _member_added_until_silent(socket: PusherSocket) -> list[dict[str, Any]]:
    """The data of every frame until 0.3 s pass in silence; each must be `member_added`."""
    added: list[dict[str, Any]] = []
    while True:
        try:
            frame = await socket.recv(timeout=0.3)
        except TimeoutError:
            return added
        assert frame["event"] == "pusher_internal:member_added", frame
        added.append(json.loads(frame["data"]))


async def test_workers_on_one_port_behave_as_one_server(
    start_server: StartServer, client: ConnectToNode, redis_server: RedisServer
) -> None:
    env = {
        "REVERB_SCALING_ENABLED": "true",
        "REDIS_URL": redis_server.url,
        "REVERB_SCALING_CHANNEL": f"revurb-test-{uuid.uuid4().hex[:8]}",
        "REVERB_SCALING_HEARTBEAT_INTERVAL": "2",
    }
    server = start_server(env=env, args=["--workers", "2"])
    nodes = set()
    for _ in range(40):  # each request on a new connection; the kernel hands it to either worker
        async with httpx.AsyncClient(timeout=5) as http:
            nodes.add((await http.get(f"{server.http_url}/up")).json()["scaling"]["node"])
        if len(nodes) == 2:
            break
    assert len(nodes) == 2, "both workers should answer on the shared port"

    channel = unique("presence-room-")
    sockets = [await client(server) for _ in range(8)]
    for i, socket in enumerate(sockets):
        here = json.loads((await socket.join(channel, _member(f"u{i}")))["data"])["presence"]
        assert here["count"] == i + 1
    for i, socket in enumerate(sockets):
        added = await _member_added_until_silent(socket)
        earlier = {f"u{j}" for j in range(i)}
        ids = [data["user_id"] for data in added]
        # Every user who joined later is announced exactly once, in join order, and nobody who
        # was already in this socket's roster (whichever worker it joined through).
        assert ids == [f"u{j}" for j in range(i + 1, len(sockets))], (ids, earlier)
        assert all(data["user_info"] == {"name": data["user_id"].upper()} for data in added), added
    await trigger(server, channel, "tick", "1")
    for socket in sockets:
        assert await socket.recv() == {"event": "tick", "channel": channel, "data": "1"}
    for _ in range(4):
        assert (await api(server, "GET", "/connections")).json() == {"connections": 8}
        users = (await api(server, "GET", f"/channels/{channel}/users")).json()["users"]
        assert sorted(user["id"] for user in users) == [f"u{i}" for i in range(8)]
