"""Fuzzing the transport's parsers over a fake transport (issue 13).

WebSocket: random and mutated frame streams (valid frames, bad lengths, opcodes, masks, fragments,
close payloads), cut into reads at random offsets. A well-formed stream is checked against a small
model of RFC 6455 written here (messages, pongs, the close code); any stream must never raise out
of the protocol, never buffer more than the limit, and end, if it is refused, with one close frame
of an RFC code. HTTP: random and mutated pipelined requests; a well-formed stream is answered in
order, exactly; any stream must never raise, never buffer a body over the limit, and a refusal is a
4xx answer after which nothing is written. Budget and seed: `tests/support/fuzz.py`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revurb.transport.hook import FrameHandler, HttpAnswer, Limits, Scope
from revurb.transport.http import HIGH_WATER
from revurb.transport.websocket import WebSocketProtocol
from tests.support.fake_apps import EchoApp, FakeFastPath, HookedApp, RecordingHandler, SocketApp
from tests.support.fake_transport import FIXED_MASK, ClockLoop, FakeTransport, client_frame, settle
from tests.support.fuzz import TIMEOUT, fuzz
from tests.support.transport_fixtures import ACCEPTED, open_http, open_websocket, upgrade_request

pytestmark = pytest.mark.timeout(TIMEOUT)

MAX_SIZE = 300
CONTROL = (0x8, 0x9, 0xA)
DATA = (0x0, 0x1, 0x2)
PEER_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, *range(3000, 5000)}


# WebSocket: frames as a client might send them


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True
    masked: bool = True
    rsv: int = 0

    def wire(self) -> bytes:
        return client_frame(self.opcode, self.payload, self.fin, FIXED_MASK if self.masked else b"", self.rsv)


VALID_CLOSES = st.builds(
    lambda code, reason: struct.pack("!H", code) + reason.encode()[:100],
    st.sampled_from(sorted(PEER_CODES)[:14] + [3000, 4001, 4999]),
    st.text(max_size=20),
)
BAD_CLOSES = st.one_of(
    st.binary(min_size=1, max_size=1),
    st.builds(
        lambda code, reason: struct.pack("!H", code) + reason,
        st.one_of(
            st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]), st.integers(0, 65535)
        ),
        st.binary(max_size=10),
    ),
    st.builds(
        lambda reason: struct.pack("!H", 1000) + reason, st.sampled_from([b"\xff", b"\xc3", b"a\xed\xa0\x80"])
    ),
)
payloads = st.one_of(
    st.text(max_size=40).map(str.encode),
    st.binary(max_size=40),
    st.integers(0, MAX_SIZE + 20).map(lambda size: b"y" * size),
)


@st.composite
def message_frames(draw: st.DrawFn) -> list[Frame]:
    """One data message, in one frame or several, maybe with control frames between its fragments."""
    opcode = draw(st.sampled_from([0x1, 0x2]))
    if opcode == 0x1:
        whole = draw(st.one_of(st.text(max_size=60).map(str.encode), st.binary(max_size=20)))
    else:
        whole = draw(payloads)
    cuts_at = sorted(draw(st.lists(st.integers(0, len(whole)), max_size=4)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts_at], [*cuts_at, len(whole)], strict=True)]
    out: list[Frame] = []
    for index, piece in enumerate(pieces):
        out.append(Frame(opcode if index == 0 else 0x0, piece, fin=index == len(pieces) - 1))
        if index < len(pieces) - 1 and draw(st.integers(0, 4)) == 0:
            out.append(Frame(draw(st.sampled_from([0x9, 0xA])), draw(st.binary(max_size=10))))
    return out


@st.composite
def violation(draw: st.DrawFn) -> Frame:
    """One frame a server must refuse (in most places it can be put)."""
    kind = draw(st.sampled_from(["opcode", "unmasked", "rsv", "control", "close", "continuation", "big"]))
    if kind == "opcode":
        return Frame(draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])), draw(st.binary(max_size=5)))
    if kind == "unmasked":
        return Frame(0x1, b"x", masked=False)
    if kind == "rsv":
        return Frame(0x1, b"x", rsv=draw(st.sampled_from([0x10, 0x20, 0x40])))
    if kind == "control":
        return draw(
            st.sampled_from([Frame(0x9, b"p" * 126), Frame(0x9, b"p", fin=False), Frame(0x8, b"", fin=False)])
        )
    if kind == "close":
        return Frame(0x8, draw(BAD_CLOSES))
    if kind == "continuation":
        return Frame(0x0, b"stray")
    return Frame(0x2, b"z" * (MAX_SIZE + 1))


@st.composite
def frame_streams(draw: st.DrawFn) -> list[Frame]:
    """Messages and pings, maybe one violation somewhere, maybe a close at the end."""
    sent: list[Frame] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 3)) == 0:
            sent.append(Frame(draw(st.sampled_from([0x9, 0xA])), draw(st.binary(max_size=20))))
        else:
            sent += draw(message_frames())
    if draw(st.booleans()):
        sent.insert(draw(st.integers(0, len(sent))), draw(violation()))
    ending = draw(st.sampled_from(["none", "valid", "empty", "bad"]))
    if ending == "valid":
        sent.append(Frame(0x8, draw(VALID_CLOSES)))
    elif ending == "empty":
        sent.append(Frame(0x8, b""))
    elif ending == "bad":
        sent.append(Frame(0x8, draw(BAD_CLOSES)))
    if draw(st.booleans()):
        sent += draw(message_frames())  # after a close: never delivered
    return sent


def cuts(stream: bytes, offsets: Sequence[int]) -> list[bytes]:
    points = sorted({offset % (len(stream) + 1) for offset in offsets})
    edges = [0, *points, len(stream)]
    return [stream[start:end] for start, end in zip(edges, edges[1:], strict=False) if end > start]


@dataclass
class Expected:
    messages: list[str | bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    close: int | None = None
    #: The model got to the end of the frames without a close: the socket stays open.
    open: bool = True


def model(sent: Sequence[Frame]) -> Expected:
    """RFC 6455 as a server applies it, with a message limit of MAX_SIZE, frame by frame."""
    expected = Expected()
    fragments: list[bytes] | None = None
    kind = 0x1
    size = 0

    def fail(code: int) -> Expected:
        expected.close, expected.open = code, False
        return expected

    for frame in sent:
        if frame.rsv or not frame.masked:
            return fail(1002)
        if frame.opcode in CONTROL:
            if len(frame.payload) > 125 or not frame.fin:
                return fail(1002)
        elif frame.opcode not in DATA:
            return fail(1002)
        else:
            total = size + len(frame.payload) if frame.opcode == 0x0 else len(frame.payload)
            if total > MAX_SIZE:
                return fail(1009)
            size = 0 if frame.fin else total
        if frame.opcode in (0x1, 0x2):
            if fragments is not None:
                return fail(1002)
            if not frame.fin:
                fragments, kind = [frame.payload], frame.opcode
                continue
            whole, kind = frame.payload, frame.opcode
        elif frame.opcode == 0x0:
            if fragments is None:
                return fail(1002)
            fragments.append(frame.payload)
            if not frame.fin:
                continue
            whole, fragments = b"".join(fragments), None
        elif frame.opcode == 0x9:
            expected.pongs.append(frame.payload)
            continue
        elif frame.opcode == 0xA:
            continue
        else:  # close
            payload = frame.payload
            if len(payload) == 1:
                return fail(1002)
            code = struct.unpack("!H", payload[:2])[0] if payload else 1005
            if payload and code not in PEER_CODES:
                return fail(1002)
            try:
                payload[2:].decode()
            except UnicodeDecodeError:
                return fail(1007)
            expected.close, expected.open = (1000 if code == 1005 else code), False
            return expected
        if kind == 0x1:
            try:
                expected.messages.append(whole.decode())
            except UnicodeDecodeError:
                return fail(1007)
        else:
            expected.messages.append(whole)
    return expected


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Parse what the server wrote: final, unmasked frames only (anything else fails the test)."""
    parsed: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        first, second = data[offset], data[offset + 1]
        assert first & 0xF0 == 0x80 and not second & 0x80, data[offset : offset + 2]
        length, offset = second & 0x7F, offset + 2
        if length == 126:
            length, offset = struct.unpack_from("!H", data, offset)[0], offset + 2
        assert length < 127
        parsed.append((first & 0x0F, data[offset : offset + length]))
        offset += length
    assert offset == len(data)
    return parsed


