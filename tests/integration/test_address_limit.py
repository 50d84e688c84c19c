"""The optional cap on open sockets per client address (REVURB_MAX_CONNECTIONS_PER_IP): over it a
socket gets `pusher:error` 4100 and is closed; a closed socket gives its place back. Behind a trusted
proxy (uvicorn's `forwarded_allow_ips`, 127.0.0.1 by default) the address is the forwarded one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.support.pusher_socket import PusherSocket
from tests.support.servers import RunningServer, start_revurb

CAP = 3
OVER = {"event": "pusher:error", "data": '{"code":4100,"message":"Too many connections from this address"}'}


@pytest.fixture(scope="module")
def capped() -> Iterator[RunningServer]:
    running = start_revurb({"REVURB_MAX_CONNECTIONS_PER_IP": str(CAP)})
    yield running
    running.stop()


async def open_socket(server: RunningServer, forwarded_for: str | None = None) -> PusherSocket:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await PusherSocket.connect(
        server.ws_url(), server.key, server.secret, handshake=False, additional_headers=headers
    )


async def refused(socket: PusherSocket) -> bool:
    first = await socket.recv()
    if first["event"] == "pusher:connection_established":
        return False
    assert first == OVER
    assert await socket.closed_with() == (4100, "Too many connections from this address")
    return True


async def test_over_the_cap_a_socket_is_refused_4100_and_a_closed_one_gives_its_place_back(
    capped: RunningServer,
) -> None:
    sockets = [await open_socket(capped) for _ in range(CAP + 1)]
    outcomes = [await refused(socket) for socket in sockets]
    assert outcomes == [False] * CAP + [True]

    await sockets[0].close()
    await asyncio.sleep(0.2)
    again = await open_socket(capped)

    assert not await refused(again)
    for socket in [*sockets[1:CAP], again]:
        await socket.close()


async def test_a_socket_refused_for_another_reason_takes_no_place(capped: RunningServer) -> None:
    for _ in range(CAP + 2):
        wrong = await PusherSocket.connect(
            capped.ws_url(key="no-such-key"), capped.key, capped.secret, handshake=False
        )
        assert (await wrong.recv())["event"] == "pusher:error"
        await wrong.closed_with()
    await asyncio.sleep(0.2)
    sockets = [await open_socket(capped) for _ in range(CAP)]

    assert [await refused(socket) for socket in sockets] == [False] * CAP
    for socket in sockets:
        await socket.close()


async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_cap(capped: RunningServer) -> None:
    first = [await open_socket(capped, "203.0.113.1") for _ in range(CAP)]
    second = [await open_socket(capped, "203.0.113.2") for _ in range(CAP)]
    one_more = await open_socket(capped, "203.0.113.1")

    assert [await refused(socket) for socket in first + second] == [False] * (2 * CAP)
    assert await refused(one_more)
    for socket in first + second:
        await socket.close()
