"""What the harness reads from the machine: /proc CPU and memory, free ports, machine details."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import resource
import socket
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def run_queue_wait_seconds(pid: int) -> float:
    """Time the process's main thread has spent runnable but waiting for a CPU (/proc/PID/schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def machine_ticks() -> tuple[int, int]:
    """(stolen, all) clock ticks of every CPU so far (the `cpu` line of /proc/stat).

    Steal is time the hypervisor gave this machine's virtual CPUs to other machines: when it is high,
    every process here ran slower than its own CPU time says, and rates fall for every server alike.
    """
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return steal, sum(fields[:8])


def steal_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    ticks = after[1] - before[1]
    return 100 * (after[0] - before[0]) / ticks if ticks > 0 else 0.0


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (/proc/PID/statm, in pages)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


def cpu_split() -> tuple[set[int], set[int]] | None:
    """One CPU for the server and the rest for the generator, or None with fewer than two CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


def pin(pid: int, cpus: set[int]) -> None:
    """Restrict every thread of a process to `cpus` (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cpus)


def peak_rss_bytes(pid: int) -> int:
    """The most memory a process has held resident so far (VmHWM in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def raise_fd_limit() -> int:
    """Raise this process's (and so its children's) open-file limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _tcp_port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _can_bind(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(offsets: tuple[int, ...] = (0,), udp_offsets: tuple[int, ...] = ()) -> int:
    """A loopback port that nothing listens on and that can be bound, with `port + offset` free too."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        ports = [base + offset for offset in offsets]
        if any(port > 65535 for port in ports) or any(base + o > 65535 for o in udp_offsets):
            continue
        if all(_can_bind(p, socket.SOCK_STREAM) and not _tcp_port_in_use(p) for p in ports) and all(
            _can_bind(base + o, socket.SOCK_DGRAM) for o in udp_offsets
        ):
            return base
    raise RuntimeError("no free loopback port found")


def _command_output(*command: str, cwd: Path | None = None) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=cwd, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_commit(ref: str = "HEAD") -> str | None:
    return _command_output("git", "rev-parse", ref, cwd=ROOT)


def git_dirty(path: str = "revurb") -> list[str]:
    """Files under `path` that differ from HEAD in the working tree (what an unexported run serves)."""
    out = _command_output("git", "status", "--porcelain", "--", path, cwd=ROOT)
    return [line[3:] for line in (out or "").splitlines()]


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine(node: str) -> dict[str, object]:
    """Machine and software details recorded with every result."""
    load = os.getloadavg()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PHYS_PAGES") * _PAGE / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _command_output(node, "--version"),
        "uvicorn": _version("uvicorn"),
        "starlette": _version("starlette"),
        "uvloop": _version("uvloop"),
        "httptools": _version("httptools"),
        "websockets": _version("websockets"),
        "git_commit": git_commit(),
        "load_average_at_start": [round(value, 2) for value in load],
        "shared_machine": "other engineers' processes share these cores; see load_average_at_start",
    }
