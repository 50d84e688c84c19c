"""Real servers for tests: `revurb start` and `redis-server` in subprocesses on free ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_APP = {"REVERB_APP_ID": "1001", "REVERB_APP_KEY": "app-key", "REVERB_APP_SECRET": "app-secret"}
STARTUP_TIMEOUT = 15.0
DEFAULT_QUERY = "protocol=7&client=js&version=8.4.0&flash=false"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class RunningServer:
    """A `revurb start` process and what a test needs to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log_path: Path
    host: str = "127.0.0.1"
    path: str = ""
    app_id: str = "1001"
    key: str = "app-key"
    secret: str = "app-secret"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def ws_url(self, key: str | None = None, query: str = DEFAULT_QUERY) -> str:
        url = f"ws://{self.host}:{self.port}{self.path}/app/{key or self.key}"
        return f"{url}?{query}" if query else url

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def wait_http_ok(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = STARTUP_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server did not answer {url} within {timeout} s:\n{log_path.read_text()}")


def start_revurb(
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    port: int | None = None,
    cwd: str | None = None,
    wait: bool = True,
) -> RunningServer:
    """Start `revurb start` with the default app plus `env`; waits until `/up` answers."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("REVERB_", "REDIS_"))}
    full_env.update(DEFAULT_APP)
    full_env.update(env or {})
    full_env["PYTHONUNBUFFERED"] = "1"
    log_fd, log_name = tempfile.mkstemp(prefix="revurb-", suffix=".log")
    command = [sys.executable, "-m", "revurb", "start", "--host", "127.0.0.1", "--port", str(port), *args]
    process = subprocess.Popen(
        command, env=full_env, stdout=log_fd, stderr=subprocess.STDOUT, cwd=cwd or tempfile.gettempdir()
    )
    os.close(log_fd)
    server = RunningServer(
        process=process,
        port=port,
        env=full_env,
        log_path=Path(log_name),
        path=full_env.get("REVERB_SERVER_PATH", "").rstrip("/"),
        app_id=full_env["REVERB_APP_ID"],
        key=full_env["REVERB_APP_KEY"],
        secret=full_env["REVERB_APP_SECRET"],
    )
    if wait:
        try:
            wait_http_ok(f"http://127.0.0.1:{port}/up", process, server.log_path)
        except BaseException:
            server.stop(signal.SIGKILL)
            raise
    return server


@dataclass
class RedisServer:
    """A private `redis-server` that tests may stop, kill and restart to inject faults.

    With `persistence`, it keeps an append-only file (fsync every second, as production Redis
    usually runs) in `directory`, so a restart on the same port loads what was written.
    """

    port: int
    directory: str
    persistence: bool = False
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        durability = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persistence else []
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *durability,
                "--dir",
                self.directory,
                "--logfile",
                os.path.join(self.directory, f"redis-{self.port}.log"),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def ping(self) -> bool:
        return self.command("PING").startswith(b"+PONG")

    def command(self, *args: str) -> bytes:
        """Send one command (RESP) and return the start of the raw reply; b"" if unreachable."""
        request = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(arg.encode())}\r\n{arg}\r\n".encode() for arg in args
        )
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as conn:
                conn.sendall(request)
                return conn.recv(65536)
        except OSError:
            return b""

    def kill_client(self, name: str) -> bool:
        """`CLIENT KILL` the connection that named itself `name`; False if there is none."""
        for line in self.command("CLIENT", "LIST").decode(errors="replace").splitlines():
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            if fields.get("name") == name:
                return self.command("CLIENT", "KILL", "ID", fields["id"]) == b":1\r\n"
        return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop redis-server with `sig` (SIGTERM: a clean shutdown; SIGKILL: a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        self.command("FLUSHALL")
