"""The sender of one webhook URL of one app: a bounded queue, batches, retries until the horizon.

One task per URL sends one batch at a time, in the order the events were taken, and retries a
failed batch before it sends the next: so a channel's events reach the receiver in order, within
and across requests. Events beyond the queue bound are dropped (counted and logged), so a dead
receiver costs bounded memory; the sockets never wait for any of this.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable

import httpx

from revurb.apps import App, Webhook
from revurb.config import WebhookSettings
from revurb.scaling.base import WebhookEntry, WebhookEvent
from revurb.webhooks import backoff, request
from revurb.webhooks.stats import WebhookStats

logger = logging.getLogger("revurb.webhooks")

#: Events in one request at most (Pusher batches too; receivers parse one body at a time).
MAX_BATCH = 100
#: Status codes that count as delivered.
_OK = range(200, 300)

#: Told the events of a request and its HTTP status (None: no answer), after every attempt.
Report = Callable[[str, list[WebhookEvent], int | None], None]
#: Told the ids of events this sender is done with (delivered, given up, or dropped).
Done = Callable[[list[str]], Awaitable[None]]


class Sender:
    """Delivers one app's events to one URL."""

    def __init__(
        self,
        app: App,
        hook: Webhook,
        client: httpx.AsyncClient,
        settings: WebhookSettings,
        stats: WebhookStats,
        report: Report,
        done: Done,
    ) -> None:
        self.app = app
        self.hook = hook
        self._client = client
        self._settings = settings
        self._stats = stats
        self._report = report
        self._done = done
        self._queue: deque[WebhookEntry] = deque()
        self._ready = asyncio.Event()
        self._rng = random.Random()
        #: Events dropped since the queue was last below its bound (logged once per streak).
        self._dropped = 0
        #: Events taken from the queue and not yet done with.
        self.in_flight = 0
        #: Set on shutdown: a failing batch is not retried any more.
        self.closing = False

    def __len__(self) -> int:
        return len(self._queue) + self.in_flight

    def put(self, entry: WebhookEntry) -> bool:
        """Queue an event; False (and counted) when the queue is full and it is dropped."""
        if len(self._queue) >= self._settings.queue_size:
            self._stats.dropped += 1
            if not self._dropped:
                logger.warning(
                    "webhook queue of app %s for %s is full (%d events): dropping new events",
                    self.app.id,
                    self.hook.url,
                    len(self._queue),
                )
            self._dropped += 1
            return False
        if self._dropped:
            logger.warning(
                "webhook queue of app %s for %s: %d events dropped", self.app.id, self.hook.url, self._dropped
            )
            self._dropped = 0
        self._queue.append(entry)
        self._stats.queued += 1
        self._ready.set()
        return True

    async def run(self) -> None:
        """Send batches for as long as the sender lives (cancelled by its owner)."""
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                if self._settings.batch_window and not self.closing:
                    await asyncio.sleep(self._settings.batch_window)
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
            self.in_flight = len(batch)
            try:
                await self.deliver(batch)
            except Exception:
                self._stats.failed += 1
                logger.exception(
                    "webhook to %s (app %s): dropped %d events", self.hook.url, self.app.id, len(batch)
                )
            finally:
                self.in_flight = 0
                self._stats.queued -= len(batch)
            await self._done([entry.id for entry in batch])

    async def deliver(self, batch: list[WebhookEntry]) -> bool:
        """Send one batch until a 2xx, or until `retry_for` seconds have gone (then give up)."""
        events = [entry.event for entry in batch]
        ids = [entry.id for entry in batch]
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._settings.retry_for
        attempt = 0
        while True:
            # Built again for each try: receivers (the Pusher SDKs) refuse a `time_ms` 5 minutes old.
            body, headers = request.build(self.app, self.hook, ids, events)
            status, error = await self._post(body, headers)
            self._report(self.app.id, events, status)
            if status in _OK:
                self._stats.sent += 1
                return True
            wait = backoff.delay(attempt, self._rng)
            if self.closing or loop.time() + wait > give_up_at:
                self._stats.failed += 1
                logger.warning(
                    "webhook to %s (app %s) failed %d times, last: %s: dropped %d events",
                    self.hook.url,
                    self.app.id,
                    attempt + 1,
                    error,
                    len(batch),
                )
                return False
            self._stats.retried += 1
            logger.info("webhook to %s failed (%s): retrying in %.1f s", self.hook.url, error, wait)
            attempt += 1
            await asyncio.sleep(wait)

    async def _post(self, body: str, headers: dict[str, str]) -> tuple[int | None, str]:
        try:
            response = await self._client.post(self.hook.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return response.status_code, f"HTTP {response.status_code}"
