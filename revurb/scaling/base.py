"""The backend interface: cross-node delivery plus the state that must hold cluster-wide."""

from __future__ import annotations

import asyncio
import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, Protocol, TypedDict

#: Pusher keeps a cache channel's last event this long, subscribers or not.
CACHE_TTL_SECONDS = 30 * 60

#: The position of a presence change in the cluster's order: (milliseconds, sequence), as Redis
#: stream ids are. Later changes have larger versions, also after Redis lost its data.
Version = tuple[int, int]
NO_VERSION: Version = (0, 0)


class BusMessage(TypedDict):
    """What one node tells every node. `frame` is the encoded event, sent as is.

    `member` messages carry a presence change (`user_id`, `added`) at the bus position `version`.
    `node` and `seq` name the producer and its message number, so a re-sent message is dropped.
    """

    type: Literal["event", "terminate", "count", "member"]
    app: str
    channel: NotRequired[str]
    frame: NotRequired[str]
    except_socket_id: NotRequired[str | None]
    user_id: NotRequired[str]
    added: NotRequired[bool]
    version: NotRequired[Version]
    node: NotRequired[str]
    seq: NotRequired[int]


class CachedEvent(TypedDict):
    frame: str
    ttl: int


@dataclass(frozen=True, slots=True)
class Roster:
    """A presence channel's members (user id to info) and the version they are at (None: no bus)."""

    users: dict[str, Any]
    version: Version | None = None


#: What `Backend.publish` answers: None when the caller must deliver the message to this node's
#: sockets itself (no bus carries it back), else a future done once the message has its place in
#: the cluster's order (a 2xx to a trigger waits for it).
Receipt = asyncio.Future[None] | None


class BusStats(TypedDict):
    """The bus as metrics read it; counters only grow. A backend without a bus reports zeros."""

    published: int
    received: int
    #: Seconds the oldest message waiting to be published has waited (0 when none waits).
    lag_seconds: float
    #: How old the newest bus entry this node read last was when it delivered it (0 when caught up).
    read_lag_seconds: float
    queued: int
    dropped: int


class WebhookEvent(TypedDict):
    """One event of a webhook body, in Pusher's shape (`name` is its kind)."""

    name: str
    channel: str
    user_id: NotRequired[str]
    event: NotRequired[str]
    data: NotRequired[str]
    socket_id: NotRequired[str]
    subscription_count: NotRequired[int]


@dataclass(frozen=True, slots=True)
class WebhookEntry:
    """A webhook event waiting to be delivered. `id` names it for good (the Redis stream entry id,
    or a number in this process), so a delivery that is retried or taken over keeps it."""

    id: str
    app_id: str
    event: WebhookEvent


class Node(Protocol):
    """What a backend calls back into: this node's registry of app managers."""

    def on_bus_message(self, message: BusMessage) -> None:
        """Deliver a message from the bus to the sockets here."""

    async def reconcile(self) -> bool:
        """After an outage: bring what this node's presence sockets were told in line with Redis;
        False when some must be tried again later."""


class Backend(ABC):
    """Cluster state and the bus. `memory` keeps it in this process; `redis` shares it."""

    #: Whether `publish` sends messages to other nodes (False: this process is the whole cluster).
    has_bus = True

    def __init__(self) -> None:
        self.node_id = secrets.token_hex(8)
        #: Run first by a `stop()` that lets go of shared state (Redis): parts that still need the
        #: backend to finish (the webhook sender's acknowledgements) finish there.
        self.before_stop: list[Callable[[], Awaitable[None]]] = []

    async def start(self, node: Node) -> None:
        """Begin listening for other nodes' messages and keeping this node registered."""
        return None

    async def stop(self) -> None:
        """Stop listening and release what this node holds."""
        return None

    @abstractmethod
    def publish(self, message: BusMessage) -> Receipt:
        """Send a message to every node in the cluster's order; never blocks (see `Receipt`)."""

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
    async def add_member(
        self, app_id: str, channel: str, user_id: str, user_info: Any, socket_id: str
    ) -> bool:
        """Count one more socket of a user on a presence channel.

        True when the caller must announce the user's arrival to this node's sockets itself (the
        user is new and no bus announces it); a bus backend announces it to every node on its own.
        """

    @abstractmethod
    async def remove_member(self, app_id: str, channel: str, user_id: str) -> bool:
        """Count one socket of a user less; True when the caller must announce the departure here."""

    @abstractmethod
    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        """The presence roster: user id to user info, each user once."""

    async def roster(self, app_id: str, channel: str) -> Roster | None:
        """The roster with its version, for a subscriber; None while the cluster's is unknown."""
        return Roster(await self.members(app_id, channel))

    @abstractmethod
    async def cache_put(self, app_id: str, channel: str, frame: str) -> None: ...

    @abstractmethod
    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None: ...

    # Webhooks: the backend decides occupancy and membership changes, so it records their events;
    # the sender (`revurb.webhooks`) takes them from here and says when they are delivered.

    @abstractmethod
    def enable_webhooks(self, claim_after: float) -> None:
        """Start recording webhook events (nothing is recorded until some app has webhooks).
        `claim_after`: seconds before another node takes over events this one holds (scaling)."""

    @abstractmethod
    def webhook(self, app_id: str, event: WebhookEvent) -> None:
        """Record an event this node alone sees (a client event, a cache miss, a new count)."""

    @abstractmethod
    async def take_webhooks(self, wait: float) -> list[WebhookEntry]:
        """Events for this node to deliver, oldest first; waits up to `wait` seconds for some."""

    async def hold_webhooks(self, ids: list[str]) -> None:
        """Renew this node's hold on events it is still delivering (so no other node takes them)."""
        return None

    async def ack_webhooks(self, ids: list[str]) -> None:
        """Events delivered (or given up): nobody needs to deliver them again."""
        return None

    def health(self) -> dict[str, Any]:
        """Extra fields for `/up`; a degraded backend says so here."""
        return {}

    def bus_stats(self) -> BusStats:
        """Counts of the bus for metrics (read on a scrape, never on the delivery path)."""
        return {
            "published": 0,
            "received": 0,
            "lag_seconds": 0.0,
            "read_lag_seconds": 0.0,
            "queued": 0,
            "dropped": 0,
        }
