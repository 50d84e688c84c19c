"""`python -m bench.cycles`: the server's own CPU time per new socket, without the kernel or a generator.

`bench/run connect` measures whole cycles over loopback, where the kernel's share and the generator's
pace move the figure by ±10 % from one run to the next on a shared host. This runs the same cycle in
one process, through the real `HttpProtocol`, `WebSocketProtocol` and Revurb app (memory backend,
default settings) on a fake transport: the upgrade, `pusher:connection_established`, a subscribe and
its ack, the client's close frame and the connection's loss. What it prints is the Python and event
loop work of one cycle, for comparing two versions of the code. `--trigger` runs signed
`POST /apps/{id}/events` requests (no subscribers) on one keep-alive connection instead.

    python -m bench.cycles [--trigger] [--cycles 10000] [--repeat 5] [--calls]

`--calls` also counts the Python functions one cycle calls (under cProfile, so not timed). On a host
shared with others even CPU time varies by ±5 %; instructions do not: run it under
`valgrind --tool=callgrind` with two `--cycles` counts and divide the difference (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import hmac
import json
import os
import pstats
import statistics
import time
from typing import Any

import uvicorn
import uvloop

from revurb.config.load import settings_from_env
from revurb.serve import Server, uvicorn_options
from revurb.server.app import create_app

APP_ID, KEY, SECRET = "1001", "bench-key", "bench-secret"
PORT = 18_999  # only named in the scope: nothing listens
HANDSHAKE = (
    f"GET /app/{KEY}?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()
MASK = bytes((0x37, 0xFA, 0x21, 0x3D))
OP_TEXT, OP_CLOSE = 0x1, 0x8


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (masked, under 126 bytes)."""
    body = bytes(byte ^ MASK[i % 4] for i, byte in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + MASK + body


SUBSCRIBE = masked(OP_TEXT, b'{"event":"pusher:subscribe","data":{"channel":"cycles"}}')
CLOSE = masked(OP_CLOSE, (1000).to_bytes(2, "big"))


class FakeTransport:
    """What uvloop's TCP transport offers a protocol, with writes kept and the close reported."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client_port: int) -> None:
        self.loop = loop
        self.protocol: Any = None
        self.closing = False
        self.written: list[bytes] = []
        self.extra = {"sockname": ("127.0.0.1", PORT), "peername": ("127.0.0.1", client_port)}

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def get_write_buffer_size(self) -> int:
        return 0


async def _turn() -> None:
    """One loop iteration: what the cycle scheduled (the coalescer's writes, the close) runs."""
    await asyncio.sleep(0)


class Cycles:
    """Runs connect cycles against a started server's protocol classes."""

    #: Loop turns a cycle takes (the idle ones are measured apart).
    turns = 4

    def __init__(self, config: uvicorn.Config, server: Server) -> None:
        self.config = config
        self.state = server.server_state
        self.http: Any = config.http_protocol_class  # Revurb's, which takes `_loop`
        self.loop = asyncio.get_running_loop()
        self.app_state: dict[str, Any] = {}

    async def run(self, count: int) -> int:
        """Run `count` cycles; returns how many did not see exactly the three answers expected."""
        wrong = 0
        for number in range(count):
            transport = FakeTransport(self.loop, 1024 + number % 60_000)
            protocol = self.http(
                config=self.config, server_state=self.state, app_state=self.app_state, _loop=self.loop
            )
            transport.protocol = protocol
            protocol.connection_made(transport)  # duck-typed, as uvloop's transports are
            protocol.data_received(HANDSHAKE)
            await _turn()
            transport.protocol.data_received(SUBSCRIBE)
            await _turn()
            transport.protocol.data_received(CLOSE)
            await _turn()
            await _turn()
            written = transport.written
            if not (
                len(written) == 3
                and written[0].startswith(b"HTTP/1.1 101 ")
                and b"pusher:connection_established" in written[0]
                and b"pusher_internal:subscription_succeeded" in written[1]
                and written[2] == b"\x88\x02\x03\xe8"
                and transport.closing
            ):
                wrong += 1
        return wrong


def signed_trigger(now: float) -> bytes:
    """A signed `POST /apps/{id}/events` of one small event, as the `pusher` server SDKs send it."""
    body = json.dumps({"name": "cycle", "channel": "cycles", "data": "{}"}).encode()
    path = f"/apps/{APP_ID}/events"
    params = {
        "auth_key": KEY,
        "auth_timestamp": str(int(now)),
        "auth_version": "1.0",
        "body_md5": hashlib.md5(body).hexdigest(),
    }
    query = "&".join(f"{name}={value}" for name, value in sorted(params.items()))
    signature = hmac.new(SECRET.encode(), f"POST\n{path}\n{query}".encode(), hashlib.sha256).hexdigest()
    head = (
        f"POST {path}?{query}&auth_signature={signature} HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Triggers(Cycles):
    """Signed triggers with no subscribers, one after another on one keep-alive connection."""

    turns = 1

    def __init__(self, config: uvicorn.Config, server: Server) -> None:
        super().__init__(config, server)
        self.request = signed_trigger(time.time())  # a run is well inside the 600 s signature window
        self.transport = FakeTransport(self.loop, 1024)
        self.protocol = self.http(
            config=self.config, server_state=self.state, app_state=self.app_state, _loop=self.loop
        )
        self.transport.protocol = self.protocol
        self.protocol.connection_made(self.transport)

    async def run(self, count: int) -> int:
        """Send `count` triggers; returns how many were not answered `200` (answers may share a write)."""
        written = self.transport.written
        written.clear()
        for _ in range(count):
            self.protocol.data_received(self.request)
            await _turn()
        for _ in range(3):  # an answer that waited on the app (its first request warms caches) comes too
            await _turn()
        answers = b"".join(written)
        answered, ok = answers.count(b"HTTP/1.1 "), answers.count(b"HTTP/1.1 200 OK\r\n")
        return count - ok + abs(answered - count)  # refused, or a request with no answer (or two)


async def measure(cycles: int, repeat: int, calls: bool, kind: type[Cycles] = Cycles) -> dict[str, Any]:
    env = {
        **os.environ,
        "REVERB_APP_ID": APP_ID,
        "REVERB_APP_KEY": KEY,
        "REVERB_APP_SECRET": SECRET,
        "REVERB_SERVER_HOST": "127.0.0.1",
        "REVERB_SERVER_PORT": str(PORT),
    }
    settings = settings_from_env({k: v for k, v in env.items() if not k.startswith("REDIS_")})
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=PORT, **uvicorn_options(settings), log_level="warning"
    )
    server = Server(config, app)
    serving = asyncio.create_task(server.serve(sockets=[]))  # no listener: the cycles come from here
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        runner = kind(config, server)
        wrong = await runner.run(min(cycles, 2_000))  # warm-up: caches, free lists, the first gc
        times = []
        for _ in range(repeat):
            started = time.process_time()
            wrong += await runner.run(cycles)
            times.append((time.process_time() - started) / cycles * 1e6)
        started = time.process_time()
        for _ in range(cycles):
            for _ in range(runner.turns):
                await _turn()
        idle = (time.process_time() - started) / cycles * 1e6
        result: dict[str, Any] = {
            "kind": "trigger" if kind is Triggers else "connect",
            "cycles": cycles,
            "repeat": repeat,
            "wrong": wrong,
            "cpu_us_per_cycle": {"median": statistics.median(times), "min": min(times), "runs": times},
            "loop_turns_us": idle,
        }
        if calls:
            profile = cProfile.Profile()
            profile.enable()
            wrong += await runner.run(cycles)
            profile.disable()
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            python = sum(entry[1] for (path, _, _), entry in stats.items() if not path.startswith("~"))
            builtin = sum(entry[1] for (path, _, _), entry in stats.items() if path.startswith("~"))
            result["python_calls_per_cycle"] = round(python / cycles, 1)
            result["builtin_calls_per_cycle"] = round(builtin / cycles, 1)
            result["wrong"] = wrong
        return result
    finally:
        server.should_exit = True
        await serving


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cycles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trigger", action="store_true", help="signed triggers instead of connect cycles")
    parser.add_argument("--cycles", type=int, default=10_000, help="cycles per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the median is reported")
    parser.add_argument("--calls", action="store_true", help="also count Python calls per cycle (cProfile)")
    args = parser.parse_args()
    result = uvloop.run(measure(args.cycles, args.repeat, args.calls, Triggers if args.trigger else Cycles))
    median = result["cpu_us_per_cycle"]["median"]
    turns = result["loop_turns_us"]
    runs = f"median of {args.repeat} x {args.cycles}"
    line = f"{median:.1f} µs of CPU per cycle ({runs}; idle loop turns {turns:.1f})"
    if "python_calls_per_cycle" in result:
        line += f", {result['python_calls_per_cycle']} Python calls"
    print(line)
    print(json.dumps(result))
    if result["wrong"]:
        raise SystemExit(f"{result['wrong']} cycles did not get the expected answers")


if __name__ == "__main__":
    main()
