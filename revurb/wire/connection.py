"""The socket as the protocol core sees it; the server layer supplies how bytes are written."""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

#: The app a socket belongs to (`revurb.apps.App`, which sits above this layer).
AppT = TypeVar("AppT")


def generate_socket_id() -> str:
    """Two random positive integers joined by a dot, as Pusher and Reverb issue them."""
    return f"{secrets.randbelow(999_999_999) + 1}.{secrets.randbelow(999_999_999) + 1}"


class Connection(ABC, Generic[AppT]):
    """One client socket: its app, identity, subscriptions, liveness and client-event window."""

    __slots__ = (
        "app",
        "socket_id",
        "channels",
        "user_id",
        "last_seen",
        "pinged_at",
        "closed",
        "close_code",
        "window_start",
        "window_count",
    )

    def __init__(self, app: AppT, socket_id: str | None = None) -> None:
        self.app = app
        self.socket_id = socket_id or generate_socket_id()
        #: Names of the channels this socket is subscribed to on this node.
        self.channels: set[str] = set()
        #: The id of the user this socket signed in as (`pusher:signin`).
        self.user_id: str | None = None
        self.last_seen = time.monotonic()
        self.pinged_at: float | None = None
        self.closed = False
        #: The close code this server sent, if it closed the socket (None: the client closed it).
        self.close_code: int | None = None
        #: The client-event rate limit's current window: when it began, events in it so far.
        self.window_start = 0.0
        self.window_count = 0

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
