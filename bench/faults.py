"""`bench/run cluster --faults`: three nodes under continuous triggers while Redis fails.

A caller triggers through node A on a fixed schedule for `--seconds`; every `--every` seconds one
fault from the rotation is injected: Redis stopped with SIGTERM and restarted on the same port,
the same with SIGKILL, `CLIENT KILL` of A's bus connection, `CLIENT PAUSE 5000 ALL`, and A's link
going silent for 5 s (a half-open TCP proxy) before it is reset. A subscriber on every node
records what arrives. Reported: events accepted (2xx), deliveries lost, duplicated and out of
order, and latency (trigger sent -> frame received) p50/p99 during faults and between them.
With `--sentinel`, a second run does the same on a Sentinel topology whose primary is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench import report
from bench.cluster import signed_query
from bench.servers import APP_ID, APP_KEY, RevurbLauncher, Server
from tests.support.proxy import FreezableProxy
from tests.support.sentinel import MASTER_NAME, sentinel_topology
from tests.support.servers import RedisServer, free_port

CHANNEL = "bench-faults"
#: Seconds after a fault ends that still count as "during" it (recovery, catching up).
SETTLE = 2.0
OUTAGE = 1.5
SILENCE = 5.0


@dataclass
class Record:
    """What the caller sent and what each subscriber got."""

    sent_at: dict[int, float] = field(default_factory=dict)
    accepted: list[int] = field(default_factory=list)
    refused: int = 0
    received: list[list[tuple[int, float]]] = field(default_factory=list)
    windows: list[tuple[str, float, float]] = field(default_factory=list)


async def _caller(node: Server, record: Record, every: float, until: float) -> None:
    path = f"/apps/{APP_ID}/events"
    async with httpx.AsyncClient(timeout=20) as http:
        n = 0
        start = time.monotonic()
        while time.monotonic() < until:
            body = report.dumps({"name": "tick", "channels": [CHANNEL], "data": str(n)}).encode()
            record.sent_at[n] = time.monotonic()
            try:
                response = await http.post(
                    f"http://127.0.0.1:{node.port}{path}",
                    content=body,
                    params=signed_query(path, body),
                    headers={"content-type": "application/json"},
                )
                if response.status_code == 200:
                    record.accepted.append(n)
                else:
                    record.refused += 1
            except httpx.HTTPError:
                record.refused += 1
            n += 1
            await asyncio.sleep(max(0.0, start + n * every - time.monotonic()))


async def _subscriber(node: Server, got: list[tuple[int, float]], ready: asyncio.Event) -> None:
    url = f"ws://127.0.0.1:{node.port}/app/{APP_KEY}?protocol=7&client=js&version=8.4.0"
    async with websockets.connect(url, compression=None) as ws:
        await ws.recv()
        await ws.send(report.dumps({"event": "pusher:subscribe", "data": {"channel": CHANNEL}}))
        await ws.recv()
        ready.set()
        async for frame in ws:
            message = report.loads(frame)
            if message.get("event") == "tick":
                got.append((int(message["data"]), time.monotonic()))


def _analyse(record: Record) -> dict[str, Any]:
    accepted = set(record.accepted)
    lost = duplicated = inversions = 0
    during: list[float] = []
    between: list[float] = []
    for got in record.received:
        numbers = [n for n, _ in got]
        lost += len(accepted - set(numbers))
        duplicated += len(numbers) - len(set(numbers))
        inversions += sum(1 for a, b in zip(numbers, numbers[1:], strict=False) if b < a)
        for n, at in got:
            sent = record.sent_at[n]
            latency = (at - sent) * 1000
            hit = any(start <= sent <= end + SETTLE for _, start, end in record.windows)
            (during if hit else between).append(latency)
    return {
        "accepted": len(record.accepted),
        "refused": record.refused,
        "subscribers": len(record.received),
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": inversions,
        "latency_during_faults": _percentiles(during),
        "latency_between_faults": _percentiles(between),
        "faults": [
            {"fault": name, "at_s": round(start - record.windows[0][1], 1)}
            for name, start, _ in record.windows
        ],
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"count": len(samples)}
    cuts = statistics.quantiles(samples, n=100)
    return {"count": len(samples), "p50_ms": cuts[49], "p99_ms": cuts[98], "max_ms": max(samples)}


Fault = Callable[[], Awaitable[None]]


async def _traffic(
    nodes: list[Server], faults: list[tuple[str, Fault]], seconds: float, every: float, rate: float
) -> dict[str, Any]:
    record = Record(received=[[] for _ in nodes])
    readies = [asyncio.Event() for _ in nodes]
    readers = [
        asyncio.create_task(_subscriber(node, got, ready))
        for node, got, ready in zip(nodes, record.received, readies, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 10)
    start = time.monotonic()
    caller = asyncio.create_task(_caller(nodes[0], record, 1 / rate, start + seconds))
    slot = 0
    while start + (slot + 0.5) * every < start + seconds:
        await asyncio.sleep(max(0.0, start + (slot + 0.5) * every - time.monotonic()))
        name, fault = faults[slot % len(faults)]
        began = time.monotonic()
        await fault()
        record.windows.append((name, began, time.monotonic()))
        slot += 1
    await caller
    deadline = time.monotonic() + 20
    accepted = set(record.accepted)
    while time.monotonic() < deadline and not all(accepted <= {n for n, _ in got} for got in record.received):
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    for reader in readers:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
    return _analyse(record)


async def run_faults(seconds: float, every: float, rate: float, commit: str | None) -> dict[str, Any]:
    """The rotation on one private redis-server; node A reaches it through a freezable proxy."""
    redis = RedisServer(port=free_port(), directory=tempfile.mkdtemp(prefix="revurb-bench-faults-"))
    redis.start()
    proxy = FreezableProxy(redis.port)
    proxy.start()
    env = {"REVERB_SCALING_ENABLED": "true", "REVERB_SCALING_CHANNEL": "bench-faults"}
    env["REVERB_SCALING_HEARTBEAT_INTERVAL"] = "4"
    nodes: list[Server] = []
    launchers = [
        RevurbLauncher(commit, {**env, "REDIS_URL": url}) for url in (proxy.url, redis.url, redis.url)
    ]
    try:
        nodes = [launcher.start() for launcher in launchers]
        node_id = httpx.get(f"http://127.0.0.1:{nodes[0].port}/up").json()["scaling"]["node"]

        def restart(sig: int) -> Fault:
            async def fault() -> None:
                await asyncio.to_thread(redis.stop, sig)
                await asyncio.sleep(OUTAGE)
                await asyncio.to_thread(redis.start)

            return fault

        async def kill_bus() -> None:
            redis.kill_client(f"revurb-{node_id}-bus")

        async def pause() -> None:
            redis.command("CLIENT", "PAUSE", "5000", "ALL")
            await asyncio.sleep(5)

        async def half_open() -> None:
            proxy.freeze()
            await asyncio.sleep(SILENCE)
            proxy.reset()

        faults: list[tuple[str, Fault]] = [
            ("redis SIGTERM, restarted", restart(signal.SIGTERM)),
            ("redis SIGKILL, restarted", restart(signal.SIGKILL)),
            ("CLIENT KILL of A's bus link", kill_bus),
            ("CLIENT PAUSE 5000 ALL", pause),
            ("A's link silent 5 s, then reset", half_open),
        ]
        result = await _traffic(nodes, faults, seconds, every, rate)
        result["alive"] = all(node.alive() for node in nodes)
        return result
    finally:
        for node in nodes:
            node.stop()
        for launcher in launchers:
            launcher.cleanup()
        proxy.stop()
        redis.stop(signal.SIGKILL)


async def run_sentinel(seconds: float, rate: float, commit: str | None) -> dict[str, Any]:
    """Continuous triggers while a Sentinel-managed primary is SIGKILLed and a replica promoted."""
    with sentinel_topology(Path(tempfile.mkdtemp(prefix="revurb-bench-sentinel-"))) as topology:
        env = {
            "REVERB_SCALING_ENABLED": "true",
            "REVERB_SCALING_CHANNEL": "bench-sentinel",
            "REVERB_SCALING_HEARTBEAT_INTERVAL": "4",
            "REDIS_SENTINELS": topology.hosts,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
        }
        launcher = RevurbLauncher(commit, env)
        nodes = [launcher.start() for _ in range(3)]
        try:

            async def failover() -> None:
                await asyncio.to_thread(topology.primary.stop, signal.SIGKILL)
                await asyncio.to_thread(topology.wait_for_failover)

            result = await _traffic(nodes, [("sentinel failover", failover)], seconds, seconds, rate)
            result["alive"] = all(node.alive() for node in nodes)
            return result
        finally:
            for node in nodes:
                node.stop()
            launcher.cleanup()
