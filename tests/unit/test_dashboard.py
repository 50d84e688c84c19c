"""The dashboard's parts without a server: sessions, the login throttle, rates, the console's tap and
its sampling, scoping, the cluster summaries and the feed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from revurb.api.signature import verify
from revurb.apps import App, ConfigAppProvider
from revurb.channels.console import DATA_PREVIEW, ConsoleTap, Watcher
from revurb.channels.registry import Registry
from revurb.config import ScalingSettings
from revurb.protocol.dispatch import Dispatcher
from revurb.scaling.memory import MemoryBackend
from revurb.server.dashboard.consoles import Consoles
from revurb.server.dashboard.feed import Feed, message
from revurb.server.dashboard.figures import HISTORY, MAX_APPS, NodeFigures, Sample, Sampler, figures
from revurb.server.dashboard.sender import signed_query
from revurb.server.dashboard.session import ALL_APPS, SESSION_SECONDS, Session, Sessions, same_secret
from revurb.server.dashboard.share import ClusterShare
from revurb.server.dashboard.throttle import LoginThrottle
from revurb.server.dashboard.view import node_view, scoped
from revurb.wire import frames
from tests.unit.test_metrics import app_snapshot, snapshot
from tests.unit.test_protocol_core import FakeConnection

APP = App(id="1", key="key", secret="secret")
OTHER = App(id="2", key="other-key", secret="other-secret")
NOW = 1_800_000_000.0


# Sessions and logins


async def test_logins_give_every_app_or_one_app() -> None:
    sessions, provider = Sessions("dash"), ConfigAppProvider([APP, OTHER])
    assert await sessions.login(provider, "", "dash") == ALL_APPS
    assert await sessions.login(provider, "key", "secret") == "1"
    assert await sessions.login(provider, "other-key", "other-secret") == "2"
    for key, secret in (
        ("", "secret"),
        ("key", "dash"),
        ("key", "other-secret"),
        ("nope", "secret"),
        ("", ""),
    ):
        assert await sessions.login(provider, key, secret) is None


def test_a_session_token_round_trips_and_resists_tampering() -> None:
    sessions = Sessions("dash")
    token = sessions.issue("app/1 é", now=NOW)
    assert sessions.read(token, now=NOW) == Session("app/1 é", int(NOW) + SESSION_SECONDS)
    assert sessions.read(token, now=NOW + SESSION_SECONDS + 1) is None
    assert Sessions("other").read(token, now=NOW) is None
    scope, expires, signature = token.split(".")
    forged = f"{b'*'.hex()}.{expires}.{signature}"
    assert sessions.read(forged, now=NOW) is None
    for broken in (
        None,
        "",
        "a.b",
        "zz.1.x",
        f"{scope}.soon.{signature}",
        f"{scope}.{expires}.{signature}.x",
    ):
        assert sessions.read(broken, now=NOW) is None


def test_sessions_see_their_apps() -> None:
    assert Session(ALL_APPS, 0).sees("anything")
    assert Session("1", 0).sees("1") and not Session("1", 0).sees("2")


def test_secrets_compare_whatever_their_lengths() -> None:
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "abcd") and not same_secret("", "x")


def test_failed_logins_are_limited_per_address_and_forgotten() -> None:
    throttle = LoginThrottle(failures=3, window=60, size=2)
    for _ in range(3):
        assert throttle.retry_after("a", now=100) == 0
        throttle.failed("a", now=100)
    assert throttle.retry_after("a", now=130) == 30
    assert throttle.retry_after("b", now=130) == 0
    assert throttle.retry_after("a", now=160) == 0
    throttle.failed("a", now=161)
    throttle.succeeded("a")
    assert throttle.retry_after("a", now=161) == 0
    for address in ("x", "y", "z"):
        for _ in range(3):
            throttle.failed(address, now=200)
    assert [throttle.retry_after(a, now=200) > 0 for a in ("x", "y", "z")] == [False, True, True]


# Figures


def test_rates_between_two_snapshots() -> None:
    before = snapshot(
        1,
        {
            "1": app_snapshot(
                frames_in=10, sent_local=100, bytes_local=1000, api_requests=4, closed={"4100": 1}
            )
        },
        requests=[("trigger", 200, 5), ("trigger", 401, 1)],
        bus={"published": 7},
    )
    now = snapshot(
        1,
        {
            "1": app_snapshot(
                connections=3,
                channels=2,
                presence_members=1,
                frames_in=30,
                sent_local=300,
                sent_remote=100,
                bytes_local=3000,
                bytes_remote=1000,
                api_requests=10,
                api_errors=2,
                closed={"4100": 3, "None": 9},
            )
        },
        requests=[("trigger", 200, 9), ("trigger", 401, 3)],
        bus={"published": 17, "received": 4, "lag_seconds": 0.25, "queued": 3},
    )
    sample = figures(now, before, 2.0, NOW)
    assert sample == {
        "t": NOW,
        "node": [3.0, 1.0, 5.0, 2.0, 0.25, 3],
        "apps": {"1": [3, 10.0, 150.0, 1500.0, 3.0, 1.0, 2, 1, 1.0]},
    }
    first = figures(now, None, 1.0, NOW)
    assert first["node"] == [0.0, 0.0, 0.0, 0.0, 0.25, 3]
    assert first["apps"]["1"] == [3, 30.0, 400.0, 4000.0, 10.0, 2.0, 2, 1, 3.0]


def test_only_the_busiest_apps_are_charted() -> None:
    apps = {str(n): app_snapshot(connections=n) for n in range(MAX_APPS + 10)}
    charted = figures(snapshot(1, apps), None, 1.0, NOW)["apps"]
    assert sorted(charted, key=int) == [str(n) for n in range(10, MAX_APPS + 10)]


def test_the_sampler_keeps_fifteen_minutes() -> None:
    readings = iter(range(HISTORY + 5))
    own = NodeFigures("n", "node")

    def source() -> Any:
        return snapshot(1, {"1": app_snapshot(frames_in=next(readings) * 2)})

    sampler = Sampler(own, source, lambda: {"driver": "memory", "connected": True})
    for second in range(HISTORY + 5):
        sampler.sample(now=float(second))
    assert len(own.samples) == HISTORY
    assert own.samples[-1]["apps"]["1"][1] == 2.0
    assert own.bus == {"driver": "memory", "connected": True}


def test_an_app_login_sees_its_app_and_no_node_totals() -> None:
    sample: Sample = {"t": NOW, "node": [1, 2, 3, 4, 0.5, 6], "apps": {"1": [1.0], "2": [2.0]}}
    assert scoped(sample, Session("1", 0)) == {
        "t": NOW,
        "node": [0.0, 0.0, 0.0, 0.0, 0.5, 6],
        "apps": {"1": [1.0]},
    }
    assert scoped(sample, Session("3", 0))["apps"] == {}
    assert scoped(sample, Session(ALL_APPS, 0)) is sample
    node = NodeFigures("n", "name")
    node.add(sample)
    node.add({**sample, "t": NOW + 1})
    assert len(node_view(node, True, Session(ALL_APPS, 0), history=True)["samples"]) == 2
    assert node_view(node, True, Session(ALL_APPS, 0), history=False)["samples"] == [{**sample, "t": NOW + 1}]


# The console's tap


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """`time.monotonic()` as the tap sees it: set `clock[0]`."""
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def test_a_tap_without_watchers_keeps_nothing(clock: list[float]) -> None:
    tap = ConsoleTap("n", rate=10)
    tap.api_event("c", "e", "{}", None)
    assert tap.skipped == 0


def test_the_tap_samples_to_its_rate_and_counts_the_rest(clock: list[float]) -> None:
    tap, watcher = ConsoleTap("n", rate=3), Watcher()
    tap.watchers.append(watcher)
    for n in range(5):
        tap.api_event("c", f"e{n}", "{}", None)
    assert [entry.get("event") for entry in watcher.take()] == ["e0", "e1", "e2"]
    assert tap.skipped == 2
    clock[0] += 1.0
    tap.opened("1.1")
    assert [(entry["kind"], entry.get("socket_id")) for entry in watcher.take()] == [("opened", "1.1")]


def test_a_channel_filter_takes_only_its_channels(clock: list[float]) -> None:
    tap, orders = ConsoleTap("n", rate=100), Watcher("orders-")
    tap.watchers.append(orders)
    tap.opened("1.1")
    tap.subscribed("1.1", "chat")
    tap.subscribed("1.1", "orders-1")
    tap.client_event("1.1", "orders-1", "client-x", {"a": 1})
    assert [(e["kind"], e.get("channel"), e.get("data")) for e in orders.take()] == [
        ("subscribed", "orders-1", None),
        ("client_event", "orders-1", '{"a":1}'),
    ]
    assert tap.skipped == 0  # entries nobody wanted are not held against the rate


def test_entries_truncate_data_and_buffers_drop_the_oldest(clock: list[float]) -> None:
    tap, watcher = ConsoleTap("n", rate=100), Watcher(size=2)
    tap.watchers.append(watcher)
    tap.api_event("c", "big", "x" * (DATA_PREVIEW + 5), "1.2")
    tap.closed("1.2", 4100)
    tap.webhook("channel_vacated", "c", 200)
    entries = watcher.take()
    assert watcher.dropped == 1
    assert [entry["kind"] for entry in entries] == ["closed", "webhook"]
    assert (entries[0].get("code"), entries[1].get("code"), entries[1].get("event")) == (
        4100,
        200,
        "channel_vacated",
    )
    big = Watcher()
    tap.watchers = [big]
    tap.api_event("c", "big", "x" * (DATA_PREVIEW + 5), "1.2")
    [entry] = big.take()
    assert (entry.get("size"), entry.get("truncated"), len(entry.get("data", ""))) == (
        DATA_PREVIEW + 5,
        True,
        DATA_PREVIEW,
    )


def test_relayed_entries_reach_local_consoles_only(clock: list[float]) -> None:
    tap, local, forward = ConsoleTap("n", rate=100), Watcher(), Watcher(forward=True)
    tap.watchers += [local, forward]
    tap.relay({"kind": "opened", "time": NOW, "node": "other", "socket_id": "9.9"})
    assert [entry["node"] for entry in local.take()] == ["other"]
    assert forward.take() == []


async def test_the_core_reports_to_a_tap_only_while_one_is_set(clock: list[float]) -> None:
    registry = Registry(MemoryBackend())
    server, consoles = Dispatcher(registry), Consoles(registry, "node-1", rate=100)
    manager = registry.manager(APP)
    assert manager.console is None
    quiet = FakeConnection()
    await server.open(quiet)
    watcher = consoles.watch(APP, None)
    assert manager.console is not None and consoles.watching() == ["1"]
    socket = FakeConnection()
    await server.open(socket)
    await server.message(socket, frames.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}}))
    await server.message(socket, frames.dumps({"event": "pusher:unsubscribe", "data": {"channel": "news"}}))
    socket.close_code = 4201
    await server.close(socket)
    kinds = [(entry["kind"], entry.get("channel"), entry.get("code")) for entry in watcher.take()]
    assert kinds == [
        ("opened", None, None),
        ("subscribed", "news", None),
        ("unsubscribed", "news", None),
        ("closed", None, 4201),
    ]
    assert all(entry["node"] == "node-1" for entry in watcher.entries)
    consoles.unwatch(APP, watcher)
    assert manager.console is None and consoles.watching() == []
    await server.close(quiet)


# Cluster summaries


def share(interval: float = 1.0) -> ClusterShare:
    own = NodeFigures("me", "me:8080")
    return ClusterShare(ScalingSettings(enabled=True, channel="t"), interval, own, lambda: ["1"])


def summary(node: str, samples: Sequence[Sample], watching: Sequence[str] = ()) -> str:
    body = {"id": node, "name": f"{node}:8080", "bus": {"driver": "redis", "connected": True}}
    return frames.dumps({**body, "samples": list(samples), "watching": list(watching)})


def at(t: float) -> Sample:
    return {"t": t, "node": [0, 0, 0, 0, 0, 0], "apps": {}}


def test_summaries_of_other_nodes_fill_their_rings_and_stale_ones_go() -> None:
    cluster = share()
    assert cluster.key == "t:dashboard:nodes"
    gone = cluster.take({"me": summary("me", [at(1)]), "b": summary("b", [at(1), at(2)], ["7"])}, now=10.0)
    assert gone == [] and list(cluster.others) == ["b"]
    assert [s["t"] for s in cluster.others["b"].samples] == [1, 2]
    assert cluster.watched_elsewhere == {"7"}
    cluster.take({"b": summary("b", [at(2), at(3)], ["7"])}, now=11.0)
    assert [s["t"] for s in cluster.others["b"].samples] == [1, 2, 3]
    assert cluster.take({"b": summary("b", [at(3)], ["7"])}, now=13.9) == []
    assert cluster.take({"b": summary("b", [at(3)], ["7"]), "c": "{not json"}, now=15.0) == ["b"]
    assert cluster.others == {} and cluster.watched_elsewhere == set()


def test_a_summary_carries_the_samples_not_yet_shared() -> None:
    cluster = share()
    for t in (1.0, 2.0, 3.0):
        cluster.own.add(at(t))
    first = cluster.summary()
    assert [s["t"] for s in first["samples"]] == [1.0, 2.0, 3.0] and first["watching"] == ["1"]
    cluster._shared_until = 3.0
    cluster.own.add(at(4.0))
    assert [s["t"] for s in cluster.summary()["samples"]] == [4.0]


# The feed and the test event


def test_an_sse_message_is_one_event_and_one_data_line() -> None:
    assert message("tick", {"a": "x\ny"}) == b'event: tick\ndata: {"a":"x\\ny"}\n\n'


async def test_the_feed_sends_ticks_and_entries_until_the_server_stops() -> None:
    watcher = Watcher()
    stopping = [False]
    latest = [1.0]

    def nodes(session: Session) -> list[Any]:
        return [{"id": "n", "t": latest[0]}]

    feed = Feed(Session(ALL_APPS, 0), nodes, lambda: latest[0], lambda: stopping[0], watcher, lambda: 4)
    events = feed.events()
    assert await anext(events) == b"retry: 1000\n\n"
    assert await anext(events) == message("console", {"entries": [], "skipped": 4, "dropped": 0})
    assert await anext(events) == message("tick", {"nodes": [{"id": "n", "t": 1.0}]})
    watcher.put({"kind": "opened", "time": NOW, "node": "n", "socket_id": "1.1"})
    latest[0] = 2.0
    assert await anext(events) == message(
        "console",
        {
            "entries": [{"kind": "opened", "time": NOW, "node": "n", "socket_id": "1.1"}],
            "skipped": 4,
            "dropped": 0,
        },
    )
    assert await anext(events) == message("tick", {"nodes": [{"id": "n", "t": 2.0}]})
    stopping[0] = True
    with pytest.raises(StopAsyncIteration):
        await anext(events)


def test_a_test_event_is_signed_as_the_sdks_sign() -> None:
    body = b'{"name":"e","channel":"c","data":"{}"}'
    query = signed_query(APP, "POST", "/apps/1/events", body, now=NOW)
    params = dict(part.split("=", 1) for part in query.split("&"))
    assert list(params) == ["auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature"]
    verify(APP, "POST", ["/apps/1/events"], params, body, now=NOW)


def test_every_static_file_is_served_and_nothing_else() -> None:
    from importlib import resources

    from revurb.server.dashboard.pages import ASSETS, PAGES

    shipped = {entry.name for entry in (resources.files("revurb.server.dashboard") / "static").iterdir()}
    assert shipped == {*ASSETS, *PAGES}
