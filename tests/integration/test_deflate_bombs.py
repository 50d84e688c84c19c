"""permessage-deflate bombs (issue 13): a compressed message is limited after inflation, in bounded steps.

With REVERB_PER_MESSAGE_DEFLATE on, compressed sockets are served by uvicorn's websockets (sans-I/O)
layer on either path; `revurb start` gives it the apps' message limit as `ws_max_size`, and
websockets inflates at most that much of a message before it refuses it with 1009. DEFLATE cannot
pack more than about 1,032 bytes into one, so a 1 KB message inflates to about 1 MB, and a 1 GB
bomb takes about 1 MB on the wire.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bystander import Bystander
from tests.support.fake_transport import client_frame
from tests.support.raw_socket import RawSocket, handshake
from tests.support.servers import RunningServer, start_revurb

RSV1 = 0x40
TEXT = 0x1
#: The end of a sync flush, which permessage-deflate leaves off every message (RFC 7692 7.2.1).
TAIL = b"\x00\x00\xff\xff"
MB = 1 << 20


def deflated(zeros: int, block: int = 64 * MB) -> bytes:
    """`zeros` zero bytes, raw-deflated in identical full-flush blocks (cheap to build for 1 GB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    whole = compressor.compress(bytes(min(block, zeros))) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert zeros % min(block, zeros) == 0
    return (whole * (zeros // min(block, zeros)))[: -len(TAIL)]


def rss(server: RunningServer) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def compressed_socket(server: RunningServer) -> RawSocket:
    socket = await RawSocket.open(server)
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]
    socket.send(handshake(f"/app/{server.key}?protocol=7", headers=offer))
    status, headers = await socket.head()
    assert status == 101
    assert headers["sec-websocket-extensions"].startswith("permessage-deflate")
    await socket.frame()  # pusher:connection_established
    return socket


def compressed_frame(payload: bytes) -> bytes:
    """One masked text frame with RSV1 (compressed), any length."""
    return client_frame(TEXT, payload, rsv=RSV1)


@pytest.fixture(scope="module")
def deflating() -> Iterator[RunningServer]:
    running = start_revurb({"REVERB_PER_MESSAGE_DEFLATE": "true"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def deflating_large() -> Iterator[RunningServer]:
    """Messages up to 2 MB: a 1 MB compressed bomb passes the frame header and must be cut while inflating."""
    running = start_revurb({"REVERB_PER_MESSAGE_DEFLATE": "true", "REVERB_APP_MAX_MESSAGE_SIZE": "2000000"})
    yield running
    running.stop()


async def test_a_1_kb_message_inflating_to_1_mb_is_closed_1009(deflating: RunningServer) -> None:
    bomb = deflated(MB)
    assert len(bomb) < 1100
    frame = compressed_frame(bomb)  # built before the bystander starts: it shares this event loop
    async with Bystander(deflating) as bystander:
        socket = await compressed_socket(deflating)
        socket.send(frame)
        code = await socket.close_code()
        await socket.close()

    assert code == 1009
    bystander.check()


async def test_a_1_gb_bomb_is_cut_at_the_limit_and_memory_stays_bounded(
    deflating_large: RunningServer,
) -> None:
    bomb = deflated(1 << 30)
    assert len(bomb) < 1_100_000
    frame = compressed_frame(bomb)
    before = rss(deflating_large)
    async with Bystander(deflating_large) as bystander:
        socket = await compressed_socket(deflating_large)
        socket.send(frame)
        code = await socket.close_code(15)
        await socket.close()
    grown = rss(deflating_large) - before

    assert code == 1009
    # The limit is 2 MB; the compressed frame is 1 MB. Inflating all of it would take 1 GB.
    assert grown < 64 * MB, f"RSS grew by {grown / MB:.0f} MB"
    bystander.check()
