"""A debug console held open on the busy app while a benchmark runs: `python -m bench.watcher`.

Logs in to the dashboard with its secret, opens `api/stream?console=APP&ticks=0` as the page does,
and reads it until stopped (SIGTERM), counting console entries. It prints `watching` once the first
console event has arrived (the console is open on the server), and its counts as JSON when it stops.
Standard library only, so it runs wherever the harness does.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
from types import FrameType


class Stop(Exception):
    """SIGTERM: report and leave."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def login(host: str, port: int, secret: str) -> str:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    body = json.dumps({"secret": secret})
    connection.request("POST", "/dashboard/login", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"dashboard login failed: {response.status}")
    cookie = response.getheader("set-cookie") or ""
    connection.close()
    return cookie.split(";", 1)[0]


def watch(host: str, port: int, cookie: str, app: str) -> dict[str, int]:
    counts = {"events": 0, "entries": 0, "bytes": 0, "skipped": 0}
    connection = http.client.HTTPConnection(host, port, timeout=None)
    connection.request("GET", f"/dashboard/api/stream?console={app}&ticks=0", headers={"Cookie": cookie})
    response = connection.getresponse()
    if response.status != 200:
        raise SystemExit(f"dashboard stream refused: {response.status}")
    announced = False
    try:
        for raw in response:
            counts["bytes"] += len(raw)
            line = raw.decode().rstrip("\n")
            if not line.startswith("data: "):
                continue
            batch = json.loads(line[len("data: ") :])
            counts["events"] += 1
            counts["entries"] += len(batch["entries"])
            counts["skipped"] = batch["skipped"]
            if not announced:
                print("watching", flush=True)
                announced = True
    except Stop:
        pass
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.watcher")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--app", required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    counts = watch(args.host, args.port, login(args.host, args.port, args.secret), args.app)
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
