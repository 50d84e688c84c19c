"""Applications (key, secret and per-app options) and the providers that look them up."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

ClientEventsFrom = Literal["members", "all", "none"]
CLIENT_EVENTS_FROM: tuple[ClientEventsFrom, ...] = ("members", "all", "none")


#: The webhook kinds a server sends (Pusher's names). `subscription_count` only goes to webhooks
#: that name it in `event_types`: it fires on every subscribe and unsubscribe.
WEBHOOK_KINDS = (
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
    "subscription_count",
)
#: Kinds a webhook without `event_types` receives.
DEFAULT_WEBHOOK_KINDS = WEBHOOK_KINDS[:-1]


@dataclass(frozen=True, slots=True)
class Webhook:
    """A URL that receives the app's webhook events (`DEFAULT_WEBHOOK_KINDS` unless `event_types`
    is set), optionally only for channels whose names start or end with the given text (Soketi's
    `filter`), with extra request `headers`."""

    url: str
    event_types: tuple[str, ...] = ()
    channel_name_starts_with: str | None = None
    channel_name_ends_with: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def wants(self, kind: str, channel: str | None) -> bool:
        """Whether an event of `kind` on `channel` goes to this URL."""
        if kind not in (self.event_types or DEFAULT_WEBHOOK_KINDS):
            return False
        if channel is None:
            return True
        starts, ends = self.channel_name_starts_with, self.channel_name_ends_with
        return (starts is None or channel.startswith(starts)) and (ends is None or channel.endswith(ends))


@dataclass(frozen=True, slots=True)
class App:
    """One Pusher application: credentials and the limits its sockets live under."""

    id: str
    key: str
    secret: str = field(repr=False)
    allowed_origins: tuple[str, ...] = ("*",)
    ping_interval: float = 60.0
    activity_timeout: int = 30
    max_connections: int | None = None
    max_message_size: int = 10_000
    accept_client_events_from: ClientEventsFrom = "members"
    rate_limiting: bool = True
    rate_limit_max_attempts: int = 10
    rate_limit_decay_seconds: float = 1.0
    subscription_count: bool = False
    subscription_count_interval: float = 1.0
    max_presence_members: int = 100
    max_presence_member_size: int = 2_048
    max_event_data_size: int = 10_240
    webhooks: tuple[Webhook, ...] = ()
    #: Events the HTTP API accepts per second (each channel of an event counts, as in Soketi's
    #: `max_backend_events_per_sec`); over it, 429. None: no limit.
    max_backend_events_per_sec: int | None = None


@runtime_checkable
class AppProvider(Protocol):
    """Where apps come from. Implement this to load them from a database (`apps.provider`)."""

    async def all(self) -> Sequence[App]: ...

    async def find_by_id(self, app_id: str) -> App | None: ...

    async def find_by_key(self, key: str) -> App | None: ...


class ConfigAppProvider:
    """Apps listed in configuration, indexed by id and by key."""

    def __init__(self, apps: Iterable[App]) -> None:
        self._apps = tuple(apps)
        self._by_id = {app.id: app for app in self._apps}
        self._by_key = {app.key: app for app in self._apps}

    async def all(self) -> Sequence[App]:
        return self._apps

    async def find_by_id(self, app_id: str) -> App | None:
        return self._by_id.get(app_id)

    def by_id(self, app_id: str) -> App | None:
        """`find_by_id` without awaiting: configured apps are all in memory."""
        return self._by_id.get(app_id)

    async def find_by_key(self, key: str) -> App | None:
        return self._by_key.get(key)


def import_provider(spec: str) -> object:
    """The object an import path names: `package.module:attribute` or `package.module.attribute`."""
    module_name, colon, attribute = spec.partition(":")
    if not colon:
        module_name, _, attribute = spec.rpartition(".")
    if not module_name or not attribute:
        raise ValueError("expected an import path like package.module:ClassName")
    return getattr(importlib.import_module(module_name), attribute)


def create_provider(spec: str | None, apps: Iterable[App], settings: object) -> AppProvider:
    """The provider `apps.provider` names: `None`/`config` lists `apps`; an import path names an
    `AppProvider` instance, or a class or factory called with the settings (or with nothing)."""
    if spec is None or spec == "config":
        return ConfigAppProvider(apps)
    target = import_provider(spec)
    if isinstance(target, AppProvider) and not isinstance(target, type):
        return target
    if not callable(target):
        raise TypeError(f"{spec} is neither an AppProvider nor a class or function that makes one")
    try:
        takes_settings = bool(inspect.signature(target).parameters)
    except (TypeError, ValueError):  # builtins may have no signature: pass the settings
        takes_settings = True
    provider = target(settings) if takes_settings else target()
    if not isinstance(provider, AppProvider):
        raise TypeError(f"{spec} made {provider!r}, which lacks all / find_by_id / find_by_key")
    return provider
