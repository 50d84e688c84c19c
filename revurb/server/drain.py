"""Graceful drain: how a server leaves on SIGTERM, SIGINT or `revurb restart` without a stampede.

Readiness goes false at once and new WebSocket handshakes and HTTP API requests are refused (503 /
403), so load balancers send them elsewhere. The backend stops first: it flushes queued publishes
and removes this node's share of the cluster state, so the other nodes' presence rosters drop its
users immediately. Then every socket gets `pusher:error` 4200 and is closed, in batches spread over
`drain_window` seconds, and the drain waits for them to go, up to the grace period.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time

from revurb.api.routes import HttpApi
from revurb.apps import App
from revurb.channels.registry import Registry
from revurb.config import Settings
from revurb.scaling.base import Backend
from revurb.wire import codes, frames
from revurb.wire.codes import ErrorCode
from revurb.wire.connection import Connection

logger = logging.getLogger("revurb.server.drain")

#: Seconds between two batches of closes; the window is cut into steps of this length.
BATCH_SECONDS = 0.05
#: How often the drain looks whether every socket has gone.
POLL_SECONDS = 0.05
#: Kept out of the grace period for what follows the drain (uvicorn's own shutdown, the lifespan).
EXIT_MARGIN_SECONDS = 1.0


class Phase(enum.Enum):
    """Where the server is in its life, as readiness reports it."""

    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"


class Drain:
    """The server's phase and the one drain that moves it from READY to STOPPED."""

    def __init__(self, settings: Settings, registry: Registry, backend: Backend, api: HttpApi) -> None:
        self.settings = settings
        self.registry = registry
        self.backend = backend
        self.api = api
        self.phase = Phase.STARTING
        self.began_at: float | None = None
        #: Set by a second Ctrl-C: close what is left at once and stop waiting.
        self.hurried = False
        self._task: asyncio.Task[None] | None = None
        self._told: set[str] = set()
        self._goodbye = frames.error(ErrorCode.RECONNECT_NOW, codes.SERVER_SHUTTING_DOWN)

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    @property
    def refusing(self) -> bool:
        """New sockets and API requests are turned away from the start of the drain on."""
        return self.phase in (Phase.DRAINING, Phase.STOPPED)

    def started(self) -> None:
        if self.phase is Phase.STARTING:
            self.phase = Phase.READY

    def deadline(self) -> float:
        """When (`time.monotonic()`) the process must be gone: drain start plus the grace period."""
        began = self.began_at if self.began_at is not None else time.monotonic()
        return began + self.settings.grace_period

    def refuse(self) -> None:
        """Readiness false and new work refused, from now on; safe to call from a signal handler."""
        if not self.refusing:
            self.phase = Phase.DRAINING
            self.began_at = time.monotonic()
            self.api.refusing = True
            self.registry.draining = True

    def hurry(self) -> None:
        self.hurried = True

    def start(self) -> asyncio.Task[None]:
        """Begin the drain if it has not begun; the task that runs it."""
        if self._task is None:
            self.refuse()
            self._task = asyncio.create_task(self._drain())
        return self._task

    async def run(self) -> None:
        """Drain once; a second caller (uvicorn's shutdown, then the lifespan) waits for the first."""
        await asyncio.shield(self.start())

    async def _drain(self) -> None:
        sockets = self.open_sockets()
        logger.info(
            "draining: %d sockets told to reconnect over %g s, exit within %g s",
            len(sockets),
            self.settings.drain_window,
            self.settings.grace_period,
        )
        try:
            await self.backend.stop()
        except Exception:
            logger.exception("stopping the backend failed; draining the sockets anyway")
        await self._close_spread()
        await self._wait_gone()
        self.phase = Phase.STOPPED
        left = len(self.open_sockets())
        if left:
            logger.warning("drained with %d sockets still closing", left)
        else:
            logger.info("drained: every socket closed in %.2f s", time.monotonic() - (self.began_at or 0.0))

    def open_sockets(self) -> list[Connection[App]]:
        return [c for manager in self.registry.managers.values() for c in manager.connections.values()]

    async def _close_spread(self) -> None:
        """4200 to every socket, a batch every `BATCH_SECONDS`, over `drain_window` seconds."""
        pending = self.open_sockets()
        steps = max(1, math.floor(self.settings.drain_window / BATCH_SECONDS))
        size = max(1, math.ceil(len(pending) / steps))
        for start in range(0, len(pending), size):
            if start and not self.hurried:
                await asyncio.sleep(BATCH_SECONDS)
            for connection in pending[start : start + size]:
                self._tell(connection)

    def _tell(self, connection: Connection[App]) -> None:
        self._told.add(connection.socket_id)
        if not connection.closed:
            connection.send(self._goodbye)
            connection.close(ErrorCode.RECONNECT_NOW, codes.SERVER_SHUTTING_DOWN)

    async def _wait_gone(self) -> None:
        """Until every socket has closed, or the time left is only what the exit itself needs."""
        loop_deadline = self.deadline() - EXIT_MARGIN_SECONDS
        while (left := self.open_sockets()) and time.monotonic() < loop_deadline and not self.hurried:
            # A socket whose admission was under way when the drain began is told too.
            for connection in left:
                if connection.socket_id not in self._told:
                    self._tell(connection)
            await asyncio.sleep(POLL_SECONDS)
