"""The webhook part of the lifespan: takes events from the backend and hands them to the senders.

Each event goes to the app's URLs that want it (`Webhook.wants`); the backend is told it is done
once every one of those senders is (delivered, given up, or dropped). With Redis the events this
node took stay pending in Redis until then, and this node renews its hold on them: if it dies,
another node takes them over and sends them (see `scaling/redis_webhooks.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from revurb.apps import App, AppProvider, ConfigAppProvider
from revurb.channels.registry import Registry
from revurb.config import WebhookSettings
from revurb.scaling.base import Backend, WebhookEntry, WebhookEvent
from revurb.webhooks.stats import WebhookStats

if TYPE_CHECKING:
    import httpx

    from revurb.webhooks.sender import Sender

logger = logging.getLogger("revurb.webhooks")

#: Seconds one take from the backend waits for events.
TAKE_WAIT = 1.0
#: Fraction of `claim_after` between renewals of this node's hold on what it delivers.
HOLD_EVERY = 1 / 3
#: Seconds shutdown waits for queued events to go out (no retries then).
STOP_FLUSH_SECONDS = 2.0
#: Connections the client keeps open per receiver host, and in all.
KEEPALIVE_CONNECTIONS = 20
MAX_CONNECTIONS = 100


class Webhooks:
    """Started after the backend, stopped after the drain (so the last vacated events go out)."""

    def __init__(
        self, settings: WebhookSettings, provider: AppProvider, registry: Registry, backend: Backend
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._registry = registry
        self._backend = backend
        self.stats = WebhookStats()
        self._senders: dict[tuple[str, str], Sender] = {}
        #: Event id -> senders still busy with it.
        self._pending: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: One task per sender, stopped after the others so queued events may still go out.
        self._sender_tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        apps = await self._provider.all()
        if isinstance(self._provider, ConfigAppProvider) and not any(app.webhooks for app in apps):
            return  # nothing to send, ever: record nothing (a database provider may add URLs later)
        # The HTTP client (httpx and what it imports: about 6 MB of a server's RSS) is loaded only
        # when there may be something to send.
        import httpx

        self._client = httpx.AsyncClient(
            timeout=self._settings.timeout,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=KEEPALIVE_CONNECTIONS
            ),
        )
        self._backend.enable_webhooks(self._settings.claim_after)
        self._backend.before_stop.append(self.stop)
        self._spawn(self._take_forever())
        self._spawn(self._hold_forever())

    async def stop(self) -> None:
        if self._client is None:
            return
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # What the last sockets' departures recorded (the drain closed them) goes out too.
        await self._route(await self._backend.take_webhooks(0))
        senders = list(self._senders.values())
        for sender in senders:
            sender.closing = True
        loop = asyncio.get_running_loop()
        until = loop.time() + STOP_FLUSH_SECONDS
        while any(len(sender) for sender in senders) and loop.time() < until:
            await asyncio.sleep(0.01)
        left = sum(len(sender) for sender in senders)
        if left:
            logger.warning("%d webhook events not sent at shutdown", left)
        for task in list(self._sender_tasks):
            task.cancel()
        await asyncio.gather(*self._sender_tasks, return_exceptions=True)
        await self._client.aclose()
        self._client = None

    def _spawn(self, work: Coroutine[Any, Any, None], into: set[asyncio.Task[None]] | None = None) -> None:
        tasks = self._tasks if into is None else into
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(_log_failure)

    async def _take_forever(self) -> None:
        while True:
            try:
                entries = await self._backend.take_webhooks(TAKE_WAIT)
                if entries:
                    await self._route(entries)
            except Exception:
                # An app provider that failed, say: the events stay with the backend (pending in
                # Redis, taken over later) or are lost (memory); the loop must go on either way.
                logger.exception("taking webhook events failed")
                await asyncio.sleep(TAKE_WAIT)

    async def _route(self, entries: list[WebhookEntry]) -> None:
        apps: dict[str, App | None] = {}
        unwanted: list[str] = []
        for entry in entries:
            if entry.app_id not in apps:
                apps[entry.app_id] = await self._provider.find_by_id(entry.app_id)
            app = apps[entry.app_id]
            senders = [] if app is None else self._senders_for(app, entry.event)
            taken = sum(sender.put(entry) for sender in senders)
            if taken:
                self._pending[entry.id] = taken
            else:
                unwanted.append(entry.id)
        await self._backend.ack_webhooks(unwanted)

    def _senders_for(self, app: App, event: WebhookEvent) -> list[Sender]:
        senders = []
        for hook in app.webhooks:
            if not hook.wants(event["name"], event["channel"]):
                continue
            sender = self._senders.get((app.id, hook.url))
            if sender is None:
                assert self._client is not None
                from revurb.webhooks.sender import Sender  # imported with httpx, by `start`

                sender = Sender(app, hook, self._client, self._settings, self.stats, self._report, self._done)
                self._senders[(app.id, hook.url)] = sender
                self._spawn(sender.run(), self._sender_tasks)
            else:
                sender.app, sender.hook = app, hook  # a provider may hand out newer options
            senders.append(sender)
        return senders

    async def _done(self, ids: list[str]) -> None:
        finished = []
        for entry_id in ids:
            left = self._pending.get(entry_id, 1) - 1
            if left > 0:
                self._pending[entry_id] = left
            else:
                self._pending.pop(entry_id, None)
                finished.append(entry_id)
        await self._backend.ack_webhooks(finished)

    async def _hold_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.claim_after * HOLD_EVERY)
            await self._backend.hold_webhooks(list(self._pending))

    def _report(self, app_id: str, events: list[WebhookEvent], status: int | None) -> None:
        manager = self._registry.managers.get(app_id)
        if manager is None or manager.console is None:
            return
        for event in events:
            manager.console.webhook(event["name"], event["channel"], status)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("webhook task failed", exc_info=task.exception())
