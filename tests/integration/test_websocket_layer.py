"""The WebSocket layer under the protocol: fragments, control frames, close handshakes, slow readers."""

import asyncio
import base64
import os
import socket

from tests.support.fixture_types import Connect, StartServer
from tests.support.http import api
from tests.support.pusher_socket import unique
from tests.support.servers import RunningServer


async def test_fragmented_message_is_reassembled(connect: Connect) -> None:
    client = await connect()
    channel = unique()
    pieces = ['{"event":"pusher:subscribe",', '"data":{"channel":', f'"{channel}"', "}}"]
    await client.ws.send(iter(pieces))
    assert (await client.recv())["event"] == "pusher_internal:subscription_succeeded"


async def test_websocket_ping_gets_a_pong(connect: Connect) -> None:
    client = await connect()
    pong = await client.ws.ping(b"hello")
    await asyncio.wait_for(pong, 5)


async def test_client_close_is_answered(connect: Connect) -> None:
    client = await connect()
    await asyncio.wait_for(client.ws.close(4321, "bye"), 5)
    close_rcvd = client.ws.protocol.close_rcvd
    assert close_rcvd is not None and close_rcvd.code == 4321


async def test_invalid_utf8_text_frame_closes_with_1007(server: RunningServer) -> None:
    reader, writer = await raw_handshake(server)
    writer.write(masked_frame(0x1, b"\xff\xfe"))
    await writer.drain()
    frames = await read_until_close(reader)
    assert frames[-1][:2] == (0x8, 1007)
    writer.close()


async def test_unmasked_client_frame_closes_with_1002(server: RunningServer) -> None:
    reader, writer = await raw_handshake(server)
    writer.write(b"\x81\x02hi")
    await writer.drain()
    frames = await read_until_close(reader)
    assert frames[-1][:2] == (0x8, 1002)
    writer.close()


async def test_a_reader_that_stops_is_closed_and_the_others_keep_up(
    start_server: StartServer, connect: Connect
) -> None:
    server = start_server({"REVERB_MAX_REQUEST_SIZE": "200000"})
    channel = unique()
    others = [await connect(server) for _ in range(20)]
    for other in others:
        await other.join(channel)
    reader, writer = await raw_handshake(server, receive_buffer=4096)
    assert b"pusher:connection_established" in (await read_frame(reader))[2]
    writer.write(
        masked_frame(0x1, b'{"event":"pusher:subscribe","data":{"channel":"' + channel.encode() + b'"}}')
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    payload = "x" * 9000
    batches = 80  # 80 x 10 events x 9 KB = 7.2 MB, far over the 1 MiB cap plus kernel buffers
    received = [0] * len(others)

    async def drain(index: int) -> None:
        while received[index] < batches * 10:
            frame = await others[index].recv(timeout=20)
            if frame.get("event") == "bulk":
                received[index] += 1

    readers = [asyncio.create_task(drain(index)) for index in range(len(others))]
    for _ in range(batches):
        batch = [{"name": "bulk", "channel": channel, "data": payload} for _ in range(10)]
        response = await api(server, "POST", "/batch_events", {"batch": batch})
        assert response.status_code == 200, response.text
    await asyncio.wait_for(asyncio.gather(*readers), 30)
    assert received == [batches * 10] * len(others)
    # The stalled socket was closed with 4100 once its backlog passed the cap.
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    frames = await read_until_close(reader, timeout=20)
    assert frames[-1][:2] == (0x8, 4100)
    writer.close()


# A tiny raw client, so tests can misbehave in ways real client libraries refuse to.


async def raw_handshake(
    server: RunningServer, receive_buffer: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
    # A small limit makes the stream stop reading the socket when the test stops reading it.
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET /app/" + server.key.encode() + b"?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    assert len(payload) < 126
    return (
        bytes((0x80 | opcode, 0x80 | len(payload)))
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


async def read_until_close(reader: asyncio.StreamReader, timeout: float = 5) -> list[tuple[int, int, bytes]]:
    """Read server frames until a close frame; returns (opcode, close code or 0, payload) each."""
    frames: list[tuple[int, int, bytes]] = []
    async with asyncio.timeout(timeout):
        while True:
            frames.append(await read_frame(reader))
            if frames[-1][0] == 0x8:
                return frames


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    first, second = await asyncio.wait_for(reader.readexactly(2), 20)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    payload = await reader.readexactly(length)
    opcode = first & 0x0F
    code = int.from_bytes(payload[:2], "big") if opcode == 0x8 and len(payload) >= 2 else 0
    return opcode, code, payload
