"""Protocol objects of `revurb.transport` on a fake transport, and the `clock` fixture they run on.

`open_http` / `open_websocket` build a protocol as uvicorn would (a loaded `uvicorn.Config`, a
`ServerState`) and connect it to a `FakeTransport`; the test then feeds bytes to `data_received` and
reads what was written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from revurb.transport.http import HttpProtocol
from revurb.transport.websocket import WebSocketProtocol
from tests.support.fake_transport import ClockLoop, FakeTransport

#: RFC 6455 section 1.3's example key and the accept value it must get.
SAMPLE_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
ACCEPTED = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + SAMPLE_ACCEPT + b"\r\n\r\n"
)


@dataclass
class Opened:
    """A protocol object and what it runs on."""

    transport: FakeTransport
    loop: ClockLoop
    server_state: ServerState
    config: Config

    def tasks(self) -> set[asyncio.Task[None]]:
        return self.server_state.tasks


@dataclass
class OpenedHttp(Opened):
    protocol: HttpProtocol

    def feed(self, data: bytes) -> None:
        self.protocol.data_received(data)


@dataclass
class OpenedWebSocket(Opened):
    protocol: WebSocketProtocol

    def feed(self, data: bytes) -> None:
        self.protocol.data_received(data)


def refused(status: bytes, message: bytes, *headers: bytes) -> bytes:
    """A plain-text refusal as the transport writes it: `status` like b"400 Bad Request"."""
    lines = b"".join(header + b"\r\n" for header in headers)
    return (
        b"HTTP/1.1 %s\r\n%scontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, lines, len(message), message)
    )


def load_config(app: Any, **options: Any) -> Config:
    options.setdefault("log_config", None)
    options.setdefault("lifespan", "off")
    config = Config(app=app, **options)
    config.load()
    return config


def websocket_class(loop: ClockLoop) -> type[WebSocketProtocol]:
    """`WebSocketProtocol` on `loop`: the HTTP protocol makes it with uvicorn's arguments only."""

    class OnClock(WebSocketProtocol):
        __slots__ = ()

        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop or loop.as_loop())

    return OnClock


def open_http(
    app: Any, loop: ClockLoop, server_state: ServerState | None = None, **options: Any
) -> OpenedHttp:
    """An `HttpProtocol` serving `app`, connected; upgrades go to `WebSocketProtocol` on `loop`.
    Connections of one server share its `server_state`."""
    options.setdefault("ws", websocket_class(loop))
    config = load_config(app, **options)
    state = ServerState() if server_state is None else server_state
    protocol = HttpProtocol(config, state, {}, _loop=loop.as_loop())
    transport = FakeTransport()
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    loop.opened.append(transport)
    return OpenedHttp(transport, loop, state, config, protocol)


def open_websocket(app: Any, loop: ClockLoop, **options: Any) -> OpenedWebSocket:
    """A `WebSocketProtocol` serving `app`, connected and waiting for the upgrade request."""
    config = load_config(app, **options)
    state = ServerState()
    protocol = WebSocketProtocol(config, state, {}, _loop=loop.as_loop())
    transport = FakeTransport()
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    loop.opened.append(transport)
    return OpenedWebSocket(transport, loop, state, config, protocol)


def http_request(
    method: str = "GET",
    path: str = "/",
    body: bytes | None = None,
    headers: Sequence[tuple[str, str]] = (),
    version: str = "1.1",
) -> bytes:
    """A request head (and body, with its `content-length`), as a client writes it."""
    lines = [f"{method} {path} HTTP/{version}", "host: example.org"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None:
        lines.append(f"content-length: {len(body)}")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + (body or b"")


def upgrade_request(
    path: str = "/ws",
    key: bytes | None = SAMPLE_KEY,
    headers: Sequence[tuple[str, str]] = (),
    method: str = "GET",
    version: str = "1.1",
    ws_version: str | None = "13",
) -> bytes:
    """An RFC 6455 opening handshake request."""
    lines = [
        f"{method} {path} HTTP/{version}",
        "host: example.org",
        "upgrade: websocket",
        "connection: Upgrade",
    ]
    if key is not None:
        lines.append(f"sec-websocket-key: {key.decode()}")
    if ws_version is not None:
        lines.append(f"sec-websocket-version: {ws_version}")
    lines += [f"{name}: {value}" for name, value in headers]
    return "\r\n".join(lines).encode() + b"\r\n\r\n"


@pytest.fixture
async def clock() -> AsyncIterator[ClockLoop]:
    """The test's loop with a hand-driven clock; afterwards no transport got bytes after its close,
    and no task of a protocol is left running."""
    loop = ClockLoop(asyncio.get_running_loop())
    yield loop
    for transport in loop.opened:
        assert transport.written_after_close == [], transport.written_after_close
    protocols = [transport.protocol for transport in loop.opened]
    leftovers = [
        task
        for protocol in protocols
        for task in getattr(protocol, "tasks", ())
        if isinstance(task, asyncio.Task) and not task.done()
    ]
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.gather(*leftovers, return_exceptions=True)
