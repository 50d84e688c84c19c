"""Hostile input on a real `revurb start`, from raw RFC 6455 and HTTP/1.1 clients (issue 13).

Each attack runs while a bystander (an ordinary subscriber of another channel, and a publisher
triggering to it every 20 ms) keeps being served; each test asserts the exact close code or status
the attacker gets. The suite runs these on the fast path and again with REVURB_FAST_PATH=0; where
uvicorn owns a limit on the plain ASGI path, the test says so and runs on the fast path only
(docs/security.md lists those limits).
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api_client import pusher_query
from tests.support.bystander import Bystander
from tests.support.fake_transport import client_frame, close_payload
from tests.support.pusher_socket import dumps
from tests.support.raw_socket import RawSocket, handshake
from tests.support.servers import RunningServer, start_revurb

TEXT, CONTINUATION, CLOSE = 0x1, 0x0, 0x8


def plain_asgi() -> bool:
    return os.environ.get("REVURB_FAST_PATH", "1").lower() in ("0", "false", "no", "off")


def fast_path_only(what: str) -> None:
    if plain_asgi():
        pytest.skip(f"on the plain ASGI path uvicorn owns {what} (docs/security.md)")


# Close codes


CLOSE_CASES = [
    (b"\x03", 1002),
    (close_payload(999), 1002),
    (close_payload(1004), 1002),
    (close_payload(1005), 1002),
    (close_payload(1006), 1002),
    (close_payload(1015), 1002),
    (close_payload(2999), 1002),
    (close_payload(5000), 1002),
    (close_payload(1000, b"\xff"), 1007),
    (close_payload(1000, b"bye"), 1000),
    (close_payload(1001), 1001),
    (close_payload(3000), 3000),
    (close_payload(4999, b"app"), 4999),
]


async def test_close_codes_are_checked_and_only_valid_ones_echoed(server: RunningServer) -> None:
    async with Bystander(server) as bystander:
        answers = []
        for payload, _ in CLOSE_CASES:
            socket = await RawSocket.websocket(server)
            socket.send(client_frame(CLOSE, payload))
            answers.append(await socket.close_code())
            await socket.close()

    assert answers == [code for _, code in CLOSE_CASES]
    bystander.check()


# Fragments and frames over the limit


async def test_thirty_thousand_one_byte_fragments_are_refused_1009_on_the_running_total(
    server: RunningServer,
) -> None:
    count = 30_000
    stream = (
        client_frame(TEXT, b"[", fin=False)
        + b"".join(client_frame(CONTINUATION, b"x", fin=False) for _ in range(count - 2))
        + client_frame(CONTINUATION, b"]")
    )
    async with Bystander(server) as bystander:
        socket = await RawSocket.websocket(server)
        socket.send(stream)
        code = await socket.close_code()
        await socket.close()

    assert code == 1009
    bystander.check()


async def test_frames_announcing_more_than_the_limit_are_refused_at_the_header(server: RunningServer) -> None:
    # 1 MB announced, 1 KB sent, then nothing: refused from the header alone, nothing waits for the rest.
    announced = struct.pack("!BBQ", 0x80 | TEXT, 0x80 | 127, 1_000_000) + b"\x01\x02\x03\x04" + b"x" * 1024
    async with Bystander(server) as bystander:
        sockets = [await RawSocket.websocket(server) for _ in range(100)]
        for socket in sockets:
            socket.send(announced)
        codes = await asyncio.gather(*(socket.close_code() for socket in sockets))
        for socket in sockets:
            await socket.close()

    assert codes == [1009] * 100
    bystander.check()


async def test_a_fragment_taking_the_message_over_the_limit_is_refused_at_its_header(
    server: RunningServer,
) -> None:
    async with Bystander(server) as bystander:
        socket = await RawSocket.websocket(server)
        socket.send(client_frame(TEXT, b"x" * 9_000, fin=False))
        socket.send(client_frame(CONTINUATION, b"", length=2_000)[:8])  # its header, no payload
        code = await socket.close_code()
        await socket.close()

    assert code == 1009
    bystander.check()


# Handshakes


HANDSHAKE_CASES: list[tuple[dict[str, Any], int]] = [
    ({"ws_version": "12"}, 426),
    ({"method": "POST"}, 400),
    ({"version": "1.0"}, 400),
    ({"headers": [(f"x-filler-{index}", "v") for index in range(2000)]}, 431),
]


async def test_handshakes_the_rfc_does_not_allow_are_refused(server: RunningServer) -> None:
    fast_path_only("the WebSocket handshake (websockets answers 400/405, and 101 to HTTP/1.0)")
    async with Bystander(server) as bystander:
        answers = []
        for options, _ in HANDSHAKE_CASES:
            socket = await RawSocket.open(server)
            socket.send(handshake(f"/app/{server.key}?protocol=7", **options))
            status, headers = await socket.head()
            answers.append((status, headers.get("sec-websocket-version"), await socket.closed()))
            await socket.close()

    assert answers == [(426, "13", True), (400, None, True), (400, None, True), (431, None, True)]
    bystander.check()


# An announced body


async def test_a_body_announced_over_the_limit_is_refused_413_at_once_and_closed(
    server: RunningServer,
) -> None:
    path = f"/apps/{server.app_id}/events"
    query = "&".join(
        f"{k}={v}" for k, v in pusher_query("POST", path, b"", {}, server.key, server.secret).items()
    )
    request = (
        f"POST {path}?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 52428800\r\n\r\n"
    ).encode()
    async with Bystander(server) as bystander:
        socket = await RawSocket.open(server)
        socket.send(request)
        status, headers = await socket.head()
        body = await socket.body(headers)
        closed = await socket.closed()
        await socket.close()

    assert (status, body, headers["connection"], closed) == (
        413,
        dumps({"error": "The request body is larger than 10000 bytes"}).encode(),
        "close",
        True,
    )
    bystander.check()


# Idle and slow connections


@pytest.fixture(scope="module")
def impatient() -> Iterator[RunningServer]:
    running = start_revurb({"REVURB_REQUEST_HEAD_TIMEOUT": "1", "REVURB_KEEP_ALIVE_TIMEOUT": "1"})
    yield running
    running.stop()


async def test_idle_and_slow_connections_are_closed_after_the_head_timeout(impatient: RunningServer) -> None:
    fast_path_only("reading the request head (it has no head timeout: put nginx in front)")
    request = handshake(f"/app/{impatient.key}?protocol=7")
    async with Bystander(impatient) as bystander:
        idle = [await RawSocket.open(impatient) for _ in range(100)]
        slow = [await RawSocket.open(impatient) for _ in range(20)]
        for index in range(3):  # one byte every 0.4 s: too slow for a one-second limit
            for socket in slow:
                socket.send(request[index : index + 1])
            await asyncio.sleep(0.4)
        idle_closed = await asyncio.gather(*(socket.closed(3) for socket in idle))
        slow_answers = await asyncio.gather(*(socket.head(3) for socket in slow))
        for socket in idle + slow:
            await socket.close()

    assert idle_closed == [True] * 100
    assert [status for status, _ in slow_answers] == [408] * 20
    bystander.check()


async def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(impatient: RunningServer) -> None:
    socket = await RawSocket.open(impatient)
    socket.send(b"GET /up HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, headers = await socket.head()
    assert (status, await socket.body(headers)) == (200, b'{"health":"OK"}')

    assert await socket.closed(3)
    await socket.close()
