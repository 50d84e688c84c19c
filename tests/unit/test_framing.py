"""RFC 6455 framing of the fast path: what the server writes and how it reads masked frames."""

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revurb.transport.codec import (
    FrameReader,
    Opcode,
    close_frame,
    encode_frame,
    encode_text,
)
from tests.support.fake_transport import client_frame


@pytest.mark.parametrize(("size", "header"), [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_server_frames_are_final_unmasked_with_the_right_length_encoding(size: int, header: int) -> None:
    frame = encode_frame(Opcode.BINARY, b"x" * size)
    assert frame[0] == 0x80 | Opcode.BINARY
    assert not frame[1] & 0x80
    assert len(frame) == header + size


def test_text_and_close_frames() -> None:
    assert encode_text("hé") == b"\x81\x03h\xc3\xa9"
    assert close_frame(4009, "no") == b"\x88\x04\x0f\xa9no"


@given(st.lists(st.binary(max_size=70_000), min_size=1, max_size=5), st.integers(1, 5000))
def test_reader_reassembles_frames_split_anywhere(payloads: list[bytes], chunk: int) -> None:
    stream = b"".join(client_frame(Opcode.BINARY, payload) for payload in payloads)
    reader = FrameReader(1 << 20)
    frames = []
    for start in range(0, len(stream), chunk):
        frames.extend(reader.feed(stream[start : start + chunk]))
    assert frames == [(Opcode.BINARY, True, payload) for payload in payloads]
    assert not reader.buffer


def test_reader_keeps_fragments_and_control_frames_apart() -> None:
    reader = FrameReader(1000)
    stream = (
        client_frame(Opcode.TEXT, b"he", fin=False)
        + client_frame(Opcode.PING, b"p")
        + client_frame(0, b"llo")
    )
    assert reader.feed(stream) == [(Opcode.TEXT, False, b"he"), (Opcode.PING, True, b"p"), (0, True, b"llo")]


@pytest.mark.parametrize(
    ("stream", "code"),
    [
        (client_frame(Opcode.TEXT, b"x")[:1] + bytes([1]) + b"x", 1002),  # unmasked
        (client_frame(Opcode.TEXT, b"x", rsv=0x40), 1002),  # compression bit without an extension
        (client_frame(0x3, b"x"), 1002),  # reserved opcode
        (client_frame(Opcode.PING, b"x" * 126), 1002),  # control frame too long
        (client_frame(Opcode.CLOSE, b"", fin=False), 1002),  # fragmented control frame
        (client_frame(Opcode.BINARY, b"x" * 101), 1009),  # over the size limit
    ],
)
def test_protocol_violations(stream: bytes, code: int) -> None:
    reader = FrameReader(100)
    assert reader.feed(client_frame(Opcode.PING, b"before") + stream) == [(Opcode.PING, True, b"before")]
    assert reader.error is not None
    assert reader.error.code == code


def test_oversized_frame_is_refused_from_its_header_alone() -> None:
    header = struct.pack("!BBQ", 0x80 | Opcode.BINARY, 0x80 | 127, 1 << 40) + os.urandom(4)
    reader = FrameReader(1 << 20)
    assert reader.feed(header) == []
    assert reader.error is not None
    assert reader.error.code == 1009
