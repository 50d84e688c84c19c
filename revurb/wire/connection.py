"""The socket as the protocol core sees it; the server layer supplies how bytes are written."""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

#: The app a socket belongs to (`revurb.apps.App`, which sits above this layer).
AppT = TypeVar("AppT")


#: Random bytes read from the system at a time for socket ids: one read per 256 ids, not two per id.
_RANDOM_POOL_SIZE = 4096
_ID_RANGE = 999_999_999
_random_pool = memoryview(b"")


def _forget_random_pool() -> None:
    """A forked child must not issue its parent's ids."""
    global _random_pool
    _random_pool = memoryview(b"")


os.register_at_fork(after_in_child=_forget_random_pool)


def generate_socket_id() -> str:
    """Two random positive integers joined by a dot, as Pusher and Reverb issue them.

    Each is 64 bits of the system's randomness (`os.urandom`, as `secrets` uses), read in blocks,
    reduced to 1..999,999,999 (a bias under one in ten billion).
    """
    global _random_pool
    pool = _random_pool
    if len(pool) < 16:
        pool = memoryview(os.urandom(_RANDOM_POOL_SIZE))
    first = int.from_bytes(pool[:8], "big") % _ID_RANGE + 1
    second = int.from_bytes(pool[8:16], "big") % _ID_RANGE + 1
    _random_pool = pool[16:]
    return f"{first}.{second}"


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
