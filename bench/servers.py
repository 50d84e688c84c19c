"""Servers under test: `revurb start`, the floor (`bench/floor_server.py`) and the Soketi peer, each on a
verified-free loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench import system
from bench.report import loads

APP_ID, APP_KEY, APP_SECRET = "1001", "bench-key", "bench-secret"
#: In a variant's env: open a debug console on this app (`bench/watcher.py`) once the server is up.
CONSOLE_VARIABLE = "BENCH_CONSOLE"
STARTUP_TIMEOUT = 30.0
SOKETI_PEER = system.ROOT.parent / "shared" / "peers" / "soketi"
SOKETI_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "revurb-bench" / "soketi"


@dataclass
class Server:
    """A running server process and how to reach it."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    details: dict[str, object] = field(default_factory=dict)
    #: A debug console held open on the server (`bench/watcher.py`), if the variant asked for one.
    watcher: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop_watcher(self) -> dict[str, object] | None:
        """Close the console and return what it read (entries, bytes, events, entries skipped)."""
        watcher, self.watcher = self.watcher, None
        if watcher is None:
            return None
        watcher.send_signal(signal.SIGTERM)
        try:
            out, _ = watcher.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            watcher.kill()
            out, _ = watcher.communicate()
        lines = out.decode().strip().splitlines()
        counts: dict[str, object] = loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
        return counts

    def stop(self) -> None:
        self.stop_watcher()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def _wait_http_ok(server: Server, url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer {url} within {STARTUP_TIMEOUT} s:\n{server.log_tail()}")


def _open_console(server: Server, app: str, secret: str) -> subprocess.Popen[bytes]:
    """Start `bench/watcher.py` on the server and wait until its console is open."""
    command = [sys.executable, "-m", "bench.watcher", "--port", str(server.port), "--secret", secret]
    watcher = subprocess.Popen(
        [*command, "--app", app], stdout=subprocess.PIPE, cwd=system.ROOT, env={**os.environ}
    )
    assert watcher.stdout is not None
    line = watcher.stdout.readline()
    if line.strip() != b"watching":
        server.stop()
        raise RuntimeError(f"the console watcher did not open: {line!r}")
    return watcher


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVERB_", "REDIS_", "SOKETI_"))}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def export_commit(ref: str) -> tuple[Path, str]:
    """Extract `revurb/` at a commit into a temp dir, so a run serves committed code, not the tree."""
    commit = system.git_commit(ref)
    if commit is None:
        raise RuntimeError(f"unknown git ref {ref!r}")
    target = Path(tempfile.mkdtemp(prefix=f"revurb-bench-{commit[:8]}-"))
    archive = target / "revurb.tar"
    subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), commit, "revurb"], cwd=system.ROOT, check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    archive.unlink()
    return target, commit


class RevurbLauncher:
    """Starts `python -m revurb start` with default settings and the benchmark app."""

    def __init__(self, commit: str | None, env: Mapping[str, str], name: str = "revurb") -> None:
        self.name = name
        self.env = dict(env)
        if commit is None:
            self.source_dir: Path | None = None
            self.details: dict[str, object] = {
                "source": "working tree",
                "commit": system.git_commit(),
                "uncommitted_revurb_files": system.git_dirty(),
            }
        else:
            self.source_dir, full = export_commit(commit)
            self.details = {"source": "git archive", "commit": full, "uncommitted_revurb_files": []}
        self.details["server_env"] = self.env

    def start(self) -> Server:
        port = system.free_port()
        env = _clean_env(
            {"REVERB_APP_ID": APP_ID, "REVERB_APP_KEY": APP_KEY, "REVERB_APP_SECRET": APP_SECRET, **self.env}
        )
        # `python -m` puts the working directory first on sys.path: an exported commit wins there.
        cwd = self.source_dir or Path(tempfile.gettempdir())
        log_fd, log_name = tempfile.mkstemp(prefix="revurb-bench-", suffix=".log")
        command = [sys.executable, "-m", "revurb", "start", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, env=env, stdout=log_fd, stderr=subprocess.STDOUT, cwd=cwd)
        os.close(log_fd)
        server = Server(self.name, process, port, Path(log_name), self.details)
        _wait_http_ok(server, f"http://127.0.0.1:{port}/up")
        console = self.env.get(CONSOLE_VARIABLE)
        if console:
            server.watcher = _open_console(server, console, env.get("REVURB_DASHBOARD_SECRET", ""))
        return server

    def cleanup(self) -> None:
        if self.source_dir is not None:
            shutil.rmtree(self.source_dir, ignore_errors=True)


class SoketiLauncher:
    """Starts the Soketi peer (`shared/peers/soketi`), installed once into a cache directory."""

    name = "soketi"

    def __init__(self, directory: Path | None) -> None:
        self.dir = directory or Path(os.environ.get("SOKETI_DIR") or SOKETI_CACHE)
        self._install()
        package = self.dir / "node_modules" / "@soketi" / "soketi" / "package.json"
        self.details: dict[str, object] = {"version": loads(package.read_bytes()).get("version")}

    def _install(self) -> None:
        if (self.dir / "node_modules" / "@soketi" / "soketi").is_dir():
            return
        peer = Path(os.environ.get("SOKETI_PEER") or SOKETI_PEER)
        if not (peer / "start.sh").is_file():
            raise RuntimeError(f"the Soketi peer is not at {peer} (set SOKETI_PEER or SOKETI_DIR)")
        print(f"installing the Soketi peer into {self.dir} (npm install, once)", file=sys.stderr)
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(peer, self.dir, dirs_exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=self.dir, check=True)

    def start(self) -> Server:
        # Soketi also takes PORT+3600 (metrics, TCP) and PORT+5000 (discovery, UDP).
        port = system.free_port(offsets=(0, 3600), udp_offsets=(5000,))
        log_fd, log_name = tempfile.mkstemp(prefix="soketi-bench-", suffix=".log")
        command = [str(self.dir / "start.sh"), str(port), APP_ID, APP_KEY, APP_SECRET]
        process = subprocess.Popen(
            command, env=_clean_env({}), stdout=log_fd, stderr=subprocess.STDOUT, cwd=self.dir
        )
        os.close(log_fd)
        server = Server(self.name, process, port, Path(log_name), self.details)
        _wait_http_ok(server, f"http://127.0.0.1:{port}/")
        return server

    def cleanup(self) -> None:
        pass


class FloorLauncher:
    """Starts the hand-written uvloop + httptools floor server (`bench/floor_server.py`)."""

    name = "floor"

    def __init__(self) -> None:
        self.details: dict[str, object] = {"source": "bench/floor_server.py", "commit": system.git_commit()}

    def start(self) -> Server:
        port = system.free_port()
        log_fd, log_name = tempfile.mkstemp(prefix="floor-bench-", suffix=".log")
        command = [sys.executable, "-m", "bench.floor_server", "--port", str(port)]
        command += ["--app-id", APP_ID, "--key", APP_KEY, "--secret", APP_SECRET]
        env = _clean_env({"PYTHONPATH": str(system.ROOT)})
        process = subprocess.Popen(command, env=env, stdout=log_fd, stderr=subprocess.STDOUT, cwd=system.ROOT)
        os.close(log_fd)
        server = Server(self.name, process, port, Path(log_name), self.details)
        _wait_http_ok(server, f"http://127.0.0.1:{port}/up")
        return server

    def cleanup(self) -> None:
        pass


Launcher = RevurbLauncher | FloorLauncher | SoketiLauncher
