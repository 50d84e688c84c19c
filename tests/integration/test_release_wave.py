"""After a wave of closes that emptied the server, Revurb collects, rebuilds the tables that grew with
the wave and refills uvloop's handle free lists (`transport/release.py`). The sockets that stayed
go on as before, and new ones join them: a real server, a real wave, exact frames."""

from __future__ import annotations

import asyncio
import json
import resource

import pytest

from revurb.transport.release import HANDLES_SECONDS, QUIET_SECONDS, WAVE
from tests.support.fixture_types import StartServer
from tests.support.http import api, trigger
from tests.support.raw_socket import RawSocket
from tests.support.servers import RunningServer

STAYING = 10
#: Sockets opened (and later closed) at a time.
BATCH = 100


async def subscribed(server: RunningServer, channel: str) -> RawSocket:
    socket = await RawSocket.websocket(server)
    socket.send_frame(0x1, json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}).encode())
    _, payload = await socket.frame()
    assert json.loads(payload) == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": channel,
        "data": "{}",
    }
    return socket


async def leave(socket: RawSocket) -> None:
    socket.send_frame(0x8, (1000).to_bytes(2, "big"))
    assert await socket.close_code() == 1000
    await socket.close()


async def event_frame(socket: RawSocket) -> dict[str, object]:
    opcode, payload = await socket.frame()
    assert opcode == 0x1
    message: dict[str, object] = json.loads(payload)
    return message


@pytest.fixture(autouse=True)
def enough_descriptors() -> None:
    """The wave needs over a thousand sockets on the client's side too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * WAVE
    if soft < needed <= hard or (hard == resource.RLIM_INFINITY and soft < needed):
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.timeout(90)
async def test_sockets_that_stay_through_a_wave_and_its_compaction_go_on_as_before(
    start_server: StartServer,
) -> None:
    server = start_server()
    staying = [await subscribed(server, "stay") for _ in range(STAYING)]
    wave: list[RawSocket] = []
    for start in range(0, WAVE, BATCH):
        wave += await asyncio.gather(*(subscribed(server, f"wave-{n}") for n in range(start, start + BATCH)))
    for start in range(0, WAVE, BATCH):
        await asyncio.gather(*(leave(socket) for socket in wave[start : start + BATCH]))

    # The quiet moment, the collection and the rebuilt tables, then the fresh handles and the trim.
    await asyncio.sleep(QUIET_SECONDS + HANDLES_SECONDS + 1.0)

    channels = await api(server, "GET", "/channels", params={"info": "subscription_count"})
    assert channels.json() == {"channels": {"stay": {"subscription_count": STAYING}}}
    await trigger(server, "stay", "after-the-wave", "1")
    expected = {"event": "after-the-wave", "channel": "stay", "data": "1"}
    assert [await event_frame(socket) for socket in staying] == [expected] * STAYING
    newcomer = await subscribed(server, "stay")
    await trigger(server, "stay", "with-a-newcomer", "2")
    expected = {"event": "with-a-newcomer", "channel": "stay", "data": "2"}
    assert [await event_frame(socket) for socket in [*staying, newcomer]] == [expected] * (STAYING + 1)
    for socket in [*staying, newcomer]:
        await leave(socket)
    channels = await api(server, "GET", "/channels")
    assert channels.json() == {"channels": {}}
