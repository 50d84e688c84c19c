"""The scenarios: what each asks the load generator to do, and what the harness samples around it."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import servers, system
from bench.driver import LoadGen
from bench.report import Column
from bench.servers import Server
from bench.system import cpu_seconds, rss_bytes, run_queue_wait_seconds

MB = 2**20


@dataclass
class Case:
    """One configuration of a scenario (e.g. fan-out to 1,000 subscribers), run `repeat` times."""

    label: str
    config: dict[str, Any]
    ready_timeout: float
    result_timeout: float
    settle: float = 0.0
    #: Seconds to let a fresh server settle before its idle RSS is read.
    idle_settle: float = 0.0
    #: Seconds after the result before the server's RSS is read again (`server.rss_after_mb`).
    after: float | None = None
    derive: Callable[[dict[str, Any]], None] = field(default=lambda result: None)


def _profiler(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """`py-spy record` (a test-only tool: `pip install py-spy`) on the server until it is stopped."""
    binary = shutil.which("py-spy")
    if binary is None:
        raise RuntimeError("--profile needs py-spy: pip install py-spy")
    command = [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "-o", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_once(server: Server, case: Case, profile: Path | None = None, pinned: bool = True) -> dict[str, Any]:
    """Start the generator against `server`, sample the server around the measured phase.

    `pinned`: the server gets one CPU and the generator the others, so that a write which wakes the
    generator never preempts the server on its own core (see docs/benchmarks.md).
    """
    if case.idle_settle:
        time.sleep(case.idle_settle)
    rss_idle = rss_bytes(server.pid)
    load_before = os.getloadavg()[0]
    config = {
        **case.config,
        "host": "127.0.0.1",
        "port": server.port,
        "appId": servers.APP_ID,
        "key": servers.APP_KEY,
        "secret": servers.APP_SECRET,
    }
    generator = LoadGen(config)
    split = system.cpu_split() if pinned else None
    if split is not None:
        system.pin(server.pid, split[0])
        system.pin(generator.pid, split[1])
        if server.watcher is not None:
            system.pin(server.watcher.pid, split[1])
    try:
        ready = generator.expect("ready", case.ready_timeout)
        if case.settle:
            time.sleep(case.settle)
        rss_loaded = rss_bytes(server.pid)
        server_cpu, generator_cpu, started = (
            cpu_seconds(server.pid),
            cpu_seconds(generator.pid),
            time.monotonic(),
        )
        server_wait = run_queue_wait_seconds(server.pid)
        generator_wait = run_queue_wait_seconds(generator.pid)
        ticks = system.machine_ticks()
        profiler = _profiler(server.pid, profile) if profile is not None else None
        generator.go()
        result = generator.expect("result", case.result_timeout)
        wall = time.monotonic() - started
        steal = system.steal_pct(ticks, system.machine_ticks())
        server_cpu = cpu_seconds(server.pid) - server_cpu
        server_wait = run_queue_wait_seconds(server.pid) - server_wait
        generator_wait = run_queue_wait_seconds(generator.pid) - generator_wait
        generator_cpu = cpu_seconds(generator.pid) - generator_cpu
        if profiler is not None:
            profiler.send_signal(2)  # SIGINT: py-spy writes what it has and exits
            profiler.wait(30)
    finally:
        generator.finish()
    if case.after is not None:
        time.sleep(case.after)
        result.setdefault("rss_after_mb", rss_bytes(server.pid) / MB)
    # A console held open through the run (a `BENCH_CONSOLE` variant): what it read.
    console = server.stop_watcher()
    if not server.alive():
        raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")
    result.pop("type", None)
    result["setup_seconds"] = ready.get("setup_seconds")
    result["server"] = {
        "cpu_s": server_cpu,
        "cpu_pct": 100 * server_cpu / wall,
        # Runnable but not running (another process had the core): how starved the server was.
        "run_queue_wait_pct": 100 * server_wait / wall,
        "rss_idle_mb": rss_idle / MB,
        "rss_loaded_mb": rss_loaded / MB,
        "rss_peak_mb": system.peak_rss_bytes(server.pid) / MB,
    }
    result["loadgen"] = {
        "cpu_s": generator_cpu,
        "cpu_pct": 100 * generator_cpu / wall,
        "run_queue_wait_pct": 100 * generator_wait / wall,
    }
    result["wall_s"] = wall
    result["cpus"] = {"server": sorted(split[0]), "loadgen": sorted(split[1])} if split else None
    # The machine is shared: the 1-minute load average says how contended the cores were.
    result["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    # ... and the hypervisor's steal, the share of the CPUs other virtual machines had meanwhile.
    result["steal_pct"] = steal
    if console is not None:
        result["console_watcher"] = console
    case.derive(result)
    return result


def _per_server_cpu(result: dict[str, Any]) -> None:
    """Work done per CPU-second of the server: steadier than a rate when other programs share the cores."""
    cpu = result["server"]["cpu_s"] or float("nan")
    if "deliveries" in result:
        result["deliveries_per_server_cpu_s"] = result["deliveries"] / cpu
    if "triggers_accepted" in result:
        result["triggers_per_server_cpu_s"] = result["triggers_accepted"] / cpu


def _ints(raw: str) -> list[int]:
    return [int(part) for part in raw.split(",") if part.strip()]


def fanout(args: argparse.Namespace) -> list[Case]:
    deflate = args.deflate == "on"
    return [
        Case(
            label=f"subscribers={n}" + (",client offers deflate" if deflate else ""),
            config={
                "scenario": "fanout",
                "subscribers": n,
                "publishers": args.publishers,
                "seconds": args.seconds or 10,
                "maxLag": args.max_lag,
                "viaWs": args.via_ws or deflate,
                "deflate": deflate,
                "concurrency": 100,
            },
            ready_timeout=60 + n / 50,
            result_timeout=(args.seconds or 10) + 60,
            derive=_per_server_cpu,
        )
        for n in _ints(args.subscribers or "1000,5000")
    ]


def soak(args: argparse.Namespace) -> list[Case]:
    seconds = args.seconds or 60
    config = {
        "scenario": "soak",
        "steady": args.steady,
        "churning": args.churning,
        "seconds": seconds,
        "intervalMs": 100,
        "stayMs": [1000, 5000],
        "viaWs": args.via_ws,
    }
    return [
        Case(
            f"steady={args.steady},churning={args.churning}",
            config,
            ready_timeout=60,
            result_timeout=seconds + 60,
        )
    ]


def _per_socket(result: dict[str, Any]) -> None:
    server = result["server"]
    grown = (server["rss_loaded_mb"] - server["rss_idle_mb"]) * MB
    result["rss_per_socket_kb"] = grown / result["sockets"] / 1024


def memory(args: argparse.Namespace) -> list[Case]:
    cases = []
    for mode in (args.deflate or "off,on").split(","):
        deflate = mode.strip() == "on"
        config = {"scenario": "memory", "sockets": args.sockets, "deflate": deflate, "concurrency": 100}
        label = f"sockets={args.sockets},client offers deflate={'yes' if deflate else 'no'}"
        cases.append(Case(label, config, 120 + args.sockets / 50, 60, settle=2.0, derive=_per_socket))
    return cases


#: The footprint scenario reads the RSS this long after the last socket closed (the issue's bound).
AFTER_CLOSE_SECONDS = 3.0
#: ... and reads a fresh server's idle RSS once start-up has settled this long.
STARTUP_SETTLE_SECONDS = 2.0


def _footprint(result: dict[str, Any]) -> None:
    result["rss_kept_mb"] = result["rss_after_mb"] - result["server"]["rss_idle_mb"]


def footprint(args: argparse.Namespace) -> list[Case]:
    config = {"scenario": "footprint", "sockets": args.sockets, "concurrency": 100}
    return [
        Case(
            f"sockets={args.sockets}",
            config,
            ready_timeout=120 + args.sockets / 50,
            result_timeout=60,
            settle=2.0,
            idle_settle=STARTUP_SETTLE_SECONDS,
            after=AFTER_CLOSE_SECONDS,
            derive=_footprint,
        )
    ]


def http(args: argparse.Namespace) -> list[Case]:
    seconds = args.seconds or 5
    return [
        Case(
            label=f"subscribers={n}",
            config={
                "scenario": "http",
                "subscribers": n,
                "connections": args.connections or HTTP_CONNECTIONS,
                "seconds": seconds,
            },
            ready_timeout=60,
            result_timeout=seconds + 60,
            derive=_per_server_cpu,
        )
        for n in _ints(args.subscribers or "0,100")
    ]


def slow(args: argparse.Namespace) -> list[Case]:
    seconds = args.seconds or 20
    return [
        Case(
            label=f"subscribers={args.subscribers or 1000},slow={n}",
            config={
                "scenario": "slow",
                "subscribers": int(args.subscribers or 1000),
                "slow": n,
                "seconds": seconds,
                "rate": args.rate,
                "padding": args.event_bytes,
            },
            ready_timeout=60,
            result_timeout=seconds + 60,
        )
        for n in _ints(args.slow)
    ]


#: Cycles in flight in `bench/run connect`, as in the issue's table; `--connections` overrides it.
CONNECT_IN_FLIGHT = 100
#: Concurrent keep-alive requests in `bench/run http`.
HTTP_CONNECTIONS = 64


def connect(args: argparse.Namespace) -> list[Case]:
    in_flight = args.connections or CONNECT_IN_FLIGHT
    cases = []
    for generator in args.connect_generator.split(","):
        config = {
            "scenario": "connect",
            "connections": args.sockets_to_open,
            "concurrency": in_flight,
            "generator": generator.strip(),
        }
        label = f"cycles={args.sockets_to_open},in flight={in_flight},generator={generator.strip()}"
        cases.append(Case(label, config, ready_timeout=30, result_timeout=120 + args.sockets_to_open / 500))
    return cases


_LATENCY = "latency.p50_ms", "latency.p95_ms", "latency.p99_ms"
SCENARIOS: dict[str, tuple[Callable[[argparse.Namespace], list[Case]], list[Column]]] = {
    "fanout": (
        fanout,
        [
            ("deliveries/s", "deliveries_per_s", ",.0f"),
            ("triggers/s", "triggers_per_s", ",.0f"),
            ("p50 ms", _LATENCY[0], ".2f"),
            ("p95 ms", _LATENCY[1], ".2f"),
            ("p99 ms", _LATENCY[2], ".2f"),
            ("lost", "lost", ".0f"),
            ("errors", "errors", ".0f"),
            ("server cpu %", "server.cpu_pct", ".0f"),
            ("server waits %", "server.run_queue_wait_pct", ".0f"),
            ("deliv/server cpu-s", "deliveries_per_server_cpu_s", ",.0f"),
            ("loadgen cpu %", "loadgen.cpu_pct", ".0f"),
        ],
    ),
    "soak": (
        soak,
        [
            ("delay p50 ms", "delay.p50_ms", ".2f"),
            ("delay p95 ms", "delay.p95_ms", ".2f"),
            ("delay p99 ms", "delay.p99_ms", ".2f"),
            ("errors", "errors", ".0f"),
            ("steady lost", "steady_lost", ".0f"),
            ("churn cycles", "churn_cycles", ".0f"),
            ("server cpu %", "server.cpu_pct", ".0f"),
            ("server waits %", "server.run_queue_wait_pct", ".0f"),
        ],
    ),
    "memory": (
        memory,
        [
            ("RSS idle MB", "server.rss_idle_mb", ".1f"),
            ("RSS loaded MB", "server.rss_loaded_mb", ".1f"),
            ("KB/socket", "rss_per_socket_kb", ".2f"),
            ("errors", "errors", ".0f"),
        ],
    ),
    "footprint": (
        footprint,
        [
            ("RSS idle MB", "server.rss_idle_mb", ".1f"),
            ("RSS open MB", "server.rss_loaded_mb", ".1f"),
            ("RSS 3 s after close MB", "rss_after_mb", ".1f"),
            ("kept MB", "rss_kept_mb", ".1f"),
            ("closed by server", "closed_by_server", ".0f"),
            ("errors", "errors", ".0f"),
        ],
    ),
    "http": (
        http,
        [
            ("triggers/s", "triggers_per_s", ",.0f"),
            ("p50 ms", _LATENCY[0], ".2f"),
            ("p99 ms", _LATENCY[2], ".2f"),
            ("failed", "triggers_failed", ".0f"),
            ("lost", "lost", ".0f"),
            ("server cpu %", "server.cpu_pct", ".0f"),
            ("server waits %", "server.run_queue_wait_pct", ".0f"),
            ("trig/server cpu-s", "triggers_per_server_cpu_s", ",.0f"),
            ("loadgen cpu %", "loadgen.cpu_pct", ".0f"),
        ],
    ),
    "slow": (
        slow,
        [
            ("p50 ms", _LATENCY[0], ".2f"),
            ("p95 ms", _LATENCY[1], ".2f"),
            ("p99 ms", _LATENCY[2], ".2f"),
            ("lost", "lost", ".0f"),
            ("errors", "errors", ".0f"),
            ("closed 4100", "slow_closed_4100", ".0f"),
            ("RSS peak MB", "server.rss_peak_mb", ".1f"),
            ("server cpu %", "server.cpu_pct", ".0f"),
            ("loadgen cpu %", "loadgen.cpu_pct", ".0f"),
        ],
    ),
    "connect": (
        connect,
        [
            ("cycles/s", "connections_per_s", ",.0f"),
            ("p50 ms", "connect_latency.p50_ms", ".2f"),
            ("p99 ms", "connect_latency.p99_ms", ".2f"),
            ("failures", "failures", ".0f"),
            ("server cpu %", "server.cpu_pct", ".0f"),
            ("server waits %", "server.run_queue_wait_pct", ".0f"),
            ("loadgen cpu %", "loadgen.cpu_pct", ".0f"),
        ],
    ),
}
#: `bench/run webhooks` is the soak scenario with a receiver-down variant beside it (bench/webhooks.py).
SCENARIOS["webhooks"] = SCENARIOS["soak"]
