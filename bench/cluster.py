"""`bench/run cluster`: two Revurb nodes sharing one redis-server on this machine.

Measures, for events triggered over the HTTP API of node A and received by WebSocket subscribers:
- latency: one event at a time (paced, one subscriber, from this process): trigger sent -> frame
  received, p50/p99;
- fanout: the lean Node generator of `bench/run fanout` with its subscribers on one node and its
  signed triggers sent to node A, as fast as the lag brake allows: triggers/s, deliveries/s,
  latency under load, lost deliveries, and deliveries per CPU-second of both nodes plus Redis.
Each is run with the subscribers on node B (cross-node: A -> Redis -> B) and on node A (the same
node, with scaling on, for reference).

With `--fixed-rate`: first the saturated fan-out of each case (publishers as fast as node A answers,
no lag brake: the saturated rate is the events per second that reached every subscriber), then the
same fan-out at a fixed, open-loop rate (triggers leave on schedule, never waiting for an answer) of
25%, 50% and 75% of the cross-node saturated rate, each case at the same offered rates: delivery
delay p50/p99 from each trigger's scheduled time, and the largest bus lag the subscribing node's
`/up` reported.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import hmac
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench import report, system
from bench.driver import LoadGen, ensure_installed, find_node
from bench.servers import APP_ID, APP_KEY, APP_SECRET, RevurbLauncher, Server

RESULTS = system.ROOT / "bench" / "results"
CHANNEL = "bench-cluster"
COLUMNS: list[report.Column] = [
    ("p50 ms", "latency.p50_ms", ".2f"),
    ("p99 ms", "latency.p99_ms", ".2f"),
    ("triggers/s", "fanout.triggers_per_s", ".0f"),
    ("deliveries/s", "fanout.deliveries_per_s", ".0f"),
    ("load p50 ms", "fanout.latency.p50_ms", ".1f"),
    ("load p99 ms", "fanout.latency.p99_ms", ".1f"),
    ("lost", "fanout.lost", ".0f"),
    ("deliv/cpu-s", "fanout.deliveries_per_server_cpu_s", ".0f"),
]
FIXED_RATE_COLUMNS: list[report.Column] = [
    ("offered/s", "offered_per_s", ".0f"),
    ("delivered events/s", "delivered_events_per_s", ".0f"),
    ("triggers/s", "triggers_per_s", ".0f"),
    ("deliveries/s", "deliveries_per_s", ".0f"),
    ("p50 ms", "latency.p50_ms", ".2f"),
    ("p99 ms", "latency.p99_ms", ".2f"),
    ("max ms", "latency.max_ms", ".1f"),
    ("lost", "lost", ".0f"),
    ("max bus lag s", "max_bus_lag_seconds", ".3f"),
    ("deliv/cpu-s", "deliveries_per_server_cpu_s", ".0f"),
    ("nodes+redis cpu %", "servers_cpu_pct", ".0f"),
    ("loadgen cpu %", "loadgen_cpu_pct", ".0f"),
    ("load avg", "load_average", ".1f"),
]
CASES = ("cross-node", "same-node")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run cluster", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--latency-events", type=int, default=500, help="paced events for latency")
    parser.add_argument("--rate", type=float, default=200.0, help="latency: events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="fanout: measured time")
    parser.add_argument("--subscribers", type=int, default=1000, help="fanout: subscribers")
    parser.add_argument("--publishers", type=int, default=8, help="fanout: concurrent triggers")
    parser.add_argument(
        "--max-lag", type=int, default=5, help="fanout: events in flight before publishers pause"
    )
    parser.add_argument(
        "--faults", action="store_true", help="three nodes under triggers while Redis fails (bench/faults.py)"
    )
    parser.add_argument("--every", type=float, default=10.0, help="faults: seconds between faults")
    parser.add_argument("--trigger-rate", type=float, default=50.0, help="faults: triggers per second")
    parser.add_argument(
        "--sentinel",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="faults: also a run with a Sentinel failover",
    )
    parser.add_argument(
        "--fixed-rate",
        action="store_true",
        help="fanout at fixed open-loop rates, fractions of the saturated rate measured first",
    )
    parser.add_argument(
        "--fractions", default="0.25,0.5,0.75", help="fixed-rate: fractions of the saturated rate"
    )
    parser.add_argument("--commit", help="serve revurb/ as of this git ref (git archive) instead of the tree")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON result is written")
    parser.add_argument("--note", default="", help="free text stored with the result")
    return parser.parse_args(argv)


class Redis:
    """A private redis-server without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.port = system.free_port()
        self.dir = tempfile.mkdtemp(prefix="revurb-bench-redis-")
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [binary, *args, "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def signed_query(path: str, body: bytes) -> dict[str, str]:
    query = {
        "auth_key": APP_KEY,
        "auth_timestamp": str(int(time.time())),
        "auth_version": "1.0",
        "body_md5": hashlib.md5(body).hexdigest(),
    }
    string = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    signature = hmac.new(APP_SECRET.encode(), f"POST\n{path}\n{string}".encode(), hashlib.sha256)
    return {**query, "auth_signature": signature.hexdigest()}


class Publisher:
    """Triggers events on one node over keep-alive HTTP connections."""

    def __init__(self, node: Server, connections: int) -> None:
        self.path = f"/apps/{APP_ID}/events"
        self.url = f"http://127.0.0.1:{node.port}{self.path}"
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(limits=limits, timeout=10)

    async def trigger(self, data: str) -> None:
        body = report.dumps({"name": "tick", "channels": [CHANNEL], "data": data}).encode()
        response = await self.http.post(
            self.url,
            content=body,
            params=signed_query(self.path, body),
            headers={"content-type": "application/json"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"trigger failed: {response.status_code} {response.text}")

    async def close(self) -> None:
        await self.http.aclose()


async def _subscribe(node: Server, count: int) -> list[Any]:
    sockets = []
    for _ in range(count):
        ws = await websockets.connect(
            f"ws://127.0.0.1:{node.port}/app/{APP_KEY}?protocol=7&client=js&version=8.4.0", compression=None
        )
        await ws.recv()  # connection_established
        await ws.send(report.dumps({"event": "pusher:subscribe", "data": {"channel": CHANNEL}}))
        while report.loads(await ws.recv()).get("event") != "pusher_internal:subscription_succeeded":
            pass
        sockets.append(ws)
    return sockets


def _data_of(frame: str | bytes) -> str | None:
    message = report.loads(frame)
    return message.get("data") if message.get("event") == "tick" else None


async def latency(publish_on: Server, subscribe_on: Server, events: int, rate: float) -> dict[str, float]:
    """Paced triggers; milliseconds from sending the trigger to receiving the frame."""
    (ws,) = await _subscribe(subscribe_on, 1)
    publisher = Publisher(publish_on, 1)
    samples: list[float] = []
    try:
        for n in range(events + 20):  # the first 20 warm up connections and caches
            sent = time.perf_counter()
            await publisher.trigger(str(n))
            async with asyncio.timeout(5):
                while _data_of(await ws.recv()) != str(n):
                    pass
            if n >= 20:
                samples.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - sent)))
    finally:
        await publisher.close()
        await ws.close()
    cuts = statistics.quantiles(samples, n=100)
    return {"p50_ms": cuts[49], "p90_ms": cuts[89], "p99_ms": cuts[98], "max_ms": max(samples)}