@dataclass
class Outcome:
    messages: list[str | bytes]
    frames: list[tuple[int, bytes]]
    transport: FakeTransport
    #: The most the reader held beyond the read it was just given.
    largest_buffer: int


async def run_websocket(reads: Sequence[bytes]) -> Outcome:
    clock = ClockLoop(asyncio.get_running_loop())
    handler = RecordingHandler()

    async def route(scope: Scope, socket: WebSocketProtocol) -> FrameHandler | None:
        socket.accept()
        return handler

    fast_path = FakeFastPath()
    fast_path.websocket_routes["/ws"] = route
    opened = open_websocket(HookedApp(fast_path, SocketApp()), clock, ws_max_size=MAX_SIZE)
    opened.feed(upgrade_request())
    await settle()
    assert opened.transport.take() == ACCEPTED
    largest = 0
    for data in reads:
        for _ in range(1000):  # as a transport does: no read while reading is paused
            if not opened.transport.reading_paused or opened.transport.closed:
                break
            await asyncio.sleep(0)
        opened.feed(data)  # must not raise
        reader = opened.protocol.reader
        if reader is not None:
            largest = max(largest, len(reader.buffer) - len(data))
        await asyncio.sleep(0)
    await settle(50)
    clock.advance(10)  # the close timers
    await settle()
    return Outcome(handler.messages, server_frames(opened.transport.data), opened.transport, largest)


