"""A raw RFC 6455 / HTTP/1.1 client over one TCP connection: sends exactly the bytes a test builds,
hostile ones included, and reads the server's answer (a status line, frames, the close code)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Sequence

from tests.support.fake_transport import client_frame
from tests.support.servers import RunningServer

TIMEOUT = 5.0
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
CLOSE = 0x8


def handshake(
    path: str,
    method: str = "GET",
    version: str = "1.1",
    ws_version: str = "13",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    lines = [
        f"{method} {path} HTTP/{version}",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {SAMPLE_KEY}",
        f"Sec-WebSocket-Version: {ws_version}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawSocket:
    """One TCP connection to a server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: RunningServer) -> RawSocket:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(server.host, server.port), TIMEOUT)
        return cls(reader, writer)

    @classmethod
    async def websocket(cls, server: RunningServer) -> RawSocket:
        """A socket past its handshake and `pusher:connection_established`."""
        socket = await cls.open(server)
        socket.send(handshake(f"{server.path}/app/{server.key}?protocol=7"))
        status, _ = await socket.head()
        assert status == 101
        opcode, payload = await socket.frame()
        assert opcode == 0x1 and b"pusher:connection_established" in payload, payload
        return socket

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.writer.write(client_frame(opcode, payload, fin))

    async def head(self, timeout: float = TIMEOUT) -> tuple[int, dict[str, str]]:
        """The status and headers of the next HTTP answer."""
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        lines = raw.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        return int(lines[0].split(" ", 2)[1]), headers

    async def body(self, headers: dict[str, str]) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(int(headers["content-length"])), TIMEOUT)

    async def frame(self, timeout: float = TIMEOUT) -> tuple[int, bytes]:
        async with asyncio.timeout(timeout):
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return first & 0x0F, await self.reader.readexactly(length)

    async def close_code(self, timeout: float = TIMEOUT) -> int | None:
        """Read until the server's close frame: its code (None for a close frame without one)."""
        async with asyncio.timeout(timeout):
            while True:
                opcode, payload = await self.frame(timeout)
                if opcode == CLOSE:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        """Whether the server closes the connection (EOF or reset) within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65_536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)
