"""Webhooks against a real receiver: every kind with Pusher's exact body, signatures the Python and
Node `pusher` SDKs accept, filters and headers, retries, bounds and metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pusher
import pytest

from tests.clients.node import NodeDriver
from tests.support.fixture_types import Connect, StartServer
from tests.support.metrics import scrape, value
from tests.support.pusher_socket import dumps, unique
from tests.support.servers import DEFAULT_APP, RedisServer, RunningServer
from tests.support.webhook_receiver import Delivery, Receiver, running_receiver

APP_ID, KEY, SECRET = (
    DEFAULT_APP["REVERB_APP_ID"],
    DEFAULT_APP["REVERB_APP_KEY"],
    DEFAULT_APP["REVERB_APP_SECRET"],
)
EVERY_KIND = [
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
    "subscription_count",
]
#: Quick sending for tests: a short window.
FAST = {"REVURB_WEBHOOK_BATCH_WINDOW": "0.02"}
METRICS = {"REVURB_METRICS": "true", "REVURB_METRICS_PORT": "0", "REVURB_METRICS_TOKEN": "t"}


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """Server env for one backend: alone in memory, or one node of a cluster on a real Redis."""
    if request.param == "memory":
        return {}
    redis: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"webhooks-{unique()}"
    return {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": redis.url, "REVERB_SCALING_CHANNEL": prefix}


def config_file(tmp_path: Path, *hooks: dict[str, Any], **options: Any) -> list[str]:
    """`--config` arguments for the default app with these webhook tables."""
    app = {"app_id": APP_ID, "key": KEY, "secret": SECRET, "webhooks": list(hooks), **options}
    path = tmp_path / "webhooks.json"
    path.write_text(json.dumps({"apps": {"apps": [app]}}))
    return ["--config", str(path)]


def member(user_id: str) -> str:
    return dumps({"user_id": user_id, "user_info": {"name": user_id}})


def by_channel(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["channel"], []).append(event)
    return grouped


def assert_signed(delivery: Delivery) -> None:
    """Headers as Pusher sends them; the Python SDK accepts the signature and reads the body."""
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["x-pusher-key"] == KEY
    sdk = pusher.Pusher(app_id=APP_ID, key=KEY, secret=SECRET)
    checked = sdk.validate_webhook(KEY, delivery.headers["x-pusher-signature"], delivery.body)
    assert checked == delivery.payload
    assert set(delivery.payload) == {"time_ms", "events"}
    assert len(delivery.ids) == len(delivery.payload["events"])


@pytest.mark.node
async def test_every_kind_arrives_signed_with_pusher_s_exact_body(
    start_server: StartServer,
    connect: Connect,
    node_driver: NodeDriver,
    tmp_path: Path,
    backend: dict[str, str],
) -> None:
    async with running_receiver() as receiver:
        args = config_file(tmp_path, {"url": receiver.url, "event_types": EVERY_KIND})
        server = start_server({**FAST, **backend}, args)
        cache, presence = unique("cache-"), unique("presence-")
        alice, bob = await connect(server), await connect(server)

        await alice.join(cache)
        assert await alice.recv() == {"event": "pusher:cache_miss", "channel": cache}
        await alice.join(presence, member("alice"))
        await bob.join(presence, member("bob"))
        await alice.recv_event("pusher_internal:member_added")
        await alice.send({"event": "client-hi", "channel": presence, "data": {"a": 1}})
        assert (await bob.recv())["event"] == "client-hi"
        await alice.send({"event": "pusher:unsubscribe", "data": {"channel": cache}})
        await bob.send({"event": "pusher:unsubscribe", "data": {"channel": presence}})
        await alice.recv_event("pusher_internal:member_removed")
        await alice.close()

        events = await receiver.wait_count(12)
        # Per channel, in order. (Across channels too in one process; with Redis, a client event,
        # a cache miss or a count is appended a moment after the change that caused it, so it may
        # follow another channel's change made meanwhile: docs/webhooks.md.)
        assert by_channel(events) == by_channel(
            [
                {"name": "channel_occupied", "channel": cache},
                {"name": "cache_miss", "channel": cache},
                {"name": "subscription_count", "channel": cache, "subscription_count": 1},
                {"name": "channel_occupied", "channel": presence},
                {"name": "member_added", "channel": presence, "user_id": "alice"},
                {"name": "member_added", "channel": presence, "user_id": "bob"},
                {
                    "name": "client_event",
                    "channel": presence,
                    "event": "client-hi",
                    "data": '{"a":1}',
                    "socket_id": alice.socket_id,
                    "user_id": "alice",
                },
                {"name": "channel_vacated", "channel": cache},
                {"name": "subscription_count", "channel": cache, "subscription_count": 0},
                {"name": "member_removed", "channel": presence, "user_id": "bob"},
                {"name": "member_removed", "channel": presence, "user_id": "alice"},
                {"name": "channel_vacated", "channel": presence},
            ]
        )
        assert len(events) == 12
        if not backend:
            assert [e["channel"] for e in events] == [cache] * 3 + [presence] * 4 + [cache] * 2 + [
                presence
            ] * 3
        await receiver.assert_no_more()
        for delivery in receiver.accepted():
            assert_signed(delivery)
            checked = await node_driver.ok(
                {
                    "cmd": "webhook",
                    "appId": APP_ID,
                    "key": KEY,
                    "secret": SECRET,
                    "headers": delivery.headers,
                    "rawBody": delivery.body,
                }
            )
            assert checked["valid"] is True
            assert checked["events"] == delivery.payload["events"]
            assert checked["time"] == delivery.payload["time_ms"]


async def scrape_webhooks(server: RunningServer) -> dict[str, float | None]:
    samples = await scrape(f"{server.http_url}/metrics", token="t")
    names = ("sent_total", "retried_total", "failed_total", "dropped_total")
    found = {name: value(samples, f"revurb_webhooks_{name}") for name in names}
    found["queue_size"] = value(samples, "revurb_webhook_queue_size")
    return found


async def test_filters_event_types_and_headers_per_url(
    start_server: StartServer, connect: Connect, tmp_path: Path
) -> None:
    async with running_receiver() as receiver:
        members = {
            "url": f"{receiver.url}/members",
            "event_types": ["member_added", "member_removed"],
            "filter": {"channel_name_starts_with": "presence-", "channel_name_ends_with": "-room"},
            "headers": {"Authorization": "Bearer hook-token"},
        }
        server = start_server(FAST, config_file(tmp_path, members, {"url": f"{receiver.url}/all"}))
        room, other, public = unique("presence-") + "-room", unique("presence-"), unique("news-")
        alice, bob = await connect(server), await connect(server)
        await alice.join(room, member("alice"))
        await bob.join(other, member("bob"))
        await bob.join(public)

        everything = await receiver.wait_for(lambda _: len(receiver.events("/hooks/all")) == 5)
        assert receiver.events("/hooks/all") == [
            {"name": "channel_occupied", "channel": room},
            {"name": "member_added", "channel": room, "user_id": "alice"},
            {"name": "channel_occupied", "channel": other},
            {"name": "member_added", "channel": other, "user_id": "bob"},
            {"name": "channel_occupied", "channel": public},
        ]
        assert len(everything) == 6
        assert receiver.events("/hooks/members") == [
            {"name": "member_added", "channel": room, "user_id": "alice"}
        ]
        [filtered] = receiver.accepted("/hooks/members")
        assert filtered.headers["authorization"] == "Bearer hook-token"
        assert all("authorization" not in d.headers for d in receiver.accepted("/hooks/all"))
        assert_signed(filtered)


async def test_500_three_times_then_200_delivers_each_event_once(
    start_server: StartServer, connect: Connect, backend: dict[str, str]
) -> None:
    async with running_receiver(500, 500, 500) as receiver:
        server = start_server({**FAST, **METRICS, **backend, "REVERB_APP_WEBHOOKS": receiver.url})
        channel = unique("retried-")
        await (await connect(server)).join(channel)

        assert await receiver.wait_count(1) == [{"name": "channel_occupied", "channel": channel}]
        await receiver.assert_no_more()
        assert [d.status for d in receiver.deliveries] == [500, 500, 500, 200]
        assert len({d.headers["x-revurb-webhook-id"] for d in receiver.deliveries}) == 1
        assert [d.payload["events"] for d in receiver.deliveries] == [[receiver.events()[0]]] * 4
        for delivery in receiver.deliveries:
            assert_signed(delivery)  # signed afresh for each try, with its own time_ms
        assert await scrape_webhooks(server) == {
            "sent_total": 1.0,
            "retried_total": 3.0,
            "failed_total": 0.0,
            "dropped_total": 0.0,
            "queue_size": 0.0,
        }


async def test_a_request_failing_past_the_retry_horizon_is_dropped(
    start_server: StartServer, connect: Connect
) -> None:
    async with running_receiver(*[503] * 100) as receiver:
        env = {**FAST, **METRICS, "REVERB_APP_WEBHOOKS": receiver.url, "REVURB_WEBHOOK_RETRY_FOR": "1"}
        server = start_server(env)
        client = await connect(server)
        lost, kept = unique("lost-"), unique("kept-")
        await client.join(lost)
        async with asyncio.timeout(10):
            while "dropped 1 events" not in server.output():
                await asyncio.sleep(0.05)
        receiver.failures.clear()
        await client.join(kept)

        assert await receiver.wait_count(1) == [{"name": "channel_occupied", "channel": kept}]
        tries = [d for d in receiver.deliveries if d.status == 503]
        assert {d.payload["events"][0]["channel"] for d in tries} == {lost}
        metrics = await scrape_webhooks(server)
        assert (metrics["failed_total"], metrics["sent_total"]) == (1.0, 1.0)
        assert metrics["retried_total"] == len(tries) - 1


async def test_a_full_queue_drops_new_events_and_counts_them(
    start_server: StartServer, connect: Connect
) -> None:
    async with running_receiver(*[500] * 100) as receiver:
        env = {**FAST, **METRICS, "REVERB_APP_WEBHOOKS": receiver.url, "REVURB_WEBHOOK_QUEUE_SIZE": "2"}
        server = start_server(env)
        client = await connect(server)
        channels = [unique(f"full-{n}-") for n in range(5)]
        await client.join(channels[0])
        await receiver.wait_for(lambda _: bool(receiver.deliveries))  # the first is being retried
        for channel in channels[1:]:
            await client.join(channel)
        async with asyncio.timeout(10):
            while "is full (2 events): dropping new events" not in server.output():
                await asyncio.sleep(0.05)
        metrics = await scrape_webhooks(server)
        assert (metrics["dropped_total"], metrics["queue_size"]) == (2.0, 3.0)
        receiver.failures.clear()

        events = await receiver.wait_count(3)
        assert events == [{"name": "channel_occupied", "channel": channel} for channel in channels[:3]]
        await receiver.assert_no_more()
        assert (await scrape_webhooks(server))["queue_size"] == 0.0


@pytest.mark.timeout(90)
async def test_a_receiver_down_for_30_seconds_gets_everything_when_back(
    start_server: StartServer, connect: Connect
) -> None:
    """Allowed to take ~40 s: the receiver is down for 30 s, then retries back off up to 10 s."""
    receiver = Receiver()
    server = start_server({**FAST, "REVERB_APP_WEBHOOKS": receiver.url})
    client = await connect(server)
    expected: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    back_at = loop.time() + 30
    while loop.time() < back_at:
        channel = unique("outage-")
        await client.join(channel)
        await client.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
        expected += [
            {"name": "channel_occupied", "channel": channel},
            {"name": "channel_vacated", "channel": channel},
        ]
        await asyncio.sleep(3)
    await receiver.start()
    try:
        assert await receiver.wait_count(len(expected), timeout=25) == expected
        await receiver.assert_no_more()
        assert [d.status for d in receiver.deliveries] == [200] * len(receiver.deliveries)
        ids = [event_id for d in receiver.deliveries for event_id in d.ids]
        assert len(ids) == len(set(ids)) == len(expected)
    finally:
        await receiver.stop()


async def test_the_sockets_closed_by_a_graceful_shutdown_are_announced_before_it_exits(
    start_server: StartServer, connect: Connect
) -> None:
    async with running_receiver() as receiver:
        server = start_server({**FAST, "REVERB_APP_WEBHOOKS": receiver.url, "REVURB_DRAIN_WINDOW": "0.2"})
        channel = unique("closing-")
        await (await connect(server)).join(channel)
        await receiver.wait_count(1)

        await asyncio.to_thread(server.stop)
        assert "drained" in server.output()
        assert receiver.events() == [
            {"name": "channel_occupied", "channel": channel},
            {"name": "channel_vacated", "channel": channel},
        ]