#: How often the bus-lag watcher reads the subscribing node's `/up` during a fan-out run.
LAG_POLL_SECONDS = 0.25


class LagWatcher(threading.Thread):
    """Reads a node's `/up` through a run and keeps the largest `scaling.bus_lag_seconds` seen."""

    def __init__(self, node: Server) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{node.port}/up"
        self.stopped = threading.Event()
        self.max_lag = 0.0

    def run(self) -> None:
        while not self.stopped.wait(LAG_POLL_SECONDS):
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    lag = report.loads(response.read())["scaling"].get("bus_lag_seconds", 0.0)
            except (OSError, KeyError, ValueError):
                continue  # a busy node may not answer in time: the next poll will
            self.max_lag = max(self.max_lag, lag)

    def stop(self) -> float:
        self.stopped.set()
        self.join()
        return self.max_lag


def fanout(
    publish_on: Server,
    subscribe_on: Server,
    args: argparse.Namespace,
    pids: Sequence[int],
    rate: float | None = None,
    max_lag: int | None = None,
) -> dict[str, Any]:
    """The lean Node generator's fanout: subscribers on one node, signed triggers to another; as
    fast as the lag brake allows (`max_lag`, default `--max-lag`; 0: no brake), or at a fixed
    open-loop `rate` of triggers per second."""
    config = {
        "scenario": "fanout",
        "subscribers": args.subscribers,
        "publishers": args.publishers,
        "seconds": args.seconds,
        "maxLag": args.max_lag if max_lag is None else max_lag,
        "concurrency": 100,
        "host": "127.0.0.1",
        "port": subscribe_on.port,
        "publishPort": publish_on.port,
        "appId": APP_ID,
        "key": APP_KEY,
        "secret": APP_SECRET,
        "rate": rate or 0,
    }
    generator = LoadGen(config)
    try:
        generator.expect("ready", 60 + args.subscribers / 50)
        measured = [*pids, generator.pid]
        cpu_before = [system.cpu_seconds(pid) for pid in measured]
        started = time.monotonic()
        watcher = LagWatcher(subscribe_on)
        watcher.start()
        generator.go()
        result = generator.expect("result", args.seconds + 60)
        wall = time.monotonic() - started
        result["max_bus_lag_seconds"] = watcher.stop()
        cpu = [system.cpu_seconds(pid) - before for pid, before in zip(measured, cpu_before, strict=True)]
    finally:
        generator.finish()
    result.pop("type", None)
    result.pop("error_samples", None)
    result["cpu_seconds"] = {"publishing_node": cpu[0], "subscribing_node": cpu[1], "redis": cpu[2]}
    if publish_on is subscribe_on:
        result["cpu_seconds"]["subscribing_node"] = 0.0  # the same process, counted once
    total = sum(result["cpu_seconds"].values())
    # Nothing is pinned here (three processes and the generator on the machine's cores): the
    # generator's share says whether it, not the cluster, set the figure.
    result["loadgen_cpu_pct"] = 100 * cpu[3] / wall
    result["servers_cpu_pct"] = 100 * total / wall
    result["load_average"] = os.getloadavg()[0]
    result["deliveries_per_server_cpu_s"] = result["deliveries"] / total if total else 0.0
    return result


