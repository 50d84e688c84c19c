"""`--workers N` metrics: each worker leaves its snapshot in a file, a scrape sums them all.

A worker rewrites `{directory}/{pid}.json` every `WRITE_SECONDS` and once more as it stops. A dead
worker's file stays, so its counters still count (as Prometheus's own multiprocess mode keeps them);
its gauges do not (only live processes hold sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from revurb.server.metrics import Snapshot
from revurb.wire import frames

logger = logging.getLogger("revurb.server.metrics")

#: How often a worker's counts reach its file (and so how stale a scrape with workers may be).
WRITE_SECONDS = 1.0
_SUFFIX = ".json"


def write_snapshot(directory: str, snapshot: Snapshot) -> None:
    """Replace this process's file atomically, so a reader never sees half of it."""
    final = Path(directory) / f"{snapshot['pid']}{_SUFFIX}"
    partial = final.with_suffix(".tmp")
    partial.write_bytes(frames.dumps_bytes(snapshot))
    os.replace(partial, final)


def read_snapshots(directory: str, skip_pid: int | None = None) -> tuple[list[Snapshot], list[Snapshot]]:
    """Every worker's snapshot (for counters) and the live workers' ones (for gauges)."""
    every: list[Snapshot] = []
    live: list[Snapshot] = []
    for path in sorted(Path(directory).glob(f"*{_SUFFIX}")):
        try:
            snapshot: Snapshot = frames.loads(path.read_bytes())
        except (OSError, frames.JSONDecodeError) as error:
            logger.warning("skipping the metrics file %s: %s", path, error)
            continue
        if snapshot["pid"] == skip_pid:
            continue
        every.append(snapshot)
        if _alive(snapshot["pid"]):
            live.append(snapshot)
    return every, live


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SnapshotWriter:
    """Lifespan part of a worker: writes its snapshot now and then, and a last time on stop."""

    def __init__(self, directory: str, take: Callable[[], Snapshot]) -> None:
        self.directory = directory
        self.take = take
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._write()
        self._task = asyncio.create_task(self._write_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._write()

    async def _write_forever(self) -> None:
        while True:
            await asyncio.sleep(WRITE_SECONDS)
            self._write()

    def _write(self) -> None:
        try:
            write_snapshot(self.directory, self.take())
        except OSError as error:
            logger.warning("cannot write the metrics file in %s: %s", self.directory, error)
