"""The dashboard across nodes on one real Redis: each node's figures on every page, the debug console
fed by every node while it is open (and nothing on Redis while it is not), a stopped node leaving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from json import loads
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.cluster.conftest import StartCluster, eventually
from tests.support.dashboard import ENABLED, Dashboard, dashboard
from tests.support.fixture_types import ConnectToNode
from tests.support.http import trigger
from tests.support.pusher_socket import unique
from tests.support.servers import RedisServer

#: Short summaries, so a stopped node leaves the view within a few seconds.
SHARE = {**ENABLED, "REVURB_DASHBOARD_SHARE_INTERVAL": "0.5"}


async def node_ids(page: Dashboard) -> list[str]:
    overview = (await page.get("/api/overview")).json()
    return [node["id"] for node in overview["nodes"]]


@pytest.fixture
async def console_traffic(redis_server: RedisServer) -> AsyncIterator[list[Any]]:
    """Every message published on any cluster's console channels, as a list that fills up."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.psubscribe("*:dashboard:console:*")
    seen: list[Any] = []

    async def listen() -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                seen.append(message)

    task = asyncio.create_task(listen())
    yield seen
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await client.aclose()


async def test_every_node_shows_on_every_page_and_a_stopped_one_leaves(cluster: StartCluster) -> None:
    first, second = cluster(2, SHARE)
    async with dashboard(first) as a, dashboard(second) as b:
        await a.login()
        await b.login()

        async def both_see_two() -> bool:
            return len(await node_ids(a)) == 2 and len(await node_ids(b)) == 2

        await eventually(both_see_two)
        ids_a, ids_b = await node_ids(a), await node_ids(b)
        assert ids_a == [ids_a[0], ids_b[0]] and ids_b == [ids_b[0], ids_a[0]]  # own node first
        assert (await a.get("/api/overview")).json()["cluster"] == {"enabled": True, "connected": True}
        second.stop()

        async def alone() -> bool:
            return await node_ids(a) == [ids_a[0]]

        await eventually(alone)


async def test_the_console_hears_every_node_while_open_and_redis_nothing_while_closed(
    cluster: StartCluster, client: ConnectToNode, console_traffic: list[Any]
) -> None:
    first, second = cluster(2, SHARE)
    channel = unique("cluster-console-")
    socket = await client(second)
    await socket.join(channel)
    async with dashboard(first) as page:
        await page.login()

        async def two_nodes() -> bool:
            return len(await node_ids(page)) == 2

        await eventually(two_nodes)
        first_id, second_id = await node_ids(page)
        await trigger(second, channel, "unwatched", "{}")
        await socket.recv_event("unwatched")
        await asyncio.sleep(1.5)  # three summaries: time enough for a console relay to start, if one did
        assert console_traffic == []
        async with page.stream(console="1001") as stream:
            await stream.next("console")
            # The second node learns of the console from a summary: probe once a tick until it relays,
            # then until the last probe's entry is in (every later entry of that node will be too).
            probes, relayed = 0, set[str]()
            async with asyncio.timeout(10):
                while f"probe-{probes}" not in relayed:
                    if not relayed:
                        probes += 1
                        await trigger(second, channel, f"probe-{probes}", "{}")
                    kind, data = await stream.any()
                    while kind != "tick":
                        relayed |= {entry["event"] for entry in data["entries"] if entry["node"] == second_id}
                        kind, data = await stream.any()
            await trigger(second, channel, "watched", '{"via":"second"}')
            await trigger(first, channel, "watched", '{"via":"first"}')
            entries = await stream.entries(2, timeout=8)
    by_node = {
        entry["node"]: (entry["kind"], entry["channel"], entry["event"], entry["data"]) for entry in entries
    }
    assert by_node == {
        second_id: ("api_event", channel, "watched", '{"via":"second"}'),
        first_id: ("api_event", channel, "watched", '{"via":"first"}'),
    }
    # Only the second node published, only while the console was open, only for app 1001.
    assert {message["channel"].rsplit(":", 1)[1] for message in console_traffic} == {"1001"}
    assert sum(len(loads(message["data"])["entries"]) for message in console_traffic) <= probes + 1
