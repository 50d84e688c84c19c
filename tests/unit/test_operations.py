"""Open files and ports, JSON logs, and the drain's spread, without a server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from revurb.api.routes import HttpApi
from revurb.apps import App
from revurb.channels.registry import Registry
from revurb.config import Settings
from revurb.limits import capacity, local_ports, raise_open_files
from revurb.log_format import JsonFormatter
from revurb.scaling.memory import MemoryBackend
from revurb.server.drain import BATCH_SECONDS, Drain, Phase
from revurb.wire.connection import Connection

APP = App(id="1", key="k", secret="s")


class Recorded(Connection[App]):
    """A socket that notes what it was sent and when it was closed."""

    def __init__(self) -> None:
        super().__init__(APP)
        self.frames: list[str] = []
        self.closed_at: float | None = None

    def send(self, frame: str) -> None:
        self.frames.append(frame)

    def close(self, code: int, reason: str = "") -> None:
        self.close_code = code
        self.closed_at = time.monotonic()


def test_local_ports(tmp_path: Path) -> None:
    path = tmp_path / "range"
    path.write_text("32768\t60999\n")
    assert local_ports(path) == 28232
    assert local_ports(tmp_path / "missing") is None
    path.write_text("garbage")
    assert local_ports(path) is None


def test_open_files_are_raised_to_the_hard_limit() -> None:
    import resource

    soft = raise_open_files()
    assert (
        soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0] == resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    )
    assert capacity(100) == 36 and capacity(10) == 0


def test_json_log_lines() -> None:
    record = logging.LogRecord(
        "revurb.connection", logging.WARNING, __file__, 1, "closing %s", ("1.2",), None
    )
    record.socket_id, record.app = "1.2", "1001"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "revurb.connection"
    assert line["message"] == "closing 1.2" and line["socket_id"] == "1.2" and line["app"] == "1001"
    assert line["time"].endswith("+00:00") and isinstance(line["pid"], int)
    plain = logging.LogRecord("revurb", logging.INFO, __file__, 1, "hello", None, None)
    assert set(json.loads(JsonFormatter().format(plain))) == {"time", "level", "logger", "message", "pid"}


async def test_drain_spreads_the_goodbyes_over_the_window_and_refuses_new_work() -> None:
    settings = Settings(drain_window=0.5, grace_period=3.0)
    backend = MemoryBackend()
    registry = Registry(backend)
    api = HttpApi(settings, None, registry)  # type: ignore[arg-type]
    drain = Drain(settings, registry, backend, api)
    manager = registry.manager(APP)
    sockets = [Recorded() for _ in range(20)]
    for socket in sockets:
        await manager.add(socket)
    drain.started()
    assert drain.ready and not drain.refusing

    began = time.monotonic()
    task = asyncio.create_task(drain.run())
    await asyncio.sleep(0)
    assert drain.phase is Phase.DRAINING and api.refusing and not drain.ready
    await asyncio.sleep(0.7)
    for socket in sockets:
        assert socket.frames == [
            '{"event":"pusher:error","data":"{\\"code\\":4200,\\"message\\":\\"Server is shutting down\\"}"}'
        ]
        assert socket.close_code == 4200
        await manager.remove(socket)  # the peer answered the close
    await task
    assert drain.phase is Phase.STOPPED
    times = sorted(s.closed_at or 0 for s in sockets)
    assert times[0] - began < BATCH_SECONDS
    assert times[-1] - began >= 0.5 - 2 * BATCH_SECONDS


class FakeLimits:
    """`resource` with a settable open-files limit (and a refusal to raise it, when asked)."""

    RLIMIT_NOFILE = 7
    RLIM_INFINITY = -1

    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.limits = (soft, hard)
        self.refuse = refuse

    def getrlimit(self, which: int) -> tuple[int, int]:
        return self.limits

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        if self.refuse:
            raise ValueError("not allowed")
        self.limits = limits


def test_low_limits_are_raised_and_warned_about_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from revurb import limits

    fake = FakeLimits(1024, 4096)
    monkeypatch.setattr(limits, "resource", fake)
    narrow = tmp_path / "range"
    narrow.write_text("60000 61000\n")
    monkeypatch.setattr(limits, "PORT_RANGE_FILE", narrow)
    with caplog.at_level(logging.INFO, logger="revurb.limits"):
        limits.check_limits(workers=2)
    assert fake.limits == (4096, 4096)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "open files limit 4096: room for about 8064 connections"
    assert messages[1].startswith("room for only about 8064 connections (open files limit 4096); raise")
    assert "LimitNOFILE=" in messages[1] and "minfds=" in messages[1]
    assert messages[2].startswith("only 1001 local ports (net.ipv4.ip_local_port_range)")


def test_a_refused_raise_keeps_the_soft_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from revurb import limits

    monkeypatch.setattr(limits, "resource", FakeLimits(1024, FakeLimits.RLIM_INFINITY, refuse=True))
    with caplog.at_level(logging.WARNING, logger="revurb.limits"):
        assert limits.raise_open_files() == 1024
    assert caplog.records[0].getMessage().startswith("cannot raise the open files limit from 1024 to 1048576")


def test_worker_snapshot_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import os

    from revurb.server.metrics_files import read_snapshots, write_snapshot
    from tests.unit.test_metrics import app_snapshot, snapshot

    live = snapshot(os.getpid(), {"a": app_snapshot(connections=2)})
    dead = snapshot(2**22 + 12345, {"a": app_snapshot(connections=5)})  # above pid_max: never alive
    write_snapshot(str(tmp_path), live)
    write_snapshot(str(tmp_path), dead)
    (tmp_path / "9.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="revurb.server.metrics"):
        every, alive = read_snapshots(str(tmp_path))
    assert sorted(s["pid"] for s in every) == sorted([live["pid"], dead["pid"]])
    assert [s["pid"] for s in alive] == [live["pid"]]
    assert "skipping the metrics file" in caplog.records[0].getMessage()
    assert read_snapshots(str(tmp_path), skip_pid=os.getpid())[0] == [dead]
