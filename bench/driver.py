"""The Node load generator (`bench/loadgen/loadgen.mjs`) as a child process with a line protocol."""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import time
from typing import Any

from bench.report import dumps, loads
from bench.system import ROOT

LOADGEN_DIR = ROOT / "bench" / "loadgen"
SCRIPT = LOADGEN_DIR / "loadgen.mjs"


def find_node() -> str:
    node = os.environ.get("NODE") or shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: the load generator needs Node >= 18")
    return node


def ensure_installed() -> None:
    """`npm ci` the load generator's packages once (ws, and bufferutil from its own prebuilds)."""
    if (LOADGEN_DIR / "node_modules" / "ws" / "package.json").is_file():
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=LOADGEN_DIR, check=True)


class LoadGenError(RuntimeError):
    """The load generator failed or stopped answering."""


class LoadGen:
    """One `node loadgen.mjs CONFIG`: wait for `ready`, send `go`, wait for `result`."""

    def __init__(self, config: dict[str, Any]) -> None:
        # Closed in `finish`; a file (not a pipe) so a chatty generator never blocks on stderr.
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            [find_node(), str(SCRIPT), dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            cwd=LOADGEN_DIR,
        )
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.process.pid

    def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        """The next JSON line from the generator, which must be of type `kind`."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.kill()
                    raise LoadGenError(f"no {kind!r} from the load generator within {timeout:.0f} s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise LoadGenError(f"the load generator exited before {kind!r}: {self._stderr()}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = loads(line)
        if message.get("type") != kind:
            self.kill()
            raise LoadGenError(f"expected {kind!r} from the load generator, got {message}")
        return message

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        """Close stdin (the generator closes its sockets and exits) and reap it."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
        self._stderr_file.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def _stderr(self) -> str:
        self.kill()
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode(errors="replace")[-2000:]
