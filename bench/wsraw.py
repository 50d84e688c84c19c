"""Raw RFC 6455 pieces for the Python-driven scenarios (fragments, churn): the handshake, masked
client frames, reading a frame off a blocking stream, and a signed trigger."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import struct
import time
from typing import BinaryIO

from bench.report import dumps

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x37\xfa\x21\x3d"
PING = b'{"event":"pusher:ping","data":{}}'
PONG_EVENT = b'"pusher:pong"'


def handshake(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (always the same mask: the server must not care)."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        header = bytes((first, 0x80 | length))
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    masked = bytes(byte ^ MASK[index % 4] for index, byte in enumerate(payload))
    return header + MASK + masked


def read_frame(stream: BinaryIO) -> tuple[int, bytes]:
    """The next server frame of a blocking stream: (opcode, payload)."""
    first, second = stream.read(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", stream.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", stream.read(8))[0]
    return first & 0x0F, stream.read(length)


async def read_frame_async(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next server frame from an asyncio stream: (opcode, payload)."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    return first & 0x0F, await reader.readexactly(length)


def signed_trigger(app_id: str, key: str, secret: str, channel: str) -> tuple[str, dict[str, str], bytes]:
    """Path, signed query and body of a `POST /apps/{id}/events` to `channel`."""
    path = f"/apps/{app_id}/events"
    body = dumps({"name": "tick", "channels": [channel], "data": "{}"}).encode()
    params = {
        "auth_key": key,
        "auth_timestamp": str(int(time.time())),
        "auth_version": "1.0",
        "body_md5": hashlib.md5(body).hexdigest(),
    }
    string = "&".join(f"{name}={value}" for name, value in sorted(params.items()))
    params["auth_signature"] = hmac.new(
        secret.encode(), f"POST\n{path}\n{string}".encode(), hashlib.sha256
    ).hexdigest()
    return path, params, body