async def run_once(
    case: str, args: argparse.Namespace, redis: Redis, launcher: RevurbLauncher
) -> dict[str, Any]:
    a, b = launcher.start(), launcher.start()
    try:
        subscribe_on = b if case == "cross-node" else a
        pids = [a.pid, b.pid, redis.process.pid]
        paced = await latency(a, subscribe_on, args.latency_events, args.rate)
        return {"latency": paced, "fanout": fanout(a, subscribe_on, args, pids)}
    finally:
        a.stop()
        b.stop()


def _cluster(args: argparse.Namespace) -> tuple[Redis, RevurbLauncher, dict[str, Any]]:
    """A private Redis, a launcher of nodes that scale through it, and the machine's description."""
    redis = Redis()
    node_env = {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": redis.url, "REVERB_SCALING_CHANNEL": "bench"}
    machine = system.machine(find_node())
    machine["redis"] = redis.version
    return redis, RevurbLauncher(args.commit, node_env), machine


async def run(args: argparse.Namespace) -> dict[str, Any]:
    redis, launcher, machine = _cluster(args)
    result: dict[str, Any] = {
        "scenario": "cluster",
        "options": _options(args),
        "machine": machine,
        "cases": [],
    }
    try:
        for case in ("cross-node", "same-node"):
            runs = []
            for attempt in range(args.repeat):
                print(f"{case}: run {attempt + 1}/{args.repeat}", file=sys.stderr)
                runs.append(await run_once(case, args, redis, launcher))
            result["cases"].append(
                {
                    "case": case,
                    "config": {"nodes": 2, "subscribers": args.subscribers, "publishers": args.publishers},
                    "servers": {"revurb": {"median": report.median(runs), "runs": runs}},
                    "ratios": {},
                    "failures": [],
                }
            )
    finally:
        redis.stop()
        launcher.cleanup()
    return result


async def run_fixed_rate(args: argparse.Namespace) -> dict[str, Any]:
    """Saturated fan-out of each case, then fixed open-loop rates at fractions of the cross-node one."""
    redis, launcher, machine = _cluster(args)
    fractions = [float(part) for part in args.fractions.split(",") if part.strip()]
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        for attempt in range(args.repeat):
            a, b = launcher.start(), launcher.start()
            pids = [a.pid, b.pid, redis.process.pid]
            nodes = {"cross-node": b, "same-node": a}
            try:
                saturated: dict[str, float] = {}
                for case in CASES:
                    # No brake: publishers trigger as fast as node A answers, and the rate at which
                    # events reach every subscriber is what the cluster can deliver.
                    print(f"{case}: saturated, run {attempt + 1}/{args.repeat}", file=sys.stderr)
                    run_ = fanout(a, nodes[case], args, pids, max_lag=0)
                    run_["delivered_events_per_s"] = run_["deliveries_per_s"] / args.subscribers
                    saturated[case] = run_["delivered_events_per_s"]
                    rows.setdefault(f"{case}, saturated", []).append(run_)
                for fraction in fractions:
                    rate = fraction * saturated["cross-node"]
                    for case in CASES:
                        print(f"{case}: {rate:.0f}/s, run {attempt + 1}/{args.repeat}", file=sys.stderr)
                        run_ = fanout(a, nodes[case], args, pids, rate)
                        rows.setdefault(f"{case}, {fraction:.0%} of saturated", []).append(run_)
            finally:
                a.stop()
                b.stop()
    finally:
        redis.stop()
        launcher.cleanup()
    cases = [
        {
            "case": label,
            "config": {"nodes": 2, "subscribers": args.subscribers},
            "servers": {"revurb": {"median": report.median(runs), "runs": runs}},
            "failures": [],
        }
        for label, runs in rows.items()
    ]
    return {"scenario": "cluster-fixed-rate", "options": _options(args), "machine": machine, "cases": cases}


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}


