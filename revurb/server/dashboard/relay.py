"""The debug console across the cluster: entries of a watched app travel between nodes, and only then.

A node learns from the shared summaries (`share.py`) which apps a console on another node watches.
For those apps it puts a forwarding watcher on its own tap, so its entries are sampled and kept as
for a local console, and publishes what that watcher collected every `SEND_SECONDS` in one message
on `{prefix}:dashboard:console:{app}`. Every node listens on that pattern and hands what others
sent to the consoles open on it. While no console is open anywhere, none of this sends anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TypedDict

from revurb.channels.console import ConsoleEntry, Watcher
from revurb.channels.registry import Registry
from revurb.config import ScalingSettings
from revurb.server.dashboard.consoles import Consoles
from revurb.server.dashboard.share import FAULTS, ClusterShare, redis_client
from revurb.wire import frames

logger = logging.getLogger("revurb.server.dashboard")

#: How often collected entries go out; they reach the watching node within about this long.
SEND_SECONDS = 0.2
#: Seconds between attempts to listen again after Redis went away.
RETRY_SECONDS = 1.0
#: How long one wait for a message lasts before the loop looks again.
LISTEN_SECONDS = 1.0


class Batch(TypedDict):
    node: str
    entries: list[ConsoleEntry]


class ConsoleRelay:
    """Lifespan part (scaling on): sends entries to consoles elsewhere, receives theirs for ours."""

    def __init__(self, scaling: ScalingSettings, registry: Registry, consoles: Consoles, share: ClusterShare):
        self.prefix = f"{scaling.channel}:dashboard:console:"
        self.registry = registry
        self.consoles = consoles
        self.share = share
        self.node = share.own.id
        #: App id -> the forwarding watcher on its tap.
        self.forwarding: dict[str, Watcher] = {}
        self._client = redis_client(scaling, f"revurb-dashboard-relay-{self.node}")
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for work in (self._send_forever(), self._listen_forever()):
            task = asyncio.create_task(work)
            self._tasks.add(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for app_id in list(self.forwarding):
            self._stop_forwarding(app_id)
        await self._client.aclose()

    # Sending

    def sync(self) -> None:
        """Forward exactly the apps watched elsewhere that have sockets or traffic here."""
        wanted = self.share.watched_elsewhere
        for app_id in list(self.forwarding):
            if app_id not in wanted:
                self._stop_forwarding(app_id)
        for app_id in wanted:
            manager = self.registry.managers.get(app_id)
            if manager is not None and app_id not in self.forwarding:
                watcher = Watcher(forward=True)
                self.consoles.attach(manager, watcher)
                self.forwarding[app_id] = watcher

    def _stop_forwarding(self, app_id: str) -> None:
        watcher = self.forwarding.pop(app_id)
        manager = self.registry.managers.get(app_id)
        if manager is not None:
            Consoles.detach(manager, watcher)

    async def send(self) -> None:
        self.sync()
        for app_id, watcher in self.forwarding.items():
            entries = watcher.take()
            if entries:
                batch: Batch = {"node": self.node, "entries": entries}
                await self._client.publish(self.prefix + app_id, frames.dumps(batch))

    async def _send_forever(self) -> None:
        while True:
            await asyncio.sleep(SEND_SECONDS)
            try:
                await self.send()
            except FAULTS as error:
                logger.debug("dashboard: console entries not sent: %s", error)

    # Receiving

    def receive(self, channel: str, raw: str) -> None:
        manager = self.registry.managers.get(channel[len(self.prefix) :])
        if manager is None or manager.console is None:
            return
        try:
            batch: Batch = frames.loads(raw)
        except frames.JSONDecodeError:
            logger.warning("dashboard: ignoring unreadable console entries on %s", channel)
            return
        if batch["node"] == self.node:
            return
        tap = manager.console
        for entry in batch["entries"]:
            tap.relay(entry)

    async def _listen_forever(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.prefix + "*")
                while True:
                    message = await pubsub.get_message(timeout=LISTEN_SECONDS)
                    if message is not None and message["type"] == "pmessage":
                        self.receive(message["channel"], message["data"])
            except FAULTS as error:
                logger.debug("dashboard: console relay lost Redis: %s", error)
            finally:
                with contextlib.suppress(*FAULTS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RETRY_SECONDS)
