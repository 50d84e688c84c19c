"""The Redis backend in process, against a real redis-server: queue bound, re-assert, tombstones."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from revurb.scaling.base import BusMessage, Receipt
from revurb.scaling.redis import Link, RedisBackend, RedisOptions
from revurb.scaling.share import Share
from tests.support.pusher_socket import unique
from tests.support.servers import RedisServer, free_port
from tests.support.tls import self_signed

LONG_HEARTBEAT = 10.0
HEARTBEAT = 0.4
StartBackends = Callable[..., Awaitable[tuple[tuple[RedisBackend, "RecordingNode"], ...]]]


class RecordingNode:
    """Stands in for the registry: records what the backend hands it."""

    def __init__(self) -> None:
        self.messages: list[BusMessage] = []
        self.reconciled = 0

    def on_bus_message(self, message: BusMessage) -> None:
        self.messages.append(message)

    async def reconcile(self) -> bool:
        self.reconciled += 1
        return True

    def events(self) -> list[str]:
        return [m["frame"] for m in self.messages if m["type"] == "event"]

    def members(self) -> list[tuple[str, str, bool]]:
        return [(m["channel"], m["user_id"], m["added"]) for m in self.messages if m["type"] == "member"]


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, free to stop and flush."""
    server = RedisServer(port=free_port(), directory=tempfile.mkdtemp(prefix="revurb-redis-"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def backends(private_redis: RedisServer) -> AsyncIterator[StartBackends]:
    started: list[RedisBackend] = []
    prefix = unique("revurb-unit-")

    async def start(count: int, **options: Any) -> tuple[tuple[RedisBackend, RecordingNode], ...]:
        pairs: list[tuple[RedisBackend, RecordingNode]] = []
        for _ in range(count):
            backend = RedisBackend(
                RedisOptions(url=private_redis.url, prefix=prefix, heartbeat_interval=HEARTBEAT, **options)
            )
            node = RecordingNode()
            await backend.start(node)
            started.append(backend)
            pairs.append((backend, node))
        return tuple(pairs)

    yield start
    for backend in started:
        await backend.stop()


async def _until(check: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def _placed(receipt: Receipt, timeout: float = 5.0) -> None:
    """Wait until a published message has its place in the bus (Redis accepted it)."""
    assert receipt is not None
    async with asyncio.timeout(timeout):
        await receipt


def _event(n: int) -> BusMessage:
    return {"type": "event", "app": "1", "channel": "news", "frame": f'{{"n":{n}}}'}


async def test_outage_queue_keeps_the_newest_in_order(
    backends: StartBackends, private_redis: RedisServer
) -> None:
    (a, a_node), (b, b_node) = await backends(2, queue_size=5)
    await _placed(a.publish(_event(0)))
    await _until(lambda: len(b_node.messages) == 1)
    private_redis.stop()
    await _until(lambda: a.health().get("health") == "DEGRADED")
    for n in range(1, 9):
        placed = a.publish(_event(n))
        assert placed is not None and placed.done()  # queued while Redis is known down: placed
    assert a_node.events() == [f'{{"n":{n}}}' for n in range(9)]  # its own, at once
    assert a.health()["scaling"]["queued"] == 5
    assert a.health()["scaling"]["dropped"] == 3
    private_redis.start()
    await _until(lambda: len(b_node.messages) == 6, timeout=10)
    assert b_node.events() == [f'{{"n":{n}}}' for n in (0, 4, 5, 6, 7, 8)]
    assert b_node.messages[1] == {
        "type": "event",
        "app": "1",
        "channel": "news",
        "frame": '{"n":4}',
        "node": a.node_id,
        "seq": 5,
    }
    await _until(lambda: a.health().get("health") is None and a.health()["scaling"]["queued"] == 0)
    await asyncio.sleep(0.2)
    assert len(b_node.messages) == 6  # nothing delivered twice
    assert len(a_node.messages) == 9  # and nothing read back that was delivered already


async def test_a_node_reads_what_it_missed_while_its_bus_link_was_down(
    backends: Any, private_redis: RedisServer
) -> None:
    (a, _), (b, b_node) = await backends(2)
    await _until(lambda: private_redis.kill_client(f"revurb-{b.node_id}-bus"))
    for n in range(20):
        await _placed(a.publish(_event(n)))
    await _until(lambda: len(b_node.events()) == 20, timeout=10)
    assert b_node.events() == [f'{{"n":{n}}}' for n in range(20)]


async def test_state_is_reasserted_after_redis_loses_it(
    backends: StartBackends, private_redis: RedisServer
) -> None:
    (a, a_node), (b, b_node) = await backends(2)
    assert await a.add_connection("1") == 1
    assert await b.add_connection("1") == 2
    assert await a.add_subscriber("1", "presence-room") == 1
    assert await a.add_member("1", "presence-room", "u1", {"name": "U1"}, "1.1") is False  # on the bus
    assert await b.add_subscriber("1", "presence-room") == 2
    assert await b.add_member("1", "presence-room", "u1", {"name": "U1"}, "2.1") is False
    await a.cache_put("1", "cache-x", '{"event":"e"}')
    await _until(lambda: b_node.members() == [("presence-room", "u1", True)])

    private_redis.flush()
    assert await b.connection_count("1") == 0

    async def whole() -> bool:
        return (
            await b.connection_count("1") == 2
            and await b.occupied_channels("1") == {"presence-room": 2}
            and await a.members("1", "presence-room") == {"u1": {"name": "U1"}}
            and (await b.cache_get("1", "cache-x") or dict[str, str]()).get("frame") == '{"event":"e"}'
        )

    async with asyncio.timeout(3 * HEARTBEAT + 2):
        while not await whole():
            await asyncio.sleep(0.05)
    # Redis lost the roster, so the re-assert announces u1 once more (nodes that still list u1
    # drop it: see the manager's roster view); nobody is announced gone.
    await asyncio.sleep(0.2)
    assert b_node.members() == [("presence-room", "u1", True), ("presence-room", "u1", True)]
    assert await a.remove_member("1", "presence-room", "u1") is False
    assert await b.remove_member("1", "presence-room", "u1") is False
    await _until(lambda: b_node.members()[-1] == ("presence-room", "u1", False))
    roster = await b.roster("1", "presence-room")
    assert roster is not None and roster.users == {}


async def test_a_node_declared_dead_announces_its_users_again(
    backends: StartBackends, private_redis: RedisServer
) -> None:
    (a, a_node), (b, b_node) = await backends(2)
    assert await a.add_member("1", "presence-room", "u1", {"name": "U1"}, "1.1") is False
    assert await a.add_subscriber("1", "presence-room") == 1
    client = aioredis.Redis.from_url(private_redis.url, decode_responses=True)
    try:
        await client.delete(f"{a.prefix}:node:{a.node_id}")  # as if a's heartbeat had lapsed
        share = Share(client, a.prefix, "sweeper", 100)
        assert await share.sweep(a.node_id, 60) is True
    finally:
        await client.aclose()
    assert await b.members("1", "presence-room") == {}
    await _until(lambda: len(b_node.members()) == 3, timeout=3 * HEARTBEAT + 2)
    assert b_node.members() == [
        ("presence-room", "u1", True),
        ("presence-room", "u1", False),
        ("presence-room", "u1", True),
    ]
    versions = [m["version"] for m in b_node.messages if m["type"] == "member"]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert await b.members("1", "presence-room") == {"u1": {"name": "U1"}}
    assert await b.subscription_count("1", "presence-room") == 1


async def test_a_dead_node_is_swept_by_a_live_one(backends: StartBackends) -> None:
    (a, _), (b, b_node) = await backends(2)
    await a.add_member("1", "presence-room", "u1", {"name": "U1"}, "1.1")
    await b.add_member("1", "presence-room", "u2", {"name": "U2"}, "2.1")
    await a.add_connection("1")
    for task in list(a._tasks):  # a stops beating without leaving, as if killed
        task.cancel()
    a._link = Link.DOWN
    await _until(lambda: ("presence-room", "u1", False) in b_node.members(), timeout=2 * HEARTBEAT + 1)
    assert await b.members("1", "presence-room") == {"u2": {"name": "U2"}}
    assert await b.connection_count("1") == 0


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server answering only TLS, with a self-signed certificate for 127.0.0.1."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is required"
    cert, key = self_signed(tmp_path, "revurb redis test")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert)]
        + ["--tls-key-file", str(key), "--tls-auth-clients", "no", "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, "redis-server with TLS did not start (built without TLS?)"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "redis-server with TLS did not listen"
            time.sleep(0.05)
        yield port, cert
    finally:
        process.terminate()
        process.wait(10)


async def test_rediss_urls_connect_over_tls(tls_redis: tuple[int, Path]) -> None:
    port, cert = tls_redis
    options = RedisOptions(
        url=f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}",
        prefix=unique("tls-"),
        # Liveness is not what this tests: on a busy machine a short heartbeat can see a node as
        # dead and back (a member_removed and member_added more than the exact count below).
        heartbeat_interval=LONG_HEARTBEAT,
    )
    a, b = RedisBackend(options), RedisBackend(options)
    pairs = [(a, RecordingNode()), (b, RecordingNode())]
    for backend, node in pairs:
        await backend.start(node)
    try:
        assert a.health()["scaling"]["connected"] is True
        assert await a.add_member("1", "presence-room", "u1", {"name": "U1"}, "1.1") is False
        assert await b.members("1", "presence-room") == {"u1": {"name": "U1"}}
        await _placed(a.publish(_event(1)))
        await _until(lambda: len(pairs[1][1].messages) == 2)
        assert pairs[1][1].events() == ['{"n":1}']
    finally:
        for backend, _ in pairs:
            await backend.stop()