FAULT_ROWS = ("accepted", "lost", "duplicated", "out_of_order")


async def run_fault_scenarios(args: argparse.Namespace) -> dict[str, Any]:
    from bench import faults

    seconds = 60.0 if args.seconds == 10.0 else args.seconds  # --seconds keeps its fanout default
    machine = system.machine(find_node())
    result: dict[str, Any] = {"scenario": "cluster-faults", "options": _options(args), "machine": machine}
    print(f"faults: {seconds:.0f} s, one fault every {args.every:.0f} s", file=sys.stderr)
    result["rotation"] = await faults.run_faults(seconds, args.every, args.trigger_rate, args.commit)
    if args.sentinel:
        print("sentinel: one failover under traffic", file=sys.stderr)
        result["sentinel"] = await faults.run_sentinel(20.0, args.trigger_rate, args.commit)
    return result


def fault_table(result: dict[str, Any]) -> str:
    lines = [
        "| run | accepted | lost | duplicated | out of order | p50/p99 during faults | p50/p99 between |"
    ]
    lines.append("|---|---|---|---|---|---|---|")
    for name in ("rotation", "sentinel"):
        run_ = result.get(name)
        if run_ is None:
            continue
        during, between = run_["latency_during_faults"], run_["latency_between_faults"]
        lines.append(
            f"| {name} | {run_['accepted']} | {run_['lost']} | {run_['duplicated']} | {run_['out_of_order']} "
            f"| {during.get('p50_ms', 0):.1f} / {during.get('p99_ms', 0):.0f} ms "
            f"| {between.get('p50_ms', 0):.1f} / {between.get('p99_ms', 0):.1f} ms |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse(argv)
    system.raise_fd_limit()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.faults:
        faulted = asyncio.run(run_fault_scenarios(args))
        path = report.write(faulted, args.out, stamp)
        print(fault_table(faulted))
        print(f"JSON: {path}")
        clean = all(faulted[k][m] == 0 for k in ("rotation",) for m in FAULT_ROWS[1:])
        return 0 if clean else 1
    ensure_installed()
    if args.fixed_rate:
        fixed = asyncio.run(run_fixed_rate(args))
        path = report.write(fixed, args.out, stamp)
        print(report.table(fixed["cases"], FIXED_RATE_COLUMNS))
        print(f"JSON: {path}")
        return 0
    result = asyncio.run(run(args))
    path = report.write(result, args.out, stamp)
    print(report.table(result["cases"], COLUMNS))
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
