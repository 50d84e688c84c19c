"""A Redis Sentinel topology on loopback: one primary, one replica and three sentinels.

Started from the Debian `redis-server` and `redis-sentinel` binaries, each on a free port, each
with its files in a private directory. Sentinels are tuned to declare a dead primary within a
second and fail over right after, so a test sees a whole failover in a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import STARTUP_TIMEOUT, RedisServer, free_port

MASTER_NAME = "revurb-primary"
SENTINELS = 3
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


@dataclass
class SentinelTopology:
    """The processes of one topology and how clients reach it."""

    directory: Path
    primary: RedisServer
    replica: RedisServer
    sentinel_ports: list[int] = field(default_factory=list)
    sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def hosts(self) -> str:
        """`REDIS_SENTINELS`: host:port of every sentinel, comma-separated."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def master_port(self) -> int | None:
        """The primary's port as the first sentinel that answers reports it."""
        for port in self.sentinel_ports:
            probe = RedisServer(port=port, directory=str(self.directory))
            reply = probe.command("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            parts = reply.split(b"\r\n")
            if len(parts) >= 5 and parts[0] == b"*2":
                return int(parts[4])
        return None

    def wait_for_failover(self, timeout: float = 15.0) -> int:
        """Block until the sentinels name the replica as primary; returns its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.master_port() == self.replica.port:
                return self.replica.port
            time.sleep(0.05)
        raise RuntimeError(f"no failover within {timeout} s (primary still {self.master_port()})")

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.terminate()
                process.wait(10)
        self.replica.stop()
        self.primary.stop()


def sentinel_binary() -> str | None:
    return shutil.which("redis-sentinel")


def _sentinel_config(directory: Path, port: int, primary_port: int) -> Path:
    path = directory / f"sentinel-{port}.conf"
    path.write_text(
        "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                "daemonize no",
                f"dir {directory}",
                f"logfile {directory / f'sentinel-{port}.log'}",
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} {QUORUM}",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
                "",
            ]
        )
    )
    return path


def _wait_until(check: object, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {STARTUP_TIMEOUT} s")


def start_topology(directory: Path) -> SentinelTopology:
    """Start the primary, its replica and three sentinels; return once all are in place."""
    binary = sentinel_binary()
    if binary is None:
        raise RuntimeError("redis-sentinel is not installed (apt-get install redis-sentinel)")
    primary = RedisServer(port=free_port(), directory=str(directory))
    primary.start()
    replica = RedisServer(
        port=free_port(), directory=str(directory), extra=("--replicaof", "127.0.0.1", str(primary.port))
    )
    replica.start()
    topology = SentinelTopology(directory, primary, replica)
    try:
        _wait_until(lambda: b"master_link_status:up" in replica.command("INFO", "replication"), "no sync")
        for _ in range(SENTINELS):
            port = free_port()
            config = _sentinel_config(directory, port, primary.port)
            process = subprocess.Popen(
                [binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory
            )
            topology.sentinel_ports.append(port)
            topology.sentinels.append(process)
        for port in topology.sentinel_ports:
            probe = RedisServer(port=port, directory=str(directory))
            _wait_until(probe.ping, f"sentinel {port} did not answer")
        # Every sentinel must know the replica and the other sentinels before a failover can run.
        for port in topology.sentinel_ports:
            probe = RedisServer(port=port, directory=str(directory))
            _wait_until(
                lambda probe=probe: _known(probe.command("SENTINEL", "master", MASTER_NAME)),
                f"sentinel {port} did not discover the replica and its peers",
            )
    except BaseException:
        topology.stop()
        raise
    return topology


def _known(reply: bytes) -> bool:
    """A `SENTINEL master` reply naming one replica and two other sentinels."""
    fields = reply.split(b"\r\n")
    values = {fields[i]: fields[i + 2] for i in range(2, len(fields) - 2, 4)}
    return (
        values.get(b"num-slaves") == b"1"
        and values.get(b"num-other-sentinels") == str(SENTINELS - 1).encode()
    )


@contextmanager
def sentinel_topology(directory: Path) -> Iterator[SentinelTopology]:
    topology = start_topology(directory)
    try:
        yield topology
    finally:
        topology.stop()
