"""Metric families from snapshots, the API tally, and the metrics listener's answers (no server)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from revurb.api.tally import LATENCY_BUCKETS, ApiTally
from revurb.server.metrics import AppSnapshot, Snapshot, exposition
from revurb.server.metrics_http import answer, authorized


def app_snapshot(**values: Any) -> AppSnapshot:
    base: dict[str, Any] = {
        "connections": 0,
        "channels": 0,
        "subscriptions": 0,
        "presence_members": 0,
        "opened": 0,
        "closed": {},
        "frames_in": 0,
        "bytes_in": 0,
        "client_events_in": 0,
        "sent_local": 0,
        "bytes_local": 0,
        "sent_remote": 0,
        "bytes_remote": 0,
        "rate_limited": 0,
        "api_requests": 0,
        "api_errors": 0,
    }
    base.update(values)
    return base  # type: ignore[return-value]


def snapshot(pid: int, apps: dict[str, AppSnapshot], **more: Any) -> Snapshot:
    bus = {
        "published": 0,
        "received": 0,
        "lag_seconds": 0.0,
        "read_lag_seconds": 0.0,
        "queued": 0,
        "dropped": 0,
        **more.pop("bus", {}),
    }
    return {"pid": pid, "apps": apps, "requests": [], "latency": {}, "bus": bus, **more}  # type: ignore[typeddict-item]


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_sum_over_every_process_gauges_over_the_live_ones() -> None:
    live = snapshot(1, {"a": app_snapshot(connections=3, opened=5, closed={"client": 2, "4100": 1})})
    dead = snapshot(2, {"a": app_snapshot(connections=7, opened=7, closed={"client": 7})})
    got = samples(exposition([live, dead], [live]))
    assert got[("revurb_connections", (("app", "a"),))] == 3
    assert got[("revurb_connections_opened_total", (("app", "a"),))] == 12
    assert got[("revurb_connections_closed_total", (("app", "a"), ("code", "client")))] == 9
    assert got[("revurb_connections_closed_total", (("app", "a"), ("code", "4100")))] == 1
    assert got[("revurb_slow_consumers_closed_total", (("app", "a"),))] == 1


def test_messages_by_kind() -> None:
    app = app_snapshot(frames_in=10, client_events_in=4, sent_local=6, sent_remote=2, bytes_local=60)
    got = samples(exposition([snapshot(1, {"a": app})]))
    assert got[("revurb_messages_received_total", (("app", "a"), ("kind", "client_event")))] == 4
    assert got[("revurb_messages_received_total", (("app", "a"), ("kind", "protocol")))] == 6
    assert got[("revurb_messages_sent_total", (("app", "a"), ("kind", "local")))] == 6
    assert got[("revurb_messages_sent_total", (("app", "a"), ("kind", "remote")))] == 2
    assert got[("revurb_bytes_sent_total", (("app", "a"), ("kind", "local")))] == 60


def test_latency_histogram_is_cumulative_and_summed() -> None:
    tally = ApiTally()
    tally.record("trigger", 200, 0.0004)
    tally.record("trigger", 200, 0.003)
    tally.record("trigger", 413, 10.0)
    one = snapshot(
        1,
        {},
        requests=[(e, s, n) for (e, s), n in tally.requests.items()],
        latency={e: (c, tally.seconds[e]) for e, c in tally.buckets.items()},
    )
    got = samples(exposition([one, one]))
    key = "revurb_http_request_duration_seconds_bucket"
    assert got[(key, (("endpoint", "trigger"), ("le", "0.0005")))] == 2
    assert got[(key, (("endpoint", "trigger"), ("le", "0.001")))] == 2
    assert got[(key, (("endpoint", "trigger"), ("le", "0.005")))] == 4
    assert got[(key, (("endpoint", "trigger"), ("le", "2.5")))] == 4
    assert got[(key, (("endpoint", "trigger"), ("le", "+Inf")))] == 6
    assert got[("revurb_http_request_duration_seconds_count", (("endpoint", "trigger"),))] == 6
    assert got[("revurb_http_requests_total", (("endpoint", "trigger"), ("status", "413")))] == 2
    assert len(tally.buckets["trigger"]) == len(LATENCY_BUCKETS) + 1


def test_bus_numbers() -> None:
    one = snapshot(1, {}, bus={"published": 3, "received": 4, "lag_seconds": 0.5, "queued": 2, "dropped": 1})
    two = snapshot(2, {}, bus={"published": 1, "received": 1, "lag_seconds": 1.5, "queued": 1, "dropped": 0})
    one["bus"]["read_lag_seconds"], two["bus"]["read_lag_seconds"] = 2.5, 0.25
    got = samples(exposition([one, two]))
    assert got[("revurb_bus_published_total", ())] == 4
    assert got[("revurb_bus_received_total", ())] == 5
    # The worst process, each way.
    assert got[("revurb_bus_lag_seconds", (("direction", "publish"),))] == 1.5
    assert got[("revurb_bus_lag_seconds", (("direction", "read"),))] == 2.5
    assert got[("revurb_outbox_size", ())] == 3
    assert got[("revurb_outbox_dropped_total", ())] == 1


def test_bearer_token() -> None:
    assert authorized(None, None)
    assert authorized("Bearer t0k", "t0k")
    assert not authorized("Bearer t0", "t0k")
    assert not authorized("t0k", "t0k")
    assert not authorized(None, "t0k")


def test_listener_answers() -> None:
    def source() -> bytes:
        return b"body\n"

    assert answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", None, source).endswith(b"\r\n\r\nbody\n")
    assert answer(b"GET /metrics HTTP/1.1\r\n\r\n", "t", source).startswith(b"HTTP/1.1 401 ")
    with_token = b"GET /metrics?x=1 HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n"
    assert answer(with_token, "t", source).startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer(b"GET / HTTP/1.1\r\n\r\n", None, source).startswith(b"HTTP/1.1 404 ")
    assert answer(b"POST /metrics HTTP/1.1\r\n\r\n", None, source).startswith(b"HTTP/1.1 405 ")
    head = answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", None, source)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
