"""The drain on SIGTERM, on both WebSocket paths (scripts/test runs this file with
REVURB_FAST_PATH=0 too): readiness 503, handshakes and API requests refused, 4200 to every socket
spread over the window, exit within the grace period. And readiness while Redis is away."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import httpx
import pytest
import websockets

from tests.support.api_client import call
from tests.support.pusher_socket import PusherSocket, dumps, unique
from tests.support.servers import RedisServer, RunningServer, free_port

SOCKETS = 40
WINDOW, GRACE = 1.0, 6.0
GOODBYE = {"event": "pusher:error", "data": dumps({"code": 4200, "message": "Server is shutting down"})}


async def goodbyes(clients: list[PusherSocket]) -> list[float]:
    """Each client gets `pusher:error` 4200 and a 4200 close; when (monotonic) each close came."""
    closed_at = []
    for client in clients:
        assert await client.recv(timeout=GRACE) == GOODBYE
        assert await client.closed_with(timeout=GRACE) == (4200, "Server is shutting down")
        closed_at.append(time.monotonic())
        await client.close()
    return closed_at


async def ready(server: RunningServer) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(timeout=2) as http:
        reply = await http.get(f"{server.http_url}/ready")
    return reply.status_code, reply.json()


async def test_ready_once_started(start_server: Callable[..., RunningServer]) -> None:
    server = start_server({"REVERB_SERVER_PATH": "/ws"})
    assert await ready(server) == (200, {"ready": True, "phase": "ready"})
    async with httpx.AsyncClient(timeout=2) as http:
        assert (await http.get(f"http://127.0.0.1:{server.port}/ready")).status_code == 200


@pytest.mark.redis
async def test_redis_away_does_not_make_a_node_unready(start_server: Callable[..., RunningServer]) -> None:
    dead = free_port()  # nothing listens there
    server = start_server({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": f"redis://127.0.0.1:{dead}/0"})
    status, body = await ready(server)
    assert status == 200
    assert body["ready"] is True and body["health"] == "DEGRADED"
    assert body["scaling"]["connected"] is False  # type: ignore[index]


async def test_sigterm_drains_every_socket_over_the_window(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server({"REVURB_DRAIN_WINDOW": str(WINDOW), "REVURB_GRACE_PERIOD": str(GRACE)})
    channel = unique("drain-")
    clients = [await PusherSocket.connect(server.ws_url(), server.key, server.secret) for _ in range(SOCKETS)]
    for client in clients:
        await client.join(channel)

    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    status, body = await ready(server)
    assert (status, body) == (503, {"ready": False, "phase": "draining"})

    # No new sockets: the handshake is refused (403, the status of an ASGI close before accept).
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url(), compression=None)
    assert refused.value.response.status_code == 403
    # No new API work: 503 without acting, so a proxy may retry it on another node.
    reply = await call(server, "POST", "/events", {"name": "late", "channel": channel, "data": "{}"})
    assert (reply.status_code, reply.json()) == (503, {"error": "Server is shutting down"})

    # Spread over the window, not all in the same instant (the first batch goes at once).
    assert max(await goodbyes(clients)) - began >= WINDOW / 2

    code = await asyncio.to_thread(server.process.wait, GRACE)
    assert time.monotonic() - began < GRACE
    assert code == -signal.SIGTERM
    assert f"draining: {SOCKETS} sockets told to reconnect over {WINDOW:g} s" in server.output()


async def test_a_drain_with_silent_clients_still_exits_within_the_grace_period(
    start_server: Callable[..., RunningServer],
) -> None:
    """Clients that never answer the close frame cannot hold the process past the grace period."""
    server = start_server({"REVURB_DRAIN_WINDOW": "0.5", "REVURB_GRACE_PERIOD": "3"})
    # Raw TCP sockets that complete the handshake and then never read or answer anything.
    writers = []
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: x\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        writers.append(writer)
    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(server.process.wait, 10)
    assert time.monotonic() - began < 3.0 + 0.5
    for writer in writers:
        writer.close()


@pytest.mark.redis
async def test_workers_drain_from_the_signal_spread_over_the_window(
    start_server: Callable[..., RunningServer], redis_server: RedisServer
) -> None:
    """`--workers 2`: each worker runs uvicorn's own server; SIGTERM to the supervisor still drains
    every worker with `RECONNECT_NOW` spread over the window (not uvicorn's 1012 all at once)."""
    window = 1.5
    server = start_server(
        {
            "REVERB_SCALING_ENABLED": "true",
            "REVERB_SCALING_CHANNEL": f"drain-workers-{free_port()}",
            "REDIS_URL": redis_server.url,
            "REVURB_DRAIN_WINDOW": str(window),
            "REVURB_GRACE_PERIOD": str(GRACE),
        },
        ["--workers", "2"],
    )
    clients = [await PusherSocket.connect(server.ws_url(), server.key, server.secret) for _ in range(SOCKETS)]
    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert max(await goodbyes(clients)) - began >= window / 2
    await asyncio.to_thread(server.process.wait, GRACE)
    assert time.monotonic() - began < GRACE
