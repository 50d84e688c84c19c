"""The floor server (`bench/floor_server.py`) speaks the protocol the benchmarks use, exactly: the
upgrade and `connection_established`, subscribe and its ack, signed triggers from the `pusher` SDK
fanned out to subscribers, pings, the close handshake, and refusals of bad signatures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pusher
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from bench.floor_server import server_frame, unmask
from bench.servers import APP_ID, APP_KEY, APP_SECRET, FloorLauncher, Server

TIMEOUT = 5


@pytest.fixture(scope="module")
def floor() -> Iterator[Server]:
    launcher = FloorLauncher()
    server = launcher.start()
    yield server
    server.stop()


def sdk(server: Server, secret: str = APP_SECRET) -> pusher.Pusher:
    return pusher.Pusher(APP_ID, APP_KEY, secret, host="127.0.0.1", port=server.port, ssl=False)


async def subscribed(server: Server, channel: str) -> tuple[ClientConnection, str]:
    """A socket subscribed to `channel`, and its socket id."""
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/app/{APP_KEY}?protocol=7", compression=None)
    established = json.loads(await ws.recv())
    assert established["event"] == "pusher:connection_established"
    data = json.loads(established["data"])
    assert data["activity_timeout"] == 30
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
    ack = json.loads(await ws.recv())
    assert ack == {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}
    return ws, data["socket_id"]


async def test_a_signed_trigger_reaches_every_subscriber_but_the_excluded_one(floor: Server) -> None:
    async with asyncio.timeout(TIMEOUT):
        first, _ = await subscribed(floor, "news")
        second, second_id = await subscribed(floor, "news")
        answer = await asyncio.to_thread(sdk(floor).trigger, ["news"], "tick", {"n": 1}, second_id)
        assert answer == {}
        assert json.loads(await first.recv()) == {"event": "tick", "channel": "news", "data": '{"n": 1}'}
        await asyncio.to_thread(sdk(floor).trigger, "news", "tock", "plain")
        # The excluded socket's next frame is the second event, not the first.
        assert json.loads(await second.recv()) == {"event": "tock", "channel": "news", "data": "plain"}
        assert json.loads(await first.recv()) == {"event": "tock", "channel": "news", "data": "plain"}
        await first.close()
        await second.close()


async def test_pings_are_answered_and_a_close_is_echoed(floor: Server) -> None:
    async with asyncio.timeout(TIMEOUT):
        ws, _ = await subscribed(floor, "pings")
        await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
        assert json.loads(await ws.recv()) == {"event": "pusher:pong", "data": "{}"}
        await (await ws.ping(b"hello"))  # the protocol-level pong came back
        await ws.close()
        assert ws.close_code == 1000


async def test_bad_signatures_and_unknown_paths_are_refused(floor: Server) -> None:
    with pytest.raises(pusher.errors.PusherBadAuth):
        await asyncio.to_thread(sdk(floor, secret="wrong").trigger, "news", "tick", "x")
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        unsigned = await http.post(f"http://127.0.0.1:{floor.port}/apps/{APP_ID}/events", content=b"{}")
        assert (unsigned.status_code, unsigned.json()) == (401, {"error": "invalid signature"})
        missing = await http.get(f"http://127.0.0.1:{floor.port}/nothing")
        assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
        up = await http.get(f"http://127.0.0.1:{floor.port}/up")
        assert (up.status_code, up.json()) == (200, {})


def test_frames_are_built_and_unmasked_at_every_length_encoding() -> None:
    headers = {5: b"\x81\x05", 200: b"\x81\x7e\x00\xc8", 70_000: b"\x81\x7f" + (70_000).to_bytes(8)}
    for length, header in headers.items():
        payload = b"x" * length
        assert server_frame(0x1, payload) == header + payload
    mask = b"\x01\x02\x03\x04"
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(b"hello floor"))
    assert unmask(mask, masked) == b"hello floor"
