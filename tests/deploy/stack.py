"""The shipped deploy/ files run for real: nginx, two Revurb nodes on Redis, Supervisor, PM2.

Each runner copies a shipped file into the test's directory and changes only what must differ on a
test machine (ports; for the process managers also paths, the user and a lower `minfds` where the
machine's hard limit is lower), and says so where it does.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import REPO
from tests.support.servers import RedisServer, RunningServer, free_port, in_ci, start_revurb

DEPLOY = REPO / "deploy"
NODE_MODULES_BIN = REPO / "tests" / "deploy" / "node_modules" / ".bin"
#: The upstream ports the shipped nginx site names (deploy/docker-compose.yml's two nodes).
SHIPPED_UPSTREAM_PORTS = (8080, 8081)
#: Test nodes drain quicker than the shipped defaults, with the same shape.
DRAIN_ENV = {"REVURB_DRAIN_WINDOW": "2", "REVURB_GRACE_PERIOD": "8"}
STARTUP_SECONDS = 15.0


def tool(name: str, path: Path | None = None) -> str:
    """The executable, or skip (fail under CI=true) with how to install it."""
    found = str(path) if path is not None and path.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def wait_port(port: int, process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            detail = log.read_text(errors="replace") if log is not None and log.exists() else ""
            raise AssertionError(f"exited with {process.returncode} before listening on {port}:\n{detail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {STARTUP_SECONDS} s")


def hard_open_files() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def site_config(listen: int, upstreams: tuple[int, int]) -> str:
    """deploy/nginx/revurb.conf with its ports replaced, and nothing else."""
    text = (DEPLOY / "nginx" / "revurb.conf").read_text()
    for shipped, used in zip(SHIPPED_UPSTREAM_PORTS, upstreams, strict=True):
        text, count = re.subn(rf"127\.0\.0\.1:{shipped}\b", f"127.0.0.1:{used}", text)
        assert count == 1, f"the shipped site names 127.0.0.1:{shipped} once"
    text, count = re.subn(r"listen 80;", f"listen {listen};", text)
    assert count == 1
    return text


def start_nginx(directory: Path, upstreams: tuple[int, int]) -> Nginx:
    """Debian's nginx with deploy/nginx/nginx.conf and the shipped site, on a free port."""
    binary = tool("nginx", Path("/usr/sbin/nginx"))
    (directory / "conf.d").mkdir(parents=True)
    (directory / "logs").mkdir()
    shutil.copy(DEPLOY / "nginx" / "nginx.conf", directory / "nginx.conf")
    port = free_port()
    (directory / "conf.d" / "revurb.conf").write_text(site_config(port, upstreams))
    # Where this run writes: its own pid file and error log (not set by the shipped files).
    where = f"daemon off; pid {directory}/nginx.pid; error_log {directory}/error.log info;"
    command = [binary, "-p", f"{directory}/", "-c", str(directory / "nginx.conf"), "-g", where]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=10)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = Nginx(process, port, directory)
    try:
        wait_port(port, process, directory / "error.log")
    except BaseException:
        proxy.stop()
        raise
    return proxy


def cluster_env(redis: RedisServer, channel: str) -> dict[str, str]:
    return {
        "REVERB_SCALING_ENABLED": "true",
        "REVERB_SCALING_CHANNEL": channel,
        "REDIS_URL": redis.url,
        "REVERB_SCALING_HEARTBEAT_INTERVAL": "1",
        "REVURB_METRICS": "true",
        **DRAIN_ENV,
    }


@dataclass(frozen=True)
class Endpoint:
    """Where clients reach the cluster (nginx), in the shape the Node driver takes."""

    port: int
    host: str = "127.0.0.1"
    path: str = ""
    app_id: str = "1001"
    key: str = "app-key"
    secret: str = "app-secret"


@dataclass
class Node:
    server: RunningServer
    metrics_port: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


def start_node(redis: RedisServer, channel: str) -> Node:
    metrics_port = free_port()
    env = {**cluster_env(redis, channel), "REVURB_METRICS_PORT": str(metrics_port)}
    return Node(start_revurb(env), metrics_port)


@contextlib.contextmanager
def cluster_behind_nginx(tmp: Path, redis: RedisServer, channel: str) -> Iterator[tuple[Nginx, Node, Node]]:
    """Two nodes on Redis and the shipped nginx in front of them; all stopped afterwards."""
    first = start_node(redis, channel)
    second: Node | None = None
    proxy: Nginx | None = None
    try:
        second = start_node(redis, channel)
        proxy = start_nginx(tmp / "nginx", (first.server.port, second.server.port))
        yield proxy, first, second
    finally:
        if proxy is not None:
            proxy.stop()
        for node in (first, second):
            if node is not None:
                node.server.stop(signal.SIGKILL)


def environment_with_path(extra: dict[str, str]) -> dict[str, str]:
    """A clean Revurb environment whose PATH finds this interpreter's `revurb` first."""
    from tests.support.processes import clean_env

    env = clean_env(extra)
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
    return env
