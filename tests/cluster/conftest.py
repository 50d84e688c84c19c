"""Cluster fixtures: several real `revurb start` nodes sharing one real redis-server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest

from tests.support.fixture_types import ConnectToNode, StartServer
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import RedisServer, RunningServer

#: Short heartbeats so liveness tests finish quickly; a dead node is swept within two of them.
HEARTBEAT = 2.0
StartCluster = Callable[..., list[RunningServer]]


@pytest.fixture
def cluster(start_server: StartServer, redis_server: RedisServer) -> Iterator[StartCluster]:
    """Start `nodes` servers with scaling on, sharing a Redis key prefix no other test uses."""
    started: list[RunningServer] = []

    def start(
        nodes: int = 3, env: Mapping[str, str] | None = None, urls: Sequence[str] | None = None
    ) -> list[RunningServer]:
        """`urls`, if given, is each node's own REDIS_URL (a private server, a proxy)."""
        shared = {
            "REVERB_SCALING_ENABLED": "true",
            "REDIS_URL": redis_server.url,
            "REVERB_SCALING_CHANNEL": f"revurb-test-{uuid.uuid4().hex[:8]}",
            "REVERB_SCALING_HEARTBEAT_INTERVAL": str(HEARTBEAT),
            **(env or {}),
        }
        for i in range(nodes):
            own = {"REDIS_URL": urls[i]} if urls is not None else {}
            started.append(start_server(env={**shared, **own}))
        return started[-nodes:]

    yield start
    # Shown by pytest only when the test failed: what each node logged beyond the banner.
    for i, node in enumerate(started):
        notes = [
            line
            for line in node.output().splitlines()
            if " WARNING " in line or " ERROR " in line or "revurb.scaling" in line
        ]
        print(f"node {i} (port {node.port}):", *notes[-20:], sep="\n  ")


@pytest.fixture
async def client() -> AsyncIterator[ConnectToNode]:
    """Open raw Pusher sockets to a given node; all are closed after the test."""
    sockets: list[PusherSocket] = []

    async def open_socket(node: RunningServer, **kwargs: Any) -> PusherSocket:
        socket = await PusherSocket.connect(node.ws_url(), node.key, node.secret, **kwargs)
        sockets.append(socket)
        return socket

    yield open_socket
    for socket in sockets:
        await socket.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, every: float = 0.1) -> None:
    """Poll an async condition until it holds; fail with a timeout otherwise."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(every)


async def up(node: RunningServer) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"{node.http_url}/up")
    body: dict[str, Any] = response.json()
    return body
