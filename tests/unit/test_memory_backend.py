"""The memory backend's counting rules, and the pure parts of the Redis backend (mirror, outbox)."""

from __future__ import annotations

import asyncio

from revurb.scaling.memory import MemoryBackend
from revurb.scaling.mirror import Mirror
from revurb.scaling.outbox import Outbox
from revurb.wire import frames


async def test_connections_are_counted_and_never_negative() -> None:
    backend = MemoryBackend()
    assert await backend.add_connection("1") == 1
    assert await backend.add_connection("1") == 2
    assert await backend.add_connection("2") == 1
    await backend.remove_connection("1")
    await backend.remove_connection("1")
    await backend.remove_connection("1")
    assert await backend.connection_count("1") == 0
    assert await backend.connection_count("2") == 1


async def test_subscriptions_count_up_and_vacate() -> None:
    backend = MemoryBackend()
    assert await backend.add_subscriber("1", "news") == 1
    assert await backend.add_subscriber("1", "news") == 2
    assert await backend.add_subscriber("1", "sport") == 1
    assert await backend.occupied_channels("1") == {"news": 2, "sport": 1}
    assert await backend.remove_subscriber("1", "news") == 1
    assert await backend.remove_subscriber("1", "news") == 0
    assert await backend.remove_subscriber("1", "news") == 0
    assert await backend.subscription_count("1", "news") == 0
    assert await backend.occupied_channels("1") == {"sport": 1}
    assert await backend.occupied_channels("2") == {}


async def test_a_member_is_added_on_the_first_socket_and_removed_on_the_last() -> None:
    backend = MemoryBackend()
    assert await backend.add_member("1", "presence-a", "u1", {"v": 1}) is True
    assert await backend.add_member("1", "presence-a", "u1", {"v": 2}) is False
    assert await backend.add_member("1", "presence-a", "u2", None) is True
    assert await backend.members("1", "presence-a") == {"u1": {"v": 2}, "u2": None}
    assert await backend.remove_member("1", "presence-a", "u1") is False
    assert await backend.remove_member("1", "presence-a", "u1") is True
    assert await backend.remove_member("1", "presence-a", "u1") is False
    assert await backend.members("1", "presence-a") == {"u2": None}
    assert await backend.members("1", "presence-b") == {}


async def test_cached_events_expire() -> None:
    backend = MemoryBackend()
    await backend.cache_put("1", "cache-a", '{"event":"e"}')
    cached = await backend.cache_get("1", "cache-a")
    assert cached is not None and cached["frame"] == '{"event":"e"}' and cached["ttl"] in (1799, 1800)
    assert await backend.cache_get("1", "cache-b") is None
    expired = MemoryBackend(cache_ttl=0.0)
    await expired.cache_put("1", "cache-a", '{"event":"e"}')
    assert await expired.cache_get("1", "cache-a") is None


def test_the_mirror_counts_this_nodes_share_and_serialises_it() -> None:
    mirror = Mirror()
    assert mirror.add_connection("1", 1) == 1
    assert mirror.add_connection("1", -1) == 0
    assert mirror.add_connection("1", -1) == 0
    assert mirror.add_subscriber("1", "presence-a", 1) == 1
    assert mirror.add_member("1", "presence-a", "u1", '{"n":1}') is True
    assert mirror.add_member("1", "presence-a", "u1", '{"n":1}') is False
    assert mirror.roster("1", "presence-a") == {"u1": {"n": 1}}
    assert frames.loads(mirror.to_json()) == {
        "c": {},
        "s": {"1": {"presence-a": 1}},
        "p": {"1": {"presence-a": {"u1": ['{"n":1}', 2]}}},
        "k": [],
    }
    assert mirror.remove_member("1", "presence-a", "u1") is False
    assert mirror.remove_member("1", "presence-a", "u1") is True
    assert mirror.remove_member("1", "presence-a", "u1") is False
    assert mirror.add_subscriber("1", "presence-a", -1) == 0
    assert frames.loads(mirror.to_json()) == {"c": {}, "s": {}, "p": {}, "k": []}


def test_the_mirror_keeps_live_cache_payloads_only() -> None:
    mirror = Mirror()
    mirror.put_cache("1", "cache-a", "frame-a", 60_000)
    mirror.put_cache("1", "cache-b", "frame-b", -1)
    cached = mirror.get_cache("1", "cache-a")
    assert cached is not None and cached[0] == "frame-a" and 59_000 < cached[1] <= 60_000
    assert mirror.get_cache("1", "cache-b") is None


async def test_the_outbox_drops_the_oldest_and_keeps_order() -> None:
    outbox = Outbox(size=3)
    for n in range(5):
        outbox.put(str(n))
    assert len(outbox) == 3 and outbox.dropped == 2
    last, batch = outbox.peek(2)
    assert batch == ["2", "3"]
    outbox.put("5")  # drops "2" while "2" and "3" are being published
    outbox.done(last)
    assert outbox.peek(10)[1] == ["4", "5"]
    assert outbox.take_dropped() == 3 and outbox.dropped == 0
    await asyncio.wait_for(outbox.wait(), 1)
