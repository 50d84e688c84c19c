"""Fake apps for the transport's unit tests: small ASGI apps that record, a fake transport hook
(`FastPath`) and a fake frame handler. Nothing here is Revurb's app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from revurb.transport.hook import DEFAULT_LIMITS, FastPath, HttpRoute, Limits, RequestHead, WebSocketRoute

Scope = MutableMapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def read_body(receive: Receive) -> bytes:
    """The whole request body, however many `http.request` messages carry it."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def respond(send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """A response with a `content-length`, in two messages (head, then body)."""
    head = [(b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class EchoApp:
    """Answers every HTTP request with `{method} {path} {body}`; records what it saw."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.scopes.append(scope)
        body = await read_body(receive)
        self.bodies.append(body)
        await respond(send, 200, b"%s %s %s" % (scope["method"].encode(), scope["path"].encode(), body))


class SocketApp:
    """A plain ASGI WebSocket app: accepts (unless told not to) and records every message it gets."""

    def __init__(self, accept: bool = True, echo: bool = False) -> None:
        self.accept = accept
        self.echo = echo
        self.scope: Scope | None = None
        self.received: list[Message] = []
        self.send: Send | None = None
        self.receive: Receive | None = None
        self.done = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        self.scope, self.send, self.receive = scope, send, receive
        try:
            connect = await receive()
            self.received.append(connect)
            if not self.accept:
                return
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                self.received.append(message)
                if message["type"] == "websocket.disconnect":
                    return
                if self.echo:
                    await send(
                        {"type": "websocket.send", **{k: v for k, v in message.items() if k != "type"}}
                    )
        finally:
            self.done.set()


class RecordingHandler:
    """A `FrameHandler`: what the direct path hands a socket's messages to."""

    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.disconnects = 0
        self.shutdowns = 0

    def on_message(self, data: str | bytes) -> None:
        self.messages.append(data)

    def on_disconnect(self) -> None:
        self.disconnects += 1

    def on_shutdown(self) -> None:
        self.shutdowns += 1


class FakeFastPath:
    """A `FastPath` whose routes the test fills in by path; other paths go through ASGI."""

    def __init__(self, eager: bool = False, limits: Limits = DEFAULT_LIMITS) -> None:
        self.eager = eager
        self.limits = limits
        self.http_routes: dict[str, HttpRoute] = {}
        self.websocket_routes: dict[str, WebSocketRoute] = {}
        self.asked: list[str] = []

    def http_route(self, head: RequestHead) -> HttpRoute | None:
        self.asked.append(head.path)
        return self.http_routes.get(head.path)

    def websocket_route(self, scope: Scope) -> WebSocketRoute | None:
        self.asked.append(scope["path"])
        return self.websocket_routes.get(scope["path"])


class HookedApp:
    """An ASGI app that offers the transport hook; requests its routes do not take go to `fallback`."""

    def __init__(self, fast_path: FastPath, fallback: ASGIApp) -> None:
        self.transport_fast_path = fast_path
        self.fallback = fallback
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await self.fallback(scope, receive, send)
