"""Where an idle socket's bytes go: `python -m bench.memory_sites [--sockets 10000]`.

Serves Revurb in this process exactly as `revurb start` does (same settings loader, uvicorn options
and protocols), with `tracemalloc` on from before the first socket. The Node generator's `memory`
scenario opens the sockets, each subscribed to its own channel and to one shared channel; the
allocations that are new once they are all subscribed, grouped by the line that made them, are
printed per socket next to the RSS growth per socket. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import linecache
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from typing import Any

import uvicorn

from bench import driver, servers, system
from revurb.config.load import load_settings
from revurb.serve import Server, uvicorn_options
from revurb.server.app import create_app

#: Lines below this share of the per-socket total are summed into one "elsewhere" row.
_MIN_SHARE = 0.01


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_sites", description=__doc__)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--deflate", action="store_true", help="the clients offer permessage-deflate")
    parser.add_argument("--frames", type=int, default=1, help="traceback depth tracemalloc keeps")
    return parser.parse_args(argv)


def measure(server: Server, port: int, args: argparse.Namespace, found: dict[str, Any]) -> None:
    """In a thread beside the server: wait for it, snapshot, open the sockets, snapshot again."""
    try:
        while not server.started:
            time.sleep(0.05)
        gc.collect()
        idle, rss_idle = tracemalloc.take_snapshot(), system.rss_bytes(os.getpid())
        config = {
            "scenario": "memory",
            "sockets": args.sockets,
            "deflate": args.deflate,
            "concurrency": 100,
            "host": "127.0.0.1",
            "port": port,
            "appId": servers.APP_ID,
            "key": servers.APP_KEY,
            "secret": servers.APP_SECRET,
        }
        generator = driver.LoadGen(config)
        try:
            generator.expect("ready", 120 + args.sockets / 50)
            time.sleep(2.0)
            gc.collect()
            loaded, rss_loaded = tracemalloc.take_snapshot(), system.rss_bytes(os.getpid())
            generator.go()
            found["result"] = generator.expect("result", 60)
        finally:
            generator.finish()
        found["stats"] = loaded.compare_to(idle, "traceback" if args.frames > 1 else "lineno")
        found["rss"] = (rss_idle, rss_loaded)
    except Exception as error:  # the server must stop whatever happened here
        found["error"] = error
    finally:
        server.should_exit = True


def report(found: dict[str, Any], sockets: int) -> str:
    stats = [stat for stat in found["stats"] if stat.size_diff > 0]
    total = sum(stat.size_diff for stat in stats)
    freed = sum(stat.size_diff for stat in found["stats"] if stat.size_diff < 0)
    rss_idle, rss_loaded = found["rss"]
    lines = [
        f"{sockets} sockets, each on its own channel and one shared channel "
        f"(errors: {found['result'].get('errors')})",
        f"RSS growth per socket: {(rss_loaded - rss_idle) / sockets:8.0f} B (with tracemalloc's)",
        f"traced growth per socket: {(total + freed) / sockets:5.0f} B (new {total / sockets:.0f}, freed "
        f"{-freed / sockets:.0f})",
        "",
        f"{'B/socket':>9} {'blocks/socket':>14}  where",
    ]
    elsewhere = 0
    for stat in stats:
        if stat.size_diff < _MIN_SHARE * total:
            elsewhere += stat.size_diff
            continue
        # A traceback runs from the oldest frame to the most recent: the allocation is the last.
        *callers, frame = stat.traceback
        source = linecache.getline(frame.filename, frame.lineno).strip()
        where = f"{_short(frame.filename)}:{frame.lineno}  {source[:70]}"
        lines.append(f"{stat.size_diff / sockets:9.0f} {stat.count_diff / sockets:14.2f}  {where}")
        for outer in reversed(callers):
            lines.append(f"{'':25}  from {_short(outer.filename)}:{outer.lineno}")
    lines.append(f"{elsewhere / sockets:9.0f} {'':14}  elsewhere (each line < {_MIN_SHARE:.0%} of the total)")
    return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return os.path.relpath(filename, system.ROOT)


def main(argv: list[str]) -> int:
    args = parse(argv)
    system.raise_fd_limit()
    driver.ensure_installed()
    tracemalloc.start(args.frames)
    env = {"REVERB_APP_ID": servers.APP_ID, "REVERB_APP_KEY": servers.APP_KEY}
    env["REVERB_APP_SECRET"] = servers.APP_SECRET
    with tempfile.TemporaryDirectory() as scratch:  # no .env or reverb.config.py is picked up
        settings = load_settings(env=env, cwd=scratch)
    app = create_app(settings)
    port = system.free_port()
    options = uvicorn_options(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = Server(config, app)
    found: dict[str, Any] = {}
    thread = threading.Thread(target=measure, args=(server, port, args, found), daemon=True)
    thread.start()
    server.run()
    thread.join(30)
    if "error" in found:
        print(f"failed: {found['error']}", file=sys.stderr)
        return 1
    print(report(found, args.sockets))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
