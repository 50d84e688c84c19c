"""The backend interface: cross-node delivery plus the state that must hold cluster-wide."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Literal, NotRequired, Protocol, TypedDict

#: Pusher keeps a cache channel's last event this long, subscribers or not.
CACHE_TTL_SECONDS = 30 * 60


class BusMessage(TypedDict):
    """What one node tells the others. `frame` is the encoded event, sent as is."""

    type: Literal["event", "terminate", "count"]
    app: str
    channel: NotRequired[str]
    frame: NotRequired[str]
    except_socket_id: NotRequired[str | None]
    user_id: NotRequired[str]
    node: NotRequired[str]


class CachedEvent(TypedDict):
    frame: str
    ttl: int


class BusStats(TypedDict):
    """The bus as metrics read it; counters only grow. A backend without a bus reports zeros."""

    published: int
    received: int
    #: Seconds the oldest message waiting to be published has waited (0 when none waits).
    lag_seconds: float
    queued: int
    dropped: int


OnMessage = Callable[[BusMessage], None]


class Node(Protocol):
    """What a backend calls back into: this node's registry of app managers."""

    def on_bus_message(self, message: BusMessage) -> None:
        """Deliver another node's message to the sockets here."""

    def on_members_changed(
        self, app_id: str, channel: str, added: dict[str, Any], removed: list[str]
    ) -> None:
        """Announce presence changes the backend found (a dead node swept, a node re-registered)."""


class Backend(ABC):
    """Cluster state and the bus. `memory` keeps it in this process; `redis` shares it."""

    def __init__(self) -> None:
        self.node_id = secrets.token_hex(8)

    async def start(self, node: Node) -> None:
        """Begin listening for other nodes' messages and keeping this node registered."""
        return None

    async def stop(self) -> None:
        """Stop listening and release what this node holds."""
        return None

    @abstractmethod
    def publish(self, message: BusMessage) -> None:
        """Send a message to every other node; never blocks."""

    @abstractmethod
    async def add_connection(self, app_id: str) -> int:
        """Count a new socket; returns the app's connection count including it."""

    @abstractmethod
    async def remove_connection(self, app_id: str) -> None: ...

    @abstractmethod
    async def connection_count(self, app_id: str) -> int: ...

    @abstractmethod
    async def add_subscriber(self, app_id: str, channel: str) -> int:
        """Count a new subscription; returns the channel's subscription count including it."""

    @abstractmethod
    async def remove_subscriber(self, app_id: str, channel: str) -> int:
        """Uncount a subscription; returns what remains (0: the channel is vacated)."""

    @abstractmethod
    async def subscription_count(self, app_id: str, channel: str) -> int: ...

    @abstractmethod
    async def occupied_channels(self, app_id: str) -> dict[str, int]:
        """Every channel with at least one subscriber, with its subscription count."""

    @abstractmethod
    async def add_member(self, app_id: str, channel: str, user_id: str, user_info: Any) -> bool:
        """Count one more socket of a user on a presence channel; True if it is the user's first."""

    @abstractmethod
    async def remove_member(self, app_id: str, channel: str, user_id: str) -> bool:
        """Count one socket of a user less; True if it was the user's last."""

    @abstractmethod
    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        """The presence roster: user id to user info, each user once."""

    @abstractmethod
    async def cache_put(self, app_id: str, channel: str, frame: str) -> None: ...

    @abstractmethod
    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None: ...

    def health(self) -> dict[str, Any]:
        """Extra fields for `/up`; a degraded backend says so here."""
        return {}

    def bus_stats(self) -> BusStats:
        """Counts of the bus for metrics (read on a scrape, never on the delivery path)."""
        return {"published": 0, "received": 0, "lag_seconds": 0.0, "queued": 0, "dropped": 0}
