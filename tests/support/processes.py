"""Any command as a real process (`revurb ...`, `uvicorn ...`), with a clean Revurb environment."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import STARTUP_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
REVURB = [sys.executable, "-m", "revurb"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any REVERB_* / REDIS_* / REVURB_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVERB_", "REDIS_", "REVURB_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Process:
    """A started command; its stdout and stderr go to one log file."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float = 10.0) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"process still running after {timeout} s:\n{self.output()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


def run(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Run `revurb <args>` to completion."""
    return subprocess.run(
        [*REVURB, *args], cwd=cwd, env=clean_env(env), capture_output=True, text=True, timeout=timeout
    )


def wait_ok(process: Process, url: str, context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if not process.alive():
            raise AssertionError(f"exited with {process.popen.returncode}:\n{process.output()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1, context=context) as reply:
            if reply.status == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {STARTUP_TIMEOUT} s:\n{process.output()}")


class Launcher:
    """Starts processes for one test and stops every one of them afterwards."""

    def __init__(self) -> None:
        self.processes: list[Process] = []

    def start(
        self,
        command: Sequence[str],
        cwd: Path,
        env: Mapping[str, str] | None = None,
        ready_url: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> Process:
        log_fd, log_name = tempfile.mkstemp(prefix="revurb-proc-", suffix=".log")
        popen = subprocess.Popen(
            list(command), cwd=cwd, env=clean_env(env), stdout=log_fd, stderr=subprocess.STDOUT
        )
        os.close(log_fd)
        process = Process(popen, Path(log_name))
        self.processes.append(process)
        if ready_url is not None:
            wait_ok(process, ready_url, context)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()


def launched() -> Iterator[Launcher]:
    """Body of a `launcher` fixture: a Launcher whose processes are stopped after the test."""
    started = Launcher()
    yield started
    started.stop_all()
