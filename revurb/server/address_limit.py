"""The optional cap on open WebSocket connections from one client address (for a public edge).

Counted per server process, from the socket's admission to its end; over the cap a socket gets
`pusher:error` 4100 (reconnect after backing off) and is closed. The address is the ASGI scope's
client: the peer, or what a trusted proxy says in `X-Forwarded-For` (uvicorn's `forwarded_allow_ips`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from revurb.transport.hook import FrameHandler
from revurb.wire import codes
from revurb.wire.codes import ErrorCode
from revurb.wire.errors import PusherError

OVER_CAP = PusherError(ErrorCode.OVER_CAPACITY, codes.TOO_MANY_FROM_ADDRESS, True)


def client_address(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class AddressLimit:
    """Open sockets per client address; `cap` None counts nothing."""

    __slots__ = ("cap", "open")

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.open: dict[str, int] = {}

    def take(self, address: str | None) -> bool:
        """Count one more socket from `address`, unless it is at the cap (then False)."""
        if self.cap is None or address is None:
            return True
        count = self.open.get(address, 0)
        if count >= self.cap:
            return False
        self.open[address] = count + 1
        return True

    def give_back(self, address: str | None) -> None:
        if self.cap is None or address is None:
            return
        count = self.open.get(address, 0) - 1
        if count > 0:
            self.open[address] = count
        else:
            self.open.pop(address, None)

    def handler(self, handler: FrameHandler, address: str | None) -> FrameHandler:
        """`handler`, made to give its address's place back when its socket ends."""
        if self.cap is None or address is None:
            return handler
        return _Counted(handler, self, address)


class _Counted:
    """A frame handler that gives back its socket's place when the socket ends."""

    __slots__ = ("inner", "limit", "address")

    def __init__(self, inner: FrameHandler, limit: AddressLimit, address: str) -> None:
        self.inner = inner
        self.limit = limit
        self.address = address

    def on_message(self, data: str | bytes) -> None:
        self.inner.on_message(data)

    def on_disconnect(self) -> None:
        self.limit.give_back(self.address)
        self.inner.on_disconnect()

    def on_shutdown(self) -> None:
        self.inner.on_shutdown()
