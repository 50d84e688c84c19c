"""Webhooks with three nodes on one Redis: once per transition cluster-wide, and never lost when
the node delivering them is killed."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.cluster.conftest import StartCluster, eventually, up
from tests.support.fixture_types import ConnectToNode
from tests.support.pusher_socket import PusherSocket, dumps, unique
from tests.support.servers import RedisServer
from tests.support.webhook_receiver import Receiver, running_receiver

ROUNDS = 100
USERS = ("u0", "u1", "u2")
#: A short window; a dead node's lease and events are taken over after 2 s.
FAST = {"REVURB_WEBHOOK_BATCH_WINDOW": "0.02", "REVURB_WEBHOOK_CLAIM_AFTER": "2"}


def member(user_id: str) -> str:
    return dumps({"user_id": user_id, "user_info": {}})


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


def per_channel(events: list[dict[str, Any]]) -> dict[str, list[tuple[str, str | None]]]:
    found: dict[str, list[tuple[str, str | None]]] = {}
    for event in events:
        found.setdefault(event["channel"], []).append((event["name"], event.get("user_id")))
    return found


@pytest.mark.timeout(180)
async def test_occupancy_and_membership_arrive_once_per_transition_under_concurrent_joins_and_leaves(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    async with running_receiver() as receiver:
        nodes = cluster(3, {**FAST, "REVERB_APP_WEBHOOKS": receiver.url})
        # Two sockets per node; each user has two sockets, on two different nodes.
        sockets = [await client(node) for node in nodes for _ in range(2)]
        users = [USERS[(index // 2 + index % 2) % len(USERS)] for index in range(len(sockets))]
        channels = [unique("presence-") for _ in range(ROUNDS)]

        async def leave(socket: PusherSocket, channel: str) -> None:
            await socket.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})

        for channel in channels:
            await asyncio.gather(*(s.join(channel, member(u)) for s, u in zip(sockets, users, strict=True)))
            await asyncio.gather(*(leave(s, channel) for s in sockets))

        per_round = 2 + 2 * len(USERS)
        events = await receiver.wait_count(ROUNDS * per_round, timeout=90)
        await receiver.assert_no_more(1.0)
        assert len(events) == ROUNDS * per_round
        found = per_channel(events)
        assert sorted(found) == sorted(channels)
        for channel in channels:
            seen = found[channel]
            expected = Counter(
                [("channel_occupied", None), ("channel_vacated", None)]
                + [(name, user) for user in USERS for name in ("member_added", "member_removed")]
            )
            assert Counter(seen) == expected, (channel, seen)
            assert seen[0] == ("channel_occupied", None) and seen[-1] == ("channel_vacated", None)
            for user in USERS:
                assert seen.index(("member_added", user)) < seen.index(("member_removed", user))
        ids = [event_id for delivery in receiver.deliveries for event_id in delivery.ids]
        assert len(ids) == len(set(ids)) == len(events)


async def test_a_killed_node_s_members_and_channels_are_announced_by_the_node_that_sweeps_it(
    cluster: StartCluster, client: ConnectToNode
) -> None:
    async with running_receiver() as receiver:
        doomed, survivor = cluster(2, {**FAST, "REVERB_APP_WEBHOOKS": receiver.url})
        channel = unique("presence-")
        await (await client(doomed)).join(channel, member("gone"))
        await client(survivor)
        joined = [("channel_occupied", None), ("member_added", "gone")]
        assert per_channel(await receiver.wait_count(2))[channel] == joined

        doomed.stop(signal.SIGKILL)
        events = await receiver.wait_count(4, timeout=30)
        await receiver.assert_no_more(1.0)
        seen = per_channel(events)[channel]
        assert seen[:2] == joined
        # The sweep removes the node's share entry by entry: either may come first.
        assert sorted(seen[2:], key=str) == sorted(
            [("member_removed", "gone"), ("channel_vacated", None)], key=str
        )


@pytest.mark.timeout(120)
async def test_sigkill_of_the_node_holding_an_undelivered_webhook_gets_it_delivered_by_another(
    cluster: StartCluster, client: ConnectToNode, redis_client: aioredis.Redis
) -> None:
    receiver = Receiver()  # down: nothing listens on its port yet
    prefix = f"revurb-test-{uuid.uuid4().hex[:8]}"
    scaling = {"REVERB_SCALING_CHANNEL": prefix}
    # The sockets' node serves no webhooks (so it never takes one); the other two deliver them.
    [quiet] = cluster(1, scaling)
    deliverers = cluster(2, {**FAST, **scaling, "REVERB_APP_WEBHOOKS": receiver.url})
    stream = f"{prefix}:webhooks"
    await eventually(lambda: _exists(redis_client, stream))
    channel = unique("held-")
    await (await client(quiet)).join(channel)

    async def held() -> bool:
        pending = await redis_client.xpending(stream, "revurb")
        return bool(pending["pending"] == 1)

    await eventually(held)
    [holder_id] = [
        consumer["name"] for consumer in (await redis_client.xpending(stream, "revurb"))["consumers"]
    ]
    ids = {(await up(node))["scaling"]["node"]: node for node in deliverers}
    holder = ids.pop(holder_id)
    [other] = ids.values()
    await asyncio.sleep(0.5)  # the holder has tried (connection refused) and waits to retry
    holder.stop(signal.SIGKILL)
    await receiver.start()
    try:
        assert await receiver.wait_count(1, timeout=30) == [{"name": "channel_occupied", "channel": channel}]
        await receiver.assert_no_more(1.0)
        assert "took over 1 webhook events another node did not deliver" in other.output()
        await eventually(lambda: _nothing_pending(redis_client, stream))
    finally:
        await receiver.stop()


async def _nothing_pending(redis_client: aioredis.Redis, stream: str) -> bool:
    pending = await redis_client.xpending(stream, "revurb")
    return bool(pending["pending"] == 0)


async def _exists(redis_client: aioredis.Redis, key: str) -> bool:
    return bool(await redis_client.exists(key))
