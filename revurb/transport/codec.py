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
_MAX_CLOSE_REASON = _MAX_CONTROL_PAYLOAD - 2
#: Frames one `feed` parses at most; the rest waits, so one socket's burst cannot hold the loop.
FRAMES_PER_FEED = 256

#: Close codes a peer may send (RFC 6455 section 7.4.1 and the IANA registry); 1004, 1005, 1006 and
#: 1015 are reserved for local use and never appear on the wire. 3000-4999 are for libraries and apps.
_PEER_CLOSE_CODES = frozenset(
    {
        CloseCode.NORMAL_CLOSURE,
        CloseCode.GOING_AWAY,
        CloseCode.PROTOCOL_ERROR,
        CloseCode.UNSUPPORTED_DATA,
        CloseCode.INVALID_DATA,
        CloseCode.POLICY_VIOLATION,
        CloseCode.MESSAGE_TOO_BIG,
        CloseCode.MANDATORY_EXTENSION,
        CloseCode.INTERNAL_ERROR,
        CloseCode.SERVICE_RESTART,
        CloseCode.TRY_AGAIN_LATER,
        CloseCode.BAD_GATEWAY,
    }
)
_APP_CLOSE_CODES = range(3000, 5000)


def is_peer_close_code(code: int) -> bool:
    """Whether a close frame may carry `code` (anything else is answered with 1002)."""
    return code in _PEER_CLOSE_CODES or code in _APP_CLOSE_CODES


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
    """A close frame; a long reason is cut to fit a control frame, never inside a UTF-8 character."""
    encoded = reason.encode()
    if len(encoded) > _MAX_CLOSE_REASON:
        encoded = encoded[:_MAX_CLOSE_REASON].decode(errors="ignore").encode()
    return encode_frame(Opcode.CLOSE, struct.pack("!H", code) + encoded)


def unmask(payload: bytes, mask: bytes) -> bytes:
    length = len(payload)
    if not length:
        return b""
    key = (mask * (length // 4 + 1))[:length]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(length, "little")


class FrameReader:
    """Buffers bytes from the client and yields whole frames as (opcode, fin, payload).

    A data message over `max_size` is refused at the header of the frame that would take it over
    (1009), whether it comes whole or in fragments, so nothing of it is buffered. `feed` parses at
    most `FRAMES_PER_FEED` frames; `more` then says that whole frames may be waiting (`feed(b"")`).
    A violation stops the parse: the frames before it are returned and `error` says what it was.
    """

    __slots__ = ("buffer", "max_size", "message_size", "more", "error")

    def __init__(self, max_size: int) -> None:
        self.buffer = bytearray()
        self.max_size = max_size
        #: Payload bytes of the fragmented data message so far (0 between messages).
        self.message_size = 0
        self.more = False
        self.error: FrameError | None = None

    def feed(self, data: bytes) -> list[tuple[int, bool, bytes]]:
        """The whole frames `data` completes (in order), up to `FRAMES_PER_FEED` or a violation."""
        frames: list[tuple[int, bool, bytes]] = []
        try:
            # The common case, whole frames in one read, parses `data` without copying it first.
            buffer: bytes | bytearray = data
            if self.buffer:
                self.buffer += data
                buffer = self.buffer
            offset = 0
            size = len(buffer)
            self.more = False
            while size - offset >= 2:
                if len(frames) == FRAMES_PER_FEED:
                    self.more = True
                    break
                first, second = buffer[offset], buffer[offset + 1]
                if first & 0x70:
                    reason = "Reserved bits set without a negotiated extension"
                    raise FrameError(CloseCode.PROTOCOL_ERROR, reason)
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
                message_size = self.message_size
                if opcode in _CONTROL:
                    if length > _MAX_CONTROL_PAYLOAD or not fin:
                        raise FrameError(CloseCode.PROTOCOL_ERROR, "Invalid control frame")
                elif opcode not in _DATA:
                    raise FrameError(CloseCode.PROTOCOL_ERROR, "Unknown opcode")
                else:
                    # A continuation adds to the message so far; a new message starts from nothing.
                    message_size = message_size + length if opcode == Opcode.CONTINUATION else length
                    if message_size > self.max_size:
                        raise FrameError(CloseCode.MESSAGE_TOO_BIG, "Message too big")
                end = offset + header + 4 + length
                if end > size:
                    break
                if opcode not in _CONTROL:
                    self.message_size = 0 if fin else message_size
                mask = buffer[offset + header : offset + header + 4]
                frames.append((opcode, fin, unmask(bytes(buffer[offset + header + 4 : end]), bytes(mask))))
                offset = end
            if offset >= size:
                if buffer is self.buffer:  # else it was empty and still is: nothing to make anew
                    self.buffer = bytearray()
            elif buffer is self.buffer:
                del self.buffer[:offset]
            else:
                self.buffer = bytearray(buffer[offset:])
        except FrameError as error:
            self.error = error
        return frames
