"""`bench/run churn`: connect, subscribe, disconnect, again and again; does anything stay behind?

Each cycle opens a socket, subscribes it to a public, private, presence or cache channel (signed as
a Laravel backend would), and leaves: most with a close frame, one in ten by dropping the TCP
connection without one. After a warm-up (5,000 cycles by default) the server's RSS is the baseline;
after the run (50,000) it must be within 10% of it, and the server must hold no socket, channel,
presence member, backend count or task more than after the warm-up. The server is `revurb start`
with a hook that reports what it holds (`bench/churn_server.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import hmac
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report, system
from bench.driver import find_node
from bench.servers import APP_ID, APP_KEY, APP_SECRET
from bench.wsraw import client_frame, handshake
from bench.wsraw import read_frame_async as read_frame

RESULTS = system.ROOT / "bench" / "results"
KINDS = ("public", "private", "presence", "cache")
#: One cycle in this many drops its connection without a close frame.
ABRUPT_EVERY = 10


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run churn", description=__doc__)
    parser.add_argument("--warmup", type=int, default=5_000, help="cycles before the baseline")
    parser.add_argument("--cycles", type=int, default=50_000, help="cycles measured")
    parser.add_argument("--concurrency", type=int, default=32, help="cycles in flight")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="")
    return parser.parse_args(argv)


def sign(string: str) -> str:
    return hmac.new(APP_SECRET.encode(), string.encode(), hashlib.sha256).hexdigest()


def subscribe_frame(index: int, socket_id: str) -> bytes:
    kind = KINDS[index % len(KINDS)]
    data: dict[str, Any]
    if kind == "public":
        data = {"channel": f"churn-{index % 50}"}
    elif kind == "cache":
        data = {"channel": f"cache-churn-{index % 50}"}
    elif kind == "private":
        channel = f"private-churn-{index % 50}"
        data = {"channel": channel, "auth": f"{APP_KEY}:{sign(f'{socket_id}:{channel}')}"}
    else:
        channel = f"presence-churn-{index % 20}"
        member = report.dumps({"user_id": f"user-{index % 200}", "user_info": {"n": index % 7}})
        auth = f"{APP_KEY}:{sign(f'{socket_id}:{channel}:{member}')}"
        data = {"channel": channel, "auth": auth, "channel_data": member}
    return client_frame(0x1, report.dumps({"event": "pusher:subscribe", "data": data}).encode())


async def cycle(port: int, index: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(handshake(f"/app/{APP_KEY}?protocol=7"))
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {head[:40]!r}")
        _, established = await read_frame(reader)
        socket_id = report.loads(report.loads(established)["data"])["socket_id"]
        writer.write(subscribe_frame(index, socket_id))
        while True:
            _, payload = await read_frame(reader)
            if b"subscription_succeeded" in payload:
                break
            if b"error" in payload:
                raise RuntimeError(f"subscribe refused: {payload[:120]!r}")
        if index % ABRUPT_EVERY == 0:
            writer.transport.abort()  # no close frame: the server finds out from the TCP connection
            return
        writer.write(client_frame(0x8, struct.pack("!H", 1000)))
        while (await read_frame(reader))[0] != 0x8:
            pass
    finally:
        writer.close()


async def listening(port: int) -> None:
    """Connect once and close again: the server is up. (Left open, the probe's socket would live
    until a collection frees its transport, and the server would count it as a connection left.)"""
    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    writer.close()
    await writer.wait_closed()


async def run_cycles(port: int, start: int, count: int, concurrency: int) -> float:
    queue = iter(range(start, start + count))
    started = time.monotonic()

    async def worker() -> None:
        for index in queue:
            await cycle(port, index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started


def server_state(process: subprocess.Popen[bytes], path: Path) -> dict[str, Any]:
    path.unlink(missing_ok=True)
    process.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while not path.exists() or not path.stat().st_size:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not report its state")
        time.sleep(0.05)
    time.sleep(0.05)
    found: dict[str, Any] = report.loads(path.read_bytes())
    found["rss_mb"] = system.rss_bytes(process.pid) / 2**20
    return found


def main(argv: list[str]) -> int:
    args = parse(argv)
    system.raise_fd_limit()
    port = system.free_port()
    state_file = Path(tempfile.mkdtemp(prefix="revurb-churn-")) / "state.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVERB_", "REDIS_"))}
    env.update({"REVERB_APP_ID": APP_ID, "REVERB_APP_KEY": APP_KEY, "REVERB_APP_SECRET": APP_SECRET})
    env.update(dict(item.split("=", 1) for item in args.server_env))
    env.update({"REVURB_BENCH_STATE": str(state_file), "PYTHONPATH": str(system.ROOT)})
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_fd, log_name = tempfile.mkstemp(prefix="revurb-churn-", suffix=".log")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.churn_server", str(port)],
        env=env,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
    )
    os.close(log_fd)
    result: dict[str, Any] = {
        "scenario": "churn",
        "options": {key: str(value) for key, value in vars(args).items()},
        "machine": system.machine(find_node()),
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(listening(port))
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(Path(log_name).read_text()) from None
                time.sleep(0.1)
        result["start"] = server_state(process, state_file)
        result["warmup_seconds"] = asyncio.run(run_cycles(port, 0, args.warmup, args.concurrency))
        time.sleep(2)  # closes still in flight, then a sweep
        result["after_warmup"] = server_state(process, state_file)
        result["run_seconds"] = asyncio.run(run_cycles(port, args.warmup, args.cycles, args.concurrency))
        time.sleep(2)
        result["after_run"] = server_state(process, state_file)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    warm, end = result["after_warmup"], result["after_run"]
    result["rss_growth"] = end["rss_mb"] / warm["rss_mb"] - 1
    held = ("sockets", "channels", "users", "presence_members", "presence_channels", "subscription_counts")
    result["left_behind"] = {key: end[key] for key in held if end[key]}
    result["tasks_more_than_after_warmup"] = end["tasks"] - warm["tasks"]
    result["ok"] = (
        result["rss_growth"] <= 0.10
        and not result["left_behind"]
        and result["tasks_more_than_after_warmup"] <= 0
    )
    result["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}-churn.json"
    path.write_text(report.dumps(result))
    print(
        f"cycles {args.cycles} after {args.warmup} warm-up ({result['run_seconds']:.1f} s): "
        f"RSS {warm['rss_mb']:.1f} -> {end['rss_mb']:.1f} MB ({result['rss_growth']:+.1%}), "
        f"left behind {result['left_behind'] or 'nothing'}, tasks {warm['tasks']} -> {end['tasks']}, "
        f"connection counts {end['connection_counts']}"
    )
    print(f"JSON: {path}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
