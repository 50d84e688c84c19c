"""`revurb restart`: running servers stop gracefully so their process manager starts them again.

With scaling on, as Reverb does, the command stores a restart timestamp in Redis and every server
checks it from its lifespan. Otherwise `revurb start` writes a pid file and the command signals it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from revurb.config.settings import ScalingSettings, Settings

logger = logging.getLogger("revurb.server.restart")


def restart_key(scaling: ScalingSettings) -> str:
    return f"{scaling.channel}:restart"


def stop_target(settings: Settings) -> int:
    """The process to signal: the `--workers` supervisor when there is one, else this process."""
    return settings.signal_pid or os.getpid()


def write_pid_file(path: str, pid: int) -> None:
    Path(path).write_text(f"{pid}\n")


def remove_pid_file(path: str, pid: int) -> None:
    """Remove the pid file if it is still ours (a newer server may have replaced it)."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        if int(Path(path).read_text().strip()) == pid:
            Path(path).unlink()


def signal_pid_file(path: str) -> int | None:
    """SIGTERM the server named in the pid file; its pid, or None if there is no live one."""
    try:
        pid = int(Path(path).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _looks_like_revurb(pid):
        return None  # a stale file whose pid now belongs to another program: leave it alone
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    return pid


def _looks_like_revurb(pid: int) -> bool:
    """Where /proc exists, check the command line names Revurb before signalling a pid."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not Path("/proc/self/cmdline").exists():
        return True
    try:
        return b"revurb" in cmdline.read_bytes()
    except OSError:
        return False


def signal_redis(scaling: ScalingSettings) -> float:
    """Store the restart timestamp every server with this Redis and channel will see."""
    from revurb.scaling.connect import connect_sync, options_from

    stamp = time.time()
    client = connect_sync(options_from(scaling))
    try:
        client.set(restart_key(scaling), repr(stamp))
    finally:
        client.close()
    return stamp


class RestartWatch:
    """Lifespan part: writes the pid file and, with scaling on, watches Redis for a restart."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started_at = time.time()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.settings.pid_file:
            write_pid_file(self.settings.pid_file, stop_target(self.settings))
        if self.settings.scaling.enabled:
            self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.settings.pid_file:
            remove_pid_file(self.settings.pid_file, stop_target(self.settings))

    async def _watch(self) -> None:
        from redis.exceptions import RedisError

        from revurb.scaling.connect import connect, options_from

        scaling = self.settings.scaling
        options = options_from(scaling)
        client = connect(options, options.timeout, "revurb-restart-watch")
        try:
            while True:
                await asyncio.sleep(self.settings.restart_check_interval)
                try:
                    raw = await client.get(restart_key(scaling))
                except RedisError as error:
                    logger.warning("cannot check Redis for a restart: %s", error)
                    continue
                if raw is not None and _stamp(raw) > self.started_at:
                    logger.warning("restart requested (revurb restart): stopping gracefully")
                    os.kill(stop_target(self.settings), signal.SIGTERM)
                    return
        finally:
            await client.aclose()


def _stamp(raw: bytes | str) -> float:
    try:
        return float(raw)
    except ValueError:
        logger.warning("ignoring a restart timestamp that is not a number: %r", raw)
        return 0.0
