"""`python -m bench.reassert`: how long Redis is blocked by a re-assert and a sweep of a big share.

Builds a node's share of `--sockets` presence sockets (channels of `--per-channel` users, plus
the matching subscription and connection counts), then, against a private redis-server: re-asserts
it into an empty Redis (every user announced), re-asserts it again unchanged (nothing announced),
and sweeps it. Every script call is timed by Redis itself (SLOWLOG, calls over 1 ms), so the
longest call is exactly how long Redis could answer nobody else.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from typing import Any

import redis.asyncio as aioredis

from revurb.scaling.mirror import Mirror
from revurb.scaling.share import Share
from tests.support.servers import RedisServer, free_port

PREFIX = "bench-reassert"
SLOWLOG_MICROSECONDS = 1000


def _share(sockets: int, per_channel: int) -> Mirror:
    mirror = Mirror()
    for n in range(sockets):
        channel = f"presence-room-{n // per_channel}"
        mirror.add_member("1", channel, f"user-{n}", {"name": f"User {n}", "id": n})
        mirror.add_subscriber("1", channel, 1)
        mirror.add_connection("1", 1)
    return mirror


async def _timed(client: aioredis.Redis, step: Any) -> dict[str, float]:
    await client.slowlog_reset()
    started = time.perf_counter()
    await step
    wall = time.perf_counter() - started
    entries = await client.slowlog_get(100_000)
    calls = [entry["duration"] for entry in entries if _name(entry["command"]).startswith("EVAL")]
    return {
        "script_calls_over_1ms": len(calls),
        "longest_call_ms": max(calls, default=0) / 1000,
        "wall_s": round(wall, 2),
    }


def _name(command: bytes | str) -> str:
    return command.decode(errors="replace") if isinstance(command, bytes) else command


async def measure(sockets: int, per_channel: int) -> dict[str, Any]:
    server = RedisServer(port=free_port(), directory=tempfile.mkdtemp(prefix="revurb-bench-reassert-"))
    server.start()
    client = aioredis.Redis.from_url(server.url)
    try:
        # Commands run by a script are logged too; 1 ms keeps only the script calls that matter.
        await client.config_set("slowlog-log-slower-than", SLOWLOG_MICROSECONDS)
        await client.config_set("slowlog-max-len", 100_000)
        mirror = _share(sockets, per_channel)
        share = Share(client, PREFIX, "node-a", 100_000)
        await share.reassert(Mirror(), 15_000)  # load the scripts; nothing to write yet
        result = {
            "sockets": sockets,
            "per_channel": per_channel,
            "reassert_into_empty_redis": await _timed(client, share.reassert(mirror, 15_000)),
            "reassert_unchanged": await _timed(client, share.reassert(mirror, 15_000)),
        }
        await client.delete(f"{PREFIX}:node:node-a")
        sweeper = Share(client, PREFIX, "node-b", 100_000)
        result["sweep"] = await _timed(client, sweeper.sweep("node-a", 60))
        result["bus_entries"] = await client.xlen(f"{PREFIX}:bus")
        return result
    finally:
        await client.aclose()
        server.stop(signal.SIGKILL)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reassert", description=__doc__)
    parser.add_argument("--sockets", type=int, default=100_000)
    parser.add_argument("--per-channel", type=int, default=100)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.sockets, args.per_channel))
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