def check_refusal_shape(outcome: Outcome) -> None:
    """Whatever came in: at most one close frame, the last thing written, with a code a server may send."""
    closes = [payload for opcode, payload in outcome.frames if opcode == 0x8]
    assert len(closes) <= 1
    if closes:
        assert outcome.frames[-1][0] == 0x8
        code = struct.unpack("!H", closes[0][:2])[0]
        assert code in PEER_CODES
        assert outcome.transport.closed
    assert {opcode for opcode, _ in outcome.frames} <= {0x8, 0xA}
    # Besides the read in hand, nothing beyond one frame's header and the limit.
    assert outcome.largest_buffer <= MAX_SIZE + 14


@fuzz
@given(frame_streams(), st.lists(st.integers(0, 10_000), max_size=12))
def test_well_formed_frame_streams_are_handled_as_the_rfc_says(sent: list[Frame], offsets: list[int]) -> None:
    stream = b"".join(frame.wire() for frame in sent)
    outcome = asyncio.run(run_websocket(cuts(stream, offsets)))
    expected = model(sent)

    check_refusal_shape(outcome)
    assert outcome.messages == expected.messages
    pongs = [payload for opcode, payload in outcome.frames if opcode == 0xA]
    assert pongs == expected.pongs
    closes = [struct.unpack("!H", payload[:2])[0] for opcode, payload in outcome.frames if opcode == 0x8]
    assert closes == ([] if expected.close is None else [expected.close])
    assert outcome.transport.closed is not expected.open


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    stream = bytearray(b"".join(frame.wire() for frame in draw(frame_streams())))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "insert", "cut", "length"]))
        at = draw(st.integers(0, len(stream)))
        if action == "flip" and stream:
            index = at % len(stream)
            stream[index] ^= draw(st.integers(1, 255))
        elif action == "insert":
            stream[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif action == "cut":
            del stream[at : at + draw(st.integers(1, 20))]
        else:  # a lying 16- or 64-bit length
            stream[at:at] = bytes((0x81, 0x80 | draw(st.sampled_from([126, 127]))))
            stream[at + 2 : at + 2] = draw(st.binary(min_size=2, max_size=8))
    return bytes(stream)


@fuzz
@given(mutated(), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_byte_stream_is_refused_the_rfc_way_or_served(stream: bytes, offsets: list[int]) -> None:
    outcome = asyncio.run(run_websocket(cuts(stream, offsets)))

    check_refusal_shape(outcome)
    for message in outcome.messages:
        assert len(message.encode() if isinstance(message, str) else message) <= MAX_SIZE


# HTTP: pipelined requests


MAX_BODY = 1_000
MAX_HEADERS = 20
TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
TOO_BIG = HttpAnswer(413, b"text/plain", b"too big")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    chunks: tuple[int, ...] | None  # chunk sizes of a chunked body; None: content-length

    def wire(self) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", "host: x", *(f"{n}: {v}" for n, v in self.headers)]
        if self.chunks is None:
            lines.append(f"content-length: {len(self.body)}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body
        lines.append("transfer-encoding: chunked")
        out = [("\r\n".join(lines) + "\r\n\r\n").encode()]
        offset = 0
        for size in self.chunks:
            piece = self.body[offset : offset + size]
            offset += size
            if piece:
                out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        if offset < len(self.body):
            out.append(b"%x\r\n%s\r\n" % (len(self.body) - offset, self.body[offset:]))
        out.append(b"0\r\n\r\n")
        return b"".join(out)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    path = "/" + "/".join(draw(st.lists(TOKEN, max_size=3)))
    headers = tuple(
        (f"x-{name}", value)
        for name, value in draw(
            st.lists(
                st.tuples(TOKEN, TOKEN), max_size=draw(st.sampled_from([3, MAX_HEADERS - 1, MAX_HEADERS + 3]))
            )
        )
    )
    size = draw(st.one_of(st.integers(0, 60), st.sampled_from([MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, 5_000])))
    body = (
        draw(st.binary(min_size=size, max_size=size))
        if size <= 60
        else bytes([draw(st.integers(0, 255))]) * size
    )
    chunks = draw(st.one_of(st.none(), st.lists(st.integers(1, 700), max_size=5).map(tuple)))
    return Request(method, path, headers, body, chunks)


def answer(request: Request) -> bytes:
    body = b"%s %s %s" % (request.method.encode(), request.path.encode(), request.body)
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


REFUSED_413 = (
    b"HTTP/1.1 413 Request Entity Too Large\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n"
    b"connection: close\r\n\r\ntoo big"
)
REFUSED_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 25\r\nconnection: close\r\n\r\nRequest header too large."
)


def http_model(sent: Sequence[Request]) -> bytes:
    out = b""
    for request in sent:
        if len(request.headers) + 2 > MAX_HEADERS:  # with host, and content-length or transfer-encoding
            return out + REFUSED_431
        if len(request.body) > MAX_BODY:
            return out + REFUSED_413
        out += answer(request)
    return out


@dataclass
class HttpOutcome:
    data: bytes
    transport: FakeTransport
    largest_body: int


async def run_http(reads: Sequence[bytes]) -> HttpOutcome:
    clock = ClockLoop(asyncio.get_running_loop())
    limits = Limits(max_headers=MAX_HEADERS, max_body_size=MAX_BODY, body_too_large=TOO_BIG)
    opened = open_http(HookedApp(FakeFastPath(limits=limits), EchoApp()), clock)
    largest = 0
    for data in reads:
        opened.feed(data)  # must not raise
        largest = max([largest, *(request.size for request in opened.protocol.queue)])
        await asyncio.sleep(0)
    await settle(100)
    return HttpOutcome(opened.transport.data, opened.transport, largest)


@fuzz
@given(st.lists(requests(), min_size=1, max_size=6), st.lists(st.integers(0, 20_000), max_size=10))
def test_well_formed_pipelined_requests_are_answered_in_order_or_refused(
    sent: list[Request], offsets: list[int]
) -> None:
    stream = b"".join(request.wire() for request in sent)
    outcome = asyncio.run(run_http(cuts(stream, offsets)))

    expected = http_model(sent)
    assert outcome.data == expected
    assert outcome.transport.closed is expected.endswith((REFUSED_413, REFUSED_431))
    assert outcome.largest_body <= MAX_BODY


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    stream = bytearray(
        b"".join(request.wire() for request in draw(st.lists(requests(), min_size=1, max_size=4)))
    )
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(stream)))
        action = draw(st.sampled_from(["flip", "insert", "cut"]))
        if action == "flip" and stream:
            stream[at % len(stream)] = draw(st.integers(0, 255))
        elif action == "insert":
            stream[at:at] = draw(
                st.sampled_from([b"\r\n", b":", b" ", b"\x00", b"content-length: 5\r\n", b"9999999"])
            )
        else:
            del stream[at : at + draw(st.integers(1, 10))]
    return bytes(stream)


@fuzz
@given(mutated_requests(), st.lists(st.integers(0, 20_000), max_size=10))
def test_any_http_byte_stream_is_answered_or_refused_never_raises(stream: bytes, offsets: list[int]) -> None:
    outcome = asyncio.run(run_http(cuts(stream, offsets)))

    statuses = []
    rest = outcome.data
    while rest:
        assert rest.startswith(b"HTTP/1.1 "), rest[:40]
        statuses.append(int(rest[9:12]))
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        rest = rest[length:]
    assert set(statuses) <= {200, 400, 413, 431}
    if any(status != 200 for status in statuses):
        assert statuses[-1] != 200  # a refusal is the last thing written
        assert outcome.transport.closed
    assert outcome.largest_body <= max(MAX_BODY, HIGH_WATER)
