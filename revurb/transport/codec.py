"""RFC 6455 framing: encode server frames once, parse masked client frames incrementally."""

from __future__ import annotations

import struct
from enum import IntEnum


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """WebSocket close codes (RFC 6455 section 7.4.1, and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RECEIVED = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


_CONTROL = (Opcode.CLOSE, Opcode.PING, Opcode.PONG)
_DATA = (Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY)
_MAX_CONTROL_PAYLOAD = 125


class FrameError(Exception):
    """A protocol violation by the client: close the socket with this code."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def encode_frame(opcode: Opcode, payload: bytes) -> bytes:
    """A final, unmasked server frame."""
    length = len(payload)
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload


def encode_text(text: str) -> bytes:
    """A text frame, encoded once so the same bytes can go to every subscriber."""
    return encode_frame(Opcode.TEXT, text.encode())


def close_frame(code: int, reason: str) -> bytes:
    return encode_frame(Opcode.CLOSE, struct.pack("!H", code) + reason.encode()[:123])


def unmask(payload: bytes, mask: bytes) -> bytes:
    length = len(payload)
    if not length:
        return b""
    key = (mask * (length // 4 + 1))[:length]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(length, "little")


class FrameReader:
    """Buffers bytes from the client and yields whole frames as (opcode, fin, payload)."""

    __slots__ = ("buffer", "max_size")

    def __init__(self, max_size: int) -> None:
        self.buffer = bytearray()
        self.max_size = max_size

    def feed(self, data: bytes) -> list[tuple[int, bool, bytes]]:
        # The common case, whole frames in one read, parses `data` without copying it first.
        buffer: bytes | bytearray = data
        if self.buffer:
            self.buffer += data
            buffer = self.buffer
        frames: list[tuple[int, bool, bytes]] = []
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            if first & 0x70:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "Reserved bits set without a negotiated extension")
            opcode = first & 0x0F
            fin = bool(first & 0x80)
            if not second & 0x80:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "Client frames must be masked")
            length = second & 0x7F
            header = 2
            if length == 126:
                if size - offset < 4:
                    break
                length = struct.unpack_from("!H", buffer, offset + 2)[0]
                header = 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = struct.unpack_from("!Q", buffer, offset + 2)[0]
                header = 10
            if opcode in _CONTROL:
                if length > _MAX_CONTROL_PAYLOAD or not fin:
                    raise FrameError(CloseCode.PROTOCOL_ERROR, "Invalid control frame")
            elif opcode not in _DATA:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "Unknown opcode")
            if length > self.max_size:
                raise FrameError(CloseCode.MESSAGE_TOO_BIG, "Message too big")
            end = offset + header + 4 + length
            if end > size:
                break
            mask = buffer[offset + header : offset + header + 4]
            frames.append((opcode, fin, unmask(bytes(buffer[offset + header + 4 : end]), bytes(mask))))
            offset = end
        if offset >= size:
            self.buffer = bytearray()
        elif buffer is self.buffer:
            del self.buffer[:offset]
        else:
            self.buffer = bytearray(buffer[offset:])
        return frames
