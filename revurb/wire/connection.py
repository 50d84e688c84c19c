"""The socket as the protocol core sees it; the server layer supplies how bytes are written."""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revurb.apps import App


def generate_socket_id() -> str:
    """Two random positive integers joined by a dot, as Pusher and Reverb issue them."""
    return f"{secrets.randbelow(999_999_999) + 1}.{secrets.randbelow(999_999_999) + 1}"


class Connection(ABC):
    """One client socket: identity, subscriptions, liveness and client-event rate limiting."""

    __slots__ = (
        "app",
        "socket_id",
        "channels",
        "user_id",
        "last_seen",
        "pinged_at",
        "closed",
        "_window_start",
        "_window_count",
    )

    def __init__(self, app: App, socket_id: str | None = None) -> None:
        self.app = app
        self.socket_id = socket_id or generate_socket_id()
        #: Names of the channels this socket is subscribed to on this node.
        self.channels: set[str] = set()
        #: The id of the user this socket signed in as (`pusher:signin`).
        self.user_id: str | None = None
        self.last_seen = time.monotonic()
        self.pinged_at: float | None = None
        self.closed = False
        self._window_start = 0.0
        self._window_count = 0

    @abstractmethod
    def send(self, frame: str) -> None:
        """Queue one text frame; never blocks. Implementations bound what they buffer."""

    @staticmethod
    def prepare(frame: str) -> Any:
        """Turn a frame into what `send_prepared` writes; done once per broadcast, not per socket."""
        return frame

    def send_prepared(self, prepared: Any) -> None:
        """Send what `prepare` made of a frame (by default the frame itself)."""
        self.send(prepared)

    @abstractmethod
    def close(self, code: int, reason: str = "") -> None:
        """Close the socket with a WebSocket close code; never blocks."""

    def touch(self) -> None:
        """Record activity: any frame from the client proves it is alive."""
        self.last_seen = time.monotonic()
        self.pinged_at = None

    def allow_client_event(self, now: float) -> bool:
        """Fixed-window rate limit on client events (Pusher: 10 a second)."""
        app = self.app
        if not app.rate_limiting:
            return True
        if now - self._window_start >= app.rate_limit_decay_seconds:
            self._window_start = now
            self._window_count = 0
        self._window_count += 1
        return self._window_count <= app.rate_limit_max_attempts
