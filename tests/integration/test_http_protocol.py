"""Revurb's own HTTP/1.1 protocol, spoken to over raw sockets: keep-alive, pipelining, bodies, upgrades."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.fixture_types import StartServer
from tests.support.http import signed_params
from tests.support.servers import RunningServer, start_revurb

TIMEOUT = 5.0
HEALTH = {"health": "OK"}


class Raw:
    """One TCP connection to the server, reading HTTP/1.1 responses by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), TIMEOUT)

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(b"\r\n"), TIMEOUT)

    async def exactly(self, size: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(size), TIMEOUT)

    async def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status = int((await self.line()).split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await self.line()) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if head_only:
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, await self.exactly(int(headers["content-length"]))
        assert headers.get("transfer-encoding") == "chunked", headers
        body = b""
        while size := int(await self.line(), 16):
            body += await self.exactly(size)
            assert await self.exactly(2) == b"\r\n"
        assert await self.exactly(2) == b"\r\n"
        return status, headers, body

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), TIMEOUT) == b""


#: These tests are about HttpProtocol itself, so they pin the fast path whatever mode the
#: suite runs in (CI also runs the integration tests with REVURB_FAST_PATH=0).
FAST_PATH = {"REVURB_FAST_PATH": "1"}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = start_revurb(FAST_PATH)
    yield running
    running.stop()


@pytest.fixture
async def raw(server: RunningServer) -> AsyncIterator[Raw]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(server.host, server.port), TIMEOUT)
    yield Raw(reader, writer)
    writer.close()


