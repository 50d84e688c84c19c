"""`revurb restart` under real process managers with the shipped files: Supervisor and PM2 bring
the drained server back, serving again within 5 s."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.stack import DEPLOY, NODE_MODULES_BIN, environment_with_path, hard_open_files, tool
from tests.support.processes import run
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import DEFAULT_APP, DEFAULT_QUERY, free_port

BACK_WITHIN = 5.0
SHIPPED_PORT = "8080"


def pid_of(port: int) -> int:
    """The pid `revurb start` wrote for `revurb restart` (the default pid file of that port)."""
    from revurb.config import Settings
    from revurb.serve import default_pid_file

    return int(Path(default_pid_file(Settings(port=port))).read_text())


async def serving_again(port: int, old_pid: int, since: float) -> float:
    """Seconds from `since` until a new process answers /up on the port."""
    async with httpx.AsyncClient(timeout=0.5) as http:
        while time.monotonic() - since < BACK_WITHIN + 5:
            try:
                reply = await http.get(f"http://127.0.0.1:{port}/up")
                if reply.status_code == 200 and pid_of(port) != old_pid:
                    return time.monotonic() - since
            except (httpx.HTTPError, OSError, ValueError):
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing served on {port} again")


async def restart_and_come_back(port: int, cwd: Path) -> None:
    await wait_up(port)
    old_pid = pid_of(port)
    client = await PusherSocket.connect(
        f"ws://127.0.0.1:{port}/app/app-key?{DEFAULT_QUERY}", "app-key", "app-secret"
    )
    began = time.monotonic()
    result = run(["restart", "--port", str(port)], cwd, DEFAULT_APP)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Sent SIGTERM to the server (pid {old_pid}); it stops gracefully\n"
    assert await client.closed_with() == (4200, "Server is shutting down")
    await client.close()
    assert await serving_again(port, old_pid, began) < BACK_WITHIN


async def wait_up(port: int) -> None:
    async with httpx.AsyncClient(timeout=0.5) as http:
        for _ in range(300):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/up")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"the managed server never answered on {port}")


# Supervisor


def supervisor_program(port: int, directory: Path) -> str:
    """deploy/supervisor/revurb.conf with what differs on a test machine: the port, this checkout's
    `revurb`, the working directory, the log file, no user switch, and `minfds` at most the hard limit."""
    text = (DEPLOY / "supervisor" / "revurb.conf").read_text()
    replacements = {
        r"command=/srv/revurb/venv/bin/revurb start --host 0\.0\.0\.0 --port 8080": (
            f"command={Path(sys.executable).parent / 'revurb'} start --host 127.0.0.1 --port {port}"
        ),
        r"directory=/srv/revurb": f"directory={directory}",
        r"stdout_logfile=/var/log/supervisor/revurb\.log": f"stdout_logfile={directory / 'revurb.log'}",
        r"user=revurb\n": "",
    }
    for pattern, replacement in replacements.items():
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, pattern
    shipped = int(re.search(r"minfds=(\d+)", text).group(1))  # type: ignore[union-attr]
    return text.replace(f"minfds={shipped}", f"minfds={min(shipped, hard_open_files())}")


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    binary = tool("supervisord")
    port = free_port()
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "revurb.conf").write_text(supervisor_program(port, tmp_path))
    main = tmp_path / "supervisord.conf"
    main.write_text(
        f"[supervisord]\nnodaemon=true\nlogfile={tmp_path / 'supervisord.log'}\n"
        f"pidfile={tmp_path / 'sd.pid'}\n[include]\nfiles={tmp_path / 'conf.d'}/*.conf\n"
    )
    process = subprocess.Popen(
        [binary, "-c", str(main)],
        env=environment_with_path(DEFAULT_APP),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port, tmp_path
    finally:
        process.terminate()  # stops the program too (stopsignal TERM, stopwaitsecs)
        process.wait(40)


async def test_supervisor_brings_the_server_back_after_revurb_restart(supervisord: tuple[int, Path]) -> None:
    port, directory = supervisord
    await restart_and_come_back(port, directory)


# PM2


@pytest.fixture
def pm2(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    binary = tool("pm2", NODE_MODULES_BIN / "pm2")
    port = free_port()
    shipped = (DEPLOY / "pm2" / "ecosystem.config.js").read_text()
    ecosystem, count = re.subn(r"--host 0\.0\.0\.0 --port 8080", f"--host 127.0.0.1 --port {port}", shipped)
    assert count == 1
    (tmp_path / "ecosystem.config.js").write_text(ecosystem)
    env = environment_with_path({**DEFAULT_APP, "PM2_HOME": str(tmp_path / "pm2-home")})

    def pm2_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    started = pm2_run("start", "ecosystem.config.js")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield port, tmp_path
    finally:
        pm2_run("kill")


async def test_pm2_brings_the_server_back_after_revurb_restart(pm2: tuple[int, Path]) -> None:
    port, directory = pm2
    await restart_and_come_back(port, directory)
