"""A raw Pusher WebSocket client for exact-frame tests, plus an independent signer."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

RECV_TIMEOUT = 5.0


def sign(secret: str, string: str) -> str:
    return hmac.new(secret.encode(), string.encode(), hashlib.sha256).hexdigest()


def channel_auth(key: str, secret: str, socket_id: str, channel: str, channel_data: str | None = None) -> str:
    string = f"{socket_id}:{channel}" if channel_data is None else f"{socket_id}:{channel}:{channel_data}"
    return f"{key}:{sign(secret, string)}"


class PusherSocket:
    """One WebSocket speaking the Pusher protocol; every receive is guarded by a timeout."""

    def __init__(self, ws: ClientConnection, key: str, secret: str) -> None:
        self.ws = ws
        self.key = key
        self.secret = secret
        self.socket_id = ""

    @classmethod
    async def connect(
        cls, url: str, key: str, secret: str, handshake: bool = True, **kwargs: Any
    ) -> PusherSocket:
        kwargs.setdefault("compression", None)
        ws = await asyncio.wait_for(websockets.connect(url, **kwargs), RECV_TIMEOUT)
        client = cls(ws, key, secret)
        if handshake:
            established = await client.recv()
            assert established["event"] == "pusher:connection_established", established
            client.socket_id = json.loads(established["data"])["socket_id"]
        return client

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv_raw(self, timeout: float = RECV_TIMEOUT) -> str | bytes:
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await self.recv_raw(timeout))
        return frame

    async def recv_event(self, event: str, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        """Skip frames until one with this event name arrives."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame.get("event") == event:
                    return frame

    async def assert_silent(self, within: float = 0.3) -> None:
        try:
            frame = await asyncio.wait_for(self.ws.recv(), within)
        except TimeoutError:
            return
        raise AssertionError(f"expected no frame, got {frame!r}")

    async def closed_with(self, timeout: float = RECV_TIMEOUT) -> tuple[int | None, str | None]:
        """Read until the server closes; returns its close code and reason."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except websockets.ConnectionClosed as closed:
            if closed.rcvd is None:
                return None, None
            return closed.rcvd.code, closed.rcvd.reason
        raise AssertionError("unreachable")

    async def subscribe(self, channel: str, auth: str | None = None, channel_data: str | None = None) -> None:
        data: dict[str, Any] = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        await self.send({"event": "pusher:subscribe", "data": data})

    def auth_for(self, channel: str, channel_data: str | None = None) -> str:
        return channel_auth(self.key, self.secret, self.socket_id, channel, channel_data)

    async def join(self, channel: str, channel_data: str | None = None) -> dict[str, Any]:
        """Subscribe with valid auth and return `pusher_internal:subscription_succeeded`."""
        auth = self.auth_for(channel, channel_data) if channel.startswith(("private-", "presence-")) else None
        await self.subscribe(channel, auth, channel_data)
        return await self.recv_event("pusher_internal:subscription_succeeded")

    async def close(self) -> None:
        await self.ws.close()


def unique(prefix: str = "") -> str:
    """A channel name no other test uses."""
    import uuid

    return f"{prefix}{uuid.uuid4().hex[:10]}"


def dumps(value: Any) -> str:
    """JSON exactly as the server encodes it (compact)."""
    return json.dumps(value, separators=(",", ":"))