def get(path: str, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed_target(server: RunningServer, method: str, path: str, body: bytes = b"") -> str:
    full = f"/apps/{server.app_id}{path}"
    query = signed_params(method, full, server.key, server.secret, body)
    return full + "?" + "&".join(f"{name}={value}" for name, value in query.items())


def as_json(body: bytes) -> Any:
    return json.loads(body)


async def test_keep_alive_answers_several_requests_on_one_socket(raw: Raw, server: RunningServer) -> None:
    for _ in range(3):
        await raw.send(get("/up"))
        status, headers, body = await raw.response()
        assert (status, as_json(body)) == (200, HEALTH)
        assert headers["content-type"] == "application/json"
        assert "connection" not in headers
    await raw.send(get(signed_target(server, "GET", "/channels/presence-none")))
    status, _, body = await raw.response()
    assert (status, as_json(body)) == (200, {"occupied": False})


async def test_pipelined_requests_are_answered_in_order(raw: Raw, server: RunningServer) -> None:
    payload = json.dumps({"name": "ping", "channels": ["pipelined"], "data": "{}"}).encode()
    trigger = (
        f"POST {signed_target(server, 'POST', '/events', payload)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    await raw.send(get("/up") + get("/nowhere") + trigger + get(signed_target(server, "GET", "/channels/x")))

    answers = [await raw.response() for _ in range(4)]

    assert [(status, body) for status, _, body in answers] == [
        (200, b'{"health":"OK"}'),
        (404, b'{"error":"Not Found"}'),
        (200, b"{}"),
        (200, b'{"occupied":false}'),
    ]


async def test_a_chunked_request_body_is_read_in_full(raw: Raw, server: RunningServer) -> None:
    payload = json.dumps({"name": "chunky", "channels": ["chunked-body"], "data": "x" * 300}).encode()
    head = (
        f"POST {signed_target(server, 'POST', '/events', payload)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    await raw.send(head)
    for start in range(0, len(payload), 100):
        piece = payload[start : start + 100]
        await raw.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        await asyncio.sleep(0.01)
    await raw.send(b"0\r\n\r\n")

    status, _, body = await raw.response()
    assert (status, body) == (200, b"{}")


async def test_expect_100_continue_is_answered_before_the_body(raw: Raw, server: RunningServer) -> None:
    payload = json.dumps({"name": "later", "channels": ["continue"], "data": "{}"}).encode()
    await raw.send(
        (
            f"POST {signed_target(server, 'POST', '/events', payload)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
    )
    assert await raw.line() == b"HTTP/1.1 100 Continue\r\n"
    assert await raw.line() == b"\r\n"
    await raw.send(payload)

    status, _, body = await raw.response()
    assert (status, body) == (200, b"{}")


async def test_head_sends_headers_without_a_body(raw: Raw) -> None:
    await raw.send(get("/up").replace(b"GET", b"HEAD", 1))
    status, headers, _ = await raw.response(head_only=True)
    assert (status, headers["content-length"]) == (200, str(len(b'{"health":"OK"}')))

    # No body bytes followed: the next response starts right away on the same socket.
    await raw.send(get("/up"))
    status, _, body = await raw.response()
    assert (status, body) == (200, b'{"health":"OK"}')


async def test_http_1_0_gets_its_answer_then_the_socket_closes(raw: Raw) -> None:
    await raw.send(get("/up", version="1.0"))
    status, headers, body = await raw.response()
    assert (status, body, headers["connection"]) == (200, b'{"health":"OK"}', "close")
    assert await raw.closed()


def trigger_request(server: RunningServer, channel: str, version: str = "1.1") -> bytes:
    payload = json.dumps({"name": "direct", "channels": [channel], "data": "{}"}).encode()
    return (
        f"POST {signed_target(server, 'POST', '/events', payload)} HTTP/{version}\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


async def test_an_api_answer_is_one_complete_response(raw: Raw, server: RunningServer) -> None:
    # A complete API request skips the ASGI messages; its response still carries every header.
    await raw.send(trigger_request(server, "direct-1") + trigger_request(server, "direct-2", version="1.0"))

    first = await raw.response()
    second = await raw.response()

    assert first[0] == second[0] == 200
    assert first[2] == second[2] == b"{}"
    assert sorted(first[1]) == ["content-length", "content-type", "date"]
    assert (first[1]["content-type"], first[1]["content-length"]) == ("application/json", "2")
    assert sorted(second[1]) == ["connection", "content-length", "content-type", "date"]
    assert second[1]["connection"] == "close"
    assert await raw.closed()


async def test_head_on_an_api_route_gets_the_405_head_without_its_body(
    raw: Raw, server: RunningServer
) -> None:
    await raw.send(f"HEAD {signed_target(server, 'HEAD', '/events')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, headers, _ = await raw.response(head_only=True)
    error = b'{"error":"Method HEAD is not allowed here: use POST"}'
    assert (status, headers["allow"], headers["content-length"]) == (405, "POST", str(len(error)))

    await raw.send(get("/up"))
    status, _, body = await raw.response()
    assert (status, body) == (200, b'{"health":"OK"}')


async def test_connection_close_is_honoured(raw: Raw) -> None:
    await raw.send(get("/up", "Connection: close"))
    status, headers, body = await raw.response()
    assert (status, body, headers["connection"]) == (200, b'{"health":"OK"}', "close")
    assert await raw.closed()


async def test_a_malformed_request_gets_400_and_close(raw: Raw) -> None:
    await raw.send(b"GET /up HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n")
    status, headers, body = await raw.response()
    assert (status, body, headers["connection"]) == (400, b"Invalid HTTP request received.", "close")
    assert await raw.closed()


async def test_an_oversized_request_head_gets_431_and_close(raw: Raw) -> None:
    await raw.send(get("/up", "X-Big: " + "a" * 70_000))
    status, headers, body = await raw.response()
    assert (status, body, headers["connection"]) == (431, b"Request header too large.", "close")
    assert await raw.closed()


async def test_a_websocket_upgrade_after_a_request_on_a_keep_alive_socket(
    raw: Raw, server: RunningServer
) -> None:
    await raw.send(get("/up"))
    status, _, body = await raw.response()
    assert (status, body) == (200, b'{"health":"OK"}')

    await raw.send(
        get(
            f"/app/{server.key}?protocol=7&client=js&version=8.4.0&flash=false",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        )
    )
    status, headers, _ = await raw.response(head_only=True)
    assert (status, headers["sec-websocket-accept"]) == (101, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    first, length = await raw.exactly(2)
    assert (first, length < 126) == (0x81, True)
    frame = as_json(await raw.exactly(length))
    assert frame["event"] == "pusher:connection_established"
    assert set(as_json(frame["data"])) == {"socket_id", "activity_timeout"}


async def test_shutdown_closes_idle_keep_alive_sockets_at_once(start_server: StartServer) -> None:
    running: RunningServer = start_server(FAST_PATH)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(running.host, running.port), TIMEOUT)
    raw = Raw(reader, writer)
    try:
        await raw.send(get("/up"))
        status, _, body = await raw.response()
        assert (status, body) == (200, b'{"health":"OK"}')

        running.process.send_signal(signal.SIGTERM)
        # Well before uvicorn's 5 s keep-alive timeout: the server closed the idle socket itself.
        assert await asyncio.wait_for(reader.read(1), 3.0) == b""
        # uvicorn re-raises the signal once it has shut down.
        assert await asyncio.to_thread(running.process.wait, TIMEOUT) == -signal.SIGTERM
    finally:
        writer.close()


async def test_a_large_streamed_body_is_refused_as_it_passes_the_limit_and_the_socket_closed(
    raw: Raw, server: RunningServer
) -> None:
    payload = json.dumps({"name": "big", "channels": ["large-body"], "data": "x" * 300_000}).encode()
    await raw.send(
        (
            f"POST {signed_target(server, 'POST', '/events', payload)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    # Two pieces take the body over the 10,000-byte limit; the rest is never read.
    for start in range(0, 20_000, 10_000):
        await raw.send(b"%x\r\n%s\r\n" % (10_000, payload[start : start + 10_000]))

    status, headers, body = await raw.response()
    assert (status, as_json(body)) == (413, {"error": "The request body is larger than 10000 bytes"})
    assert headers["connection"] == "close"
    assert await raw.closed()
