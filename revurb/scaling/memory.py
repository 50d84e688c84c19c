"""The single-process backend: cluster state is this process's `Mirror`; there is no bus."""

from __future__ import annotations

from typing import Any

from revurb.scaling.base import (
    CACHE_TTL_SECONDS,
    Backend,
    BusMessage,
    CachedEvent,
    Receipt,
    WebhookEntry,
    WebhookEvent,
)
from revurb.scaling.mirror import Mirror
from revurb.scaling.webhook_queue import LocalWebhooks, membership, occupancy


class MemoryBackend(Backend):
    """Counts, rosters and cached events of this one process."""

    has_bus = False

    def __init__(self, cache_ttl: float = CACHE_TTL_SECONDS) -> None:
        super().__init__()
        self._cache_ttl_ms = int(cache_ttl * 1000)
        self._mirror = Mirror()
        self._webhooks = LocalWebhooks(self.node_id)

    def publish(self, message: BusMessage) -> Receipt:
        return None  # no bus: the caller delivers to this node, which is the whole cluster

    async def add_connection(self, app_id: str) -> int:
        return self._mirror.add_connection(app_id, 1)

    async def remove_connection(self, app_id: str) -> None:
        self._mirror.add_connection(app_id, -1)

    async def connection_count(self, app_id: str) -> int:
        return self._mirror.connections.get(app_id, 0)

    async def add_subscriber(self, app_id: str, channel: str) -> int:
        count = self._mirror.add_subscriber(app_id, channel, 1)
        if count == 1 and self._webhooks.enabled:  # no event built when no app has webhooks
            self._webhooks.put(app_id, occupancy(channel, True))
        return count

    async def remove_subscriber(self, app_id: str, channel: str) -> int:
        # Read only to tell a vacated channel's webhook, when some app has webhooks.
        had = self._webhooks.enabled and self._mirror.subscription_count(app_id, channel)
        count = self._mirror.add_subscriber(app_id, channel, -1)
        if had and not count:
            self._webhooks.put(app_id, occupancy(channel, False))
        return count

    async def subscription_count(self, app_id: str, channel: str) -> int:
        return self._mirror.subscription_count(app_id, channel)

    async def occupied_channels(self, app_id: str) -> dict[str, int]:
        return self._mirror.occupied(app_id)

    async def add_member(
        self, app_id: str, channel: str, user_id: str, user_info: Any, socket_id: str
    ) -> bool:
        added = self._mirror.add_member(app_id, channel, user_id, user_info)
        if added:
            self._webhooks.put(app_id, membership(channel, user_id, True))
        return added

    async def remove_member(self, app_id: str, channel: str, user_id: str) -> bool:
        removed = self._mirror.remove_member(app_id, channel, user_id)
        if removed:
            self._webhooks.put(app_id, membership(channel, user_id, False))
        return removed

    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        return self._mirror.roster(app_id, channel)

    async def cache_put(self, app_id: str, channel: str, frame: str) -> None:
        self._mirror.put_cache(app_id, channel, frame, self._cache_ttl_ms)

    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None:
        found = self._mirror.get_cache(app_id, channel)
        if found is None:
            return None
        return {"frame": found[0], "ttl": found[1] // 1000}

    def enable_webhooks(self, claim_after: float) -> None:
        self._webhooks.enabled = True

    def webhook(self, app_id: str, event: WebhookEvent) -> None:
        self._webhooks.put(app_id, event)

    async def take_webhooks(self, wait: float) -> list[WebhookEntry]:
        return await self._webhooks.take(wait)
