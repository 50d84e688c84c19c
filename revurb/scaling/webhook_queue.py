"""Webhook events recorded in this process: the memory backend's whole queue.

The memory backend decides occupancy and membership changes itself (it is the whole cluster), so
it records their events here, next to the events this node alone sees; the webhook sender drains
the queue at once into its own bounded per-URL queues, so this one stays short.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from revurb.scaling.base import WebhookEntry, WebhookEvent


def occupancy(channel: str, occupied: bool) -> WebhookEvent:
    return {"name": "channel_occupied" if occupied else "channel_vacated", "channel": channel}


def membership(channel: str, user_id: str, added: bool) -> WebhookEvent:
    return {"name": "member_added" if added else "member_removed", "channel": channel, "user_id": user_id}


class LocalWebhooks:
    """Events in the order they happened, each with an id unique to this process (`node`-number)."""

    def __init__(self, node: str) -> None:
        self.enabled = False
        self._node = node
        self._entries: deque[WebhookEntry] = deque()
        self._ready = asyncio.Event()
        self._next = 0

    def put(self, app_id: str, event: WebhookEvent) -> None:
        if not self.enabled:
            return
        self._next += 1
        self._entries.append(WebhookEntry(f"{self._node}-{self._next}", app_id, event))
        self._ready.set()

    async def take(self, wait: float) -> list[WebhookEntry]:
        if not self._entries:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait)
        self._ready.clear()
        taken = list(self._entries)
        self._entries.clear()
        return taken
