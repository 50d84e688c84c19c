"""The memory backend's counting rules, and the pure parts of the Redis backend (mirror, outbox)."""

from __future__ import annotations

import asyncio

from revurb.scaling import bus
from revurb.scaling.base import BusMessage, Roster
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
    assert await backend.add_member("1", "presence-a", "u1", {"v": 1}, "1.1") is True
    assert await backend.add_member("1", "presence-a", "u1", {"v": 2}, "1.2") is False
    assert await backend.add_member("1", "presence-a", "u2", None, "1.3") is True
    assert await backend.members("1", "presence-a") == {"u1": {"v": 2}, "u2": None}
    assert await backend.roster("1", "presence-a") == Roster({"u1": {"v": 2}, "u2": None}, None)
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
    assert mirror.add_member("1", "presence-a", "u1", {"n": 1}) is True
    assert mirror.add_member("1", "presence-a", "u1", {"n": 1}) is False
    assert mirror.roster("1", "presence-a") == {"u1": {"n": 1}}
    assert mirror.index_entries() == {'["s","1","presence-a"]', '["p","1","presence-a"]'}
    assert [frames.loads(chunk) for chunk in mirror.count_chunks(10)] == [
        [['["s","1","presence-a"]', "1", "presence-a", 1]]
    ]
    assert [frames.loads(chunk) for chunk in mirror.presence_chunks(10)] == [
        [['["p","1","presence-a"]', "1", "presence-a", {"u1": ['{"n":1}', 2]}]]
    ]
    assert mirror.remove_member("1", "presence-a", "u1") is False
    assert mirror.remove_member("1", "presence-a", "u1") is True
    assert mirror.remove_member("1", "presence-a", "u1") is False
    assert mirror.add_subscriber("1", "presence-a", -1) == 0
    assert mirror.index_entries() == set()
    assert list(mirror.count_chunks(10)) == list(mirror.presence_chunks(10)) == []


def test_the_mirror_splits_presence_by_users_without_splitting_a_channel() -> None:
    mirror = Mirror()
    for channel, users in (("presence-a", 3), ("presence-b", 2), ("presence-c", 1)):
        for n in range(users):
            mirror.add_member("1", channel, f"u{n}", None)
    chunks = [[row[2] for row in frames.loads(chunk)] for chunk in mirror.presence_chunks(3)]
    assert chunks == [["presence-a"], ["presence-b", "presence-c"]]


def test_the_mirror_keeps_live_cache_payloads_only() -> None:
    mirror = Mirror()
    mirror.put_cache("1", "cache-a", "frame-a", 60_000)
    mirror.put_cache("1", "cache-b", "frame-b", -1)
    cached = mirror.get_cache("1", "cache-a")
    assert cached is not None and cached[0] == "frame-a" and 59_000 < cached[1] <= 60_000
    assert mirror.get_cache("1", "cache-b") is None


def _message(n: int) -> BusMessage:
    return {"type": "event", "app": "1", "channel": "news", "frame": str(n)}


async def test_the_outbox_drops_the_oldest_and_keeps_order() -> None:
    outbox = Outbox(size=3)
    items = [outbox.put(str(n), _message(n), n + 1) for n in range(5)]
    assert len(outbox) == 3 and outbox.dropped == 2
    assert [item.placed.done() for item in items] == [True, True, False, False, False]  # dropped: placed
    batch = outbox.peek(2)
    assert [item.payload for item in batch] == ["2", "3"]
    outbox.put("5", _message(5), 6)  # drops "2" while "2" and "3" are being sent
    outbox.sent(batch)
    assert [item.payload for item in outbox.peek(10)] == ["4", "5"]
    assert items[3].placed.done() and not items[4].placed.done()
    assert outbox.take_dropped() == 3 and outbox.dropped == 0
    await asyncio.wait_for(outbox.wait(), 1)


async def test_the_outbox_places_everything_when_redis_is_down_and_replays_what_was_sent() -> None:
    outbox = Outbox(size=10)
    items = [outbox.put(str(n), _message(n), n + 1) for n in range(4)]
    outbox.sent(outbox.peek(2))
    assert [item.seq for item in outbox.unsent_and_recent(1)] == [2, 3, 4]
    outbox.place_all()
    assert all(item.placed.done() for item in items)
    assert outbox.replay() == 2
    assert [item.payload for item in outbox.peek(10)] == ["0", "1", "2", "3"]
    assert outbox.replay() == 0


async def test_sent_messages_are_kept_for_the_replay_window_only() -> None:
    outbox = Outbox(size=10, replay_seconds=0.0)
    outbox.put("0", _message(0), 1)
    outbox.sent(outbox.peek(1))
    await asyncio.sleep(0.01)
    outbox.put("1", _message(1), 2)
    outbox.sent(outbox.peek(1))
    assert outbox.replay() == 1  # the first one aged out


def test_bus_entries_round_trip_and_members_get_their_version() -> None:
    payload = bus.encode({"type": "event", "app": "1", "channel": "c", "node": "n", "seq": 3}, '{"x":1}')
    assert bus.decode("5-1", payload) == {
        "type": "event",
        "app": "1",
        "channel": "c",
        "node": "n",
        "seq": 3,
        "frame": '{"x":1}',
    }
    member = bus.decode("1700000000000-7", bus.encode({"type": "member", "app": "1", "added": True}, "f"))
    assert member["version"] == (1700000000000, 7)
    assert bus.parse_id("12-0") < bus.parse_id("12-1") < bus.parse_id("13-0")
    assert bus.format_id((12, 3)) == "12-3"


def test_dedupe_drops_what_a_producer_sent_again() -> None:
    dedupe = bus.Dedupe("me")
    other = [{"type": "event", "app": "1", "node": "a", "seq": n} for n in (1, 2, 3, 2, 3, 4)]
    assert [dedupe.fresh(m) for m in other] == [True, True, True, False, False, True]  # type: ignore[arg-type]
    assert dedupe.fresh({"type": "member", "app": "1"}) is True
    assert dedupe.fresh({"type": "member", "app": "1"}) is True  # unnumbered: never dropped
    dedupe.own_delivered = 5  # delivered here at once while Redis was down
    mine = [{"type": "event", "app": "1", "node": "me", "seq": n} for n in (4, 5, 6)]
    assert [dedupe.fresh(m) for m in mine] == [False, False, True]  # type: ignore[arg-type]
