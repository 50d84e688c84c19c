"""The event rate limit holds for the whole cluster: one count in Redis, one round trip per request."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.cluster.conftest import StartCluster
from tests.support.http import api
from tests.support.servers import RedisServer

pytestmark = pytest.mark.redis

LIMIT = 4


def event(channel: str) -> dict[str, Any]:
    return {"name": "e", "channels": [channel], "data": "{}"}


class Monitor:
    """Redis MONITOR on a raw connection: the commands every client sends, as Redis logs them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def start(cls, redis: RedisServer) -> Monitor:
        reader, writer = await asyncio.open_connection("127.0.0.1", redis.port)
        writer.write(b"MONITOR\r\n")
        assert await reader.readline() == b"+OK\r\n"
        return cls(reader, writer)

    async def lines(self, settle: float = 0.3) -> list[bytes]:
        await asyncio.sleep(settle)
        seen: list[bytes] = []
        while True:
            try:
                seen.append(await asyncio.wait_for(self.reader.readline(), 0.05))
            except TimeoutError:
                break
        self.writer.close()
        await self.writer.wait_closed()
        return seen


async def test_the_limit_is_counted_across_nodes_with_one_redis_call_per_request(
    cluster: StartCluster, redis_server: RedisServer
) -> None:
    first, second = cluster(2, {"REVERB_APP_MAX_BACKEND_EVENTS_PER_SEC": str(LIMIT)})
    for node in (first, second):  # the script is loaded on each node's first limited request
        assert (await api(node, "POST", "/events", event("warm-up"))).status_code == 200
    await asyncio.sleep(1 - time.time() % 1 + 0.01)

    monitor = await Monitor.start(redis_server)
    answers = [
        (await api(node, "POST", "/events", event("shared"))).status_code
        for node in (first, second, first, second, first, second)
    ]
    logged = await monitor.lines()

    assert answers == [200] * LIMIT + [429, 429]
    # One EVALSHA per request; what the script does inside shows as `[0 lua]` lines.
    calls = [line for line in logged if b"event-rate" in line and b" lua]" not in line]
    assert len(calls) == 6
    assert all(b'"EVALSHA"' in line.upper() for line in calls)


async def test_without_a_limit_redis_hears_nothing_of_it(
    cluster: StartCluster, redis_server: RedisServer
) -> None:
    (node,) = cluster(1)
    monitor = await Monitor.start(redis_server)
    assert (await api(node, "POST", "/events", event("free"))).status_code == 200

    assert not any(b"event-rate" in line for line in await monitor.lines())
