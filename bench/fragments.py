"""`bench/run fragments`: one socket sends a text message as N one-byte continuation frames.

Measures, per N (30,000 and 300,000 by default):
- time and server CPU per fragment, from the first byte sent to the server's answer to the whole
  message (a `pusher:pong`: the message is a padded `pusher:ping`), so a linear reassembly shows the
  same cost per fragment at both sizes;
- event-loop lag while the server works through them: a probe thread pings the server on another
  socket every 5 ms (`pusher:ping` -> `pusher:pong`), and the longest round trip bounds how long the
  loop was held; a signed trigger every 20 ms to a subscribed bystander gives the same from the
  HTTP API's side.
The server runs with `max_message_size` raised so that the 300,000-byte message is accepted: the
work measured is reassembly, not a refusal. `--commit REF` serves an older revurb/ for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import report, system
from bench.driver import find_node
from bench.servers import APP_ID, APP_KEY, APP_SECRET, RevurbLauncher, Server
from bench.wsraw import (
    PING,
    PONG_EVENT,
    client_frame,
    handshake,
    read_frame,
    read_frame_async,
    signed_trigger,
)

RESULTS = system.ROOT / "bench" / "results"
PROBE_EVERY = 0.005
TRIGGER_EVERY = 0.02
PREFIX = b'{"event":"pusher:ping","data":{},"padding":"'
SUFFIX = b'"}'


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run fragments", description=__doc__)
    parser.add_argument("--fragments", default="30000,300000", help="comma list of fragment counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per count; medians are reported")
    parser.add_argument("--commit", help="serve revurb/ as of this git ref (git archive)")
    parser.add_argument("--give-up", type=float, default=120.0, help="seconds before a run is abandoned")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="")
    return parser.parse_args(argv)


def message(count: int) -> bytes:
    """A padded `pusher:ping` in `count` frames: the head, count - 2 one-byte frames, the tail."""
    frames = [client_frame(0x1, PREFIX, fin=False)]
    frames += [client_frame(0x0, b"x", fin=False)] * (count - 2)
    frames.append(client_frame(0x0, SUFFIX, fin=True))
    return b"".join(frames)


class Probe(threading.Thread):
    """Pings the server every 5 ms on a socket of its own (blocking I/O: no share of our loop)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.samples: list[tuple[float, float]] = []  # (sent at, round trip)
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.settimeout(30)
            stream = sock.makefile("rb")
            sock.sendall(handshake(f"/app/{APP_KEY}?protocol=7"))
            while stream.readline() not in (b"\r\n", b""):
                pass
            read_frame(stream)  # pusher:connection_established
            self.ready.set()
            while not self.stop.is_set():
                sent = time.monotonic()
                sock.sendall(client_frame(0x1, PING))
                while PONG_EVENT not in read_frame(stream)[1]:
                    pass
                self.samples.append((sent, time.monotonic() - sent))
                time.sleep(max(0.0, PROBE_EVERY - (time.monotonic() - sent)))


async def _bystander(
    port: int, stop: asyncio.Event, waits: list[float], errors: list[str], give_up: float
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=give_up) as client:
        while not stop.is_set():
            started = time.monotonic()
            path, params, body = signed_trigger(APP_ID, APP_KEY, APP_SECRET, "bench-bystander")
            try:
                response = await client.post(path, params=params, content=body)
                response.raise_for_status()
            except httpx.HTTPError as error:
                errors.append(f"{type(error).__name__} after {time.monotonic() - started:.3f} s")
            waits.append(time.monotonic() - started)
            await asyncio.sleep(TRIGGER_EVERY)


async def attack(server: Server, count: int, payload: bytes, give_up: float) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(handshake(f"/app/{APP_KEY}?protocol=7"))
    await reader.readuntil(b"\r\n\r\n")
    (await read_frame_async(reader))[1]  # pusher:connection_established
    probe = Probe(server.port)
    probe.start()
    probe.ready.wait(10)
    stop = asyncio.Event()
    trigger_waits: list[float] = []
    trigger_errors: list[str] = []
    bystander = asyncio.create_task(_bystander(server.port, stop, trigger_waits, trigger_errors, give_up))
    await asyncio.sleep(0.5)  # a baseline of round trips before the attack
    cpu_before = system.cpu_seconds(server.pid)
    started = time.monotonic()
    writer.write(payload)
    async with asyncio.timeout(give_up):
        while PONG_EVENT not in (await read_frame_async(reader))[1]:
            pass
    elapsed = time.monotonic() - started
    cpu = system.cpu_seconds(server.pid) - cpu_before
    await asyncio.sleep(0.2)
    stop.set()
    probe.stop.set()
    await bystander
    probe.join(10)
    writer.close()
    during = [rtt for at, rtt in probe.samples if started <= at <= started + elapsed]
    before = [rtt for at, rtt in probe.samples if at < started]
    return {
        "fragments": count,
        "seconds": elapsed,
        "us_per_fragment": elapsed / count * 1e6,
        "server_cpu_us_per_fragment": cpu / count * 1e6,
        "probe_pings_during": len(during),
        "loop_lag_max_ms": max(during, default=0.0) * 1000,
        "probe_rtt_p50_before_ms": statistics.median(before) * 1000 if before else None,
        "trigger_answer_max_ms": max(trigger_waits, default=0.0) * 1000,
        "trigger_errors": trigger_errors,
    }


COLUMNS: list[report.Column] = [
    ("us/fragment", "us_per_fragment", ".2f"),
    ("server CPU us/fragment", "server_cpu_us_per_fragment", ".2f"),
    ("seconds", "seconds", ".3f"),
    ("loop lag max ms", "loop_lag_max_ms", ".1f"),
    ("probe pings", "probe_pings_during", ".0f"),
    ("trigger max ms", "trigger_answer_max_ms", ".1f"),
]


def main(argv: list[str]) -> int:
    args = parse(argv)
    counts = [int(part) for part in args.fragments.split(",")]
    largest = max(counts) + len(PREFIX) + len(SUFFIX)
    launcher = RevurbLauncher(args.commit, {"REVERB_APP_MAX_MESSAGE_SIZE": str(largest)})
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {
        "scenario": "fragments",
        "options": {key: str(value) for key, value in vars(args).items()},
        "machine": system.machine(find_node()),
        "servers": {"revurb": launcher.details},
        "cases": [],
    }
    payloads = {count: message(count) for count in counts}
    try:
        for count in counts:
            runs: list[dict[str, Any]] = []
            failures: list[str] = []
            for attempt in range(args.repeat):
                print(f"{count} fragments: run {attempt + 1}/{args.repeat}", file=sys.stderr)
                server = launcher.start()
                try:
                    runs.append(asyncio.run(attack(server, count, payloads[count], args.give_up)))
                except (TimeoutError, OSError) as error:
                    failures.append(f"run {attempt + 1}: {type(error).__name__}: {error}")
                finally:
                    server.stop()
            result["cases"].append(
                {
                    "case": f"{count} fragments",
                    "servers": {"revurb": {"median": report.median(runs) if runs else {}, "runs": runs}},
                    "failures": failures,
                    "ratios": {},
                }
            )
    finally:
        launcher.cleanup()
    result["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    path = report.write(result, args.out, stamp)
    print(report.table(result["cases"], COLUMNS))
    print(f"JSON: {path}")
    return 1 if any(case["failures"] for case in result["cases"]) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
