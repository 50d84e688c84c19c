"""Prometheus metrics: a snapshot of the plain counters the server keeps, in the text format.

Nothing here runs on the delivery path. The channel managers, the dispatcher and the HTTP API bump
plain integers (`channels/tally.py`, `api/tally.py`); a scrape takes a `Snapshot` of them (and of
the sockets and channels held) and turns it into metric families. With `--workers N` each worker
leaves its snapshot in a file (`server/metrics_files.py`) and a scrape sums them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NotRequired, TypedDict

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from revurb.api.tally import LATENCY_BUCKETS, ApiTally
from revurb.channels.registry import Registry
from revurb.scaling.base import Backend, BusStats
from revurb.wire.codes import ErrorCode

if TYPE_CHECKING:
    from revurb.server.app import Revurb

#: `Content-Type` of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The `code` label of sockets the client closed (no close code of ours).
BY_CLIENT = "client"


class AppSnapshot(TypedDict):
    connections: int
    channels: int
    subscriptions: int
    presence_members: int
    opened: int
    closed: dict[str, int]
    frames_in: int
    bytes_in: int
    client_events_in: int
    sent_local: int
    bytes_local: int
    sent_remote: int
    bytes_remote: int
    rate_limited: int
    api_requests: int
    api_errors: int


class Snapshot(TypedDict):
    """One process's numbers at one moment; JSON-safe, so workers can hand it over in a file."""

    pid: int
    apps: dict[str, AppSnapshot]
    #: [endpoint, status, count] per kind of answer.
    requests: list[tuple[str, int, int]]
    #: endpoint -> (per-bucket counts, the last one unbounded; total seconds).
    latency: dict[str, tuple[list[int], float]]
    bus: BusStats
    webhooks: NotRequired[WebhookCounts]


class WebhookCounts(TypedDict):
    sent: int
    retried: int
    failed: int
    dropped: int
    queued: int


def take_snapshot(app: Revurb, pid: int) -> Snapshot:
    """The numbers of this process now (called on a scrape or by the worker's file writer)."""
    snapshot = snapshot_of(app.registry, app.api.tally, app.backend, pid)
    stats = app.webhooks.stats
    snapshot["webhooks"] = {
        "sent": stats.sent,
        "retried": stats.retried,
        "failed": stats.failed,
        "dropped": stats.dropped,
        "queued": stats.queued,
    }
    return snapshot


def snapshot_of(registry: Registry, api: ApiTally, backend: Backend, pid: int) -> Snapshot:
    """`take_snapshot` from the parts (the dashboard's sampler has them before the app exists)."""
    apps: dict[str, AppSnapshot] = {}
    for app_id, manager in registry.managers.items():
        tally = manager.tally
        subscriptions = members = 0
        for channel in manager.channels.values():
            if not channel.kind.server_to_user:
                subscriptions += len(channel.subscribers)
            if channel.kind.presence:
                members += len(set(channel.members.values()))
        apps[app_id] = {
            "connections": len(manager.connections),
            "channels": len(manager.channels),
            "subscriptions": subscriptions,
            "presence_members": members,
            "opened": tally.opened,
            "closed": {BY_CLIENT if code is None else str(code): n for code, n in tally.closed.items()},
            "frames_in": tally.frames_in,
            "bytes_in": tally.bytes_in,
            "client_events_in": tally.client_events_in,
            "sent_local": tally.sent_local,
            "bytes_local": tally.bytes_local,
            "sent_remote": tally.sent_remote,
            "bytes_remote": tally.bytes_remote,
            "rate_limited": tally.rate_limited,
            "api_requests": tally.api_requests,
            "api_errors": tally.api_errors,
        }
    return {
        "pid": pid,
        "apps": apps,
        "requests": [(endpoint, status, n) for (endpoint, status), n in api.requests.items()],
        "latency": {
            endpoint: (list(counts), api.seconds[endpoint]) for endpoint, counts in api.buckets.items()
        },
        "bus": backend.bus_stats(),
    }


def families(counters: Sequence[Snapshot], gauges: Sequence[Snapshot]) -> Iterator[Metric]:
    """Metric families summed over processes: counters over all (the dead keep what they counted),
    gauges over the live ones."""
    yield from _app_families(counters, gauges)
    yield from _api_families(counters)
    yield from _bus_families(counters, gauges)
    yield from _webhook_families(counters, gauges)


def _app_families(counters: Sequence[Snapshot], gauges: Sequence[Snapshot]) -> Iterator[Metric]:
    def gauge(name: str, doc: str, field: str) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=["app"])
        for app_id, value in _sum_by_app(gauges, field).items():
            family.add_metric([app_id], value)
        return family

    def counter(name: str, doc: str, field: str) -> CounterMetricFamily:
        family = CounterMetricFamily(name, doc, labels=["app"])
        for app_id, value in _sum_by_app(counters, field).items():
            family.add_metric([app_id], value)
        return family

    yield gauge("revurb_connections", "Open WebSocket connections.", "connections")
    yield gauge("revurb_channels", "Channels with at least one socket here.", "channels")
    yield gauge("revurb_subscriptions", "Channel subscriptions of the sockets here.", "subscriptions")
    yield gauge(
        "revurb_presence_members", "Users present, summed over presence channels.", "presence_members"
    )
    yield counter("revurb_connections_opened", "WebSocket connections admitted.", "opened")
    closed = CounterMetricFamily(
        "revurb_connections_closed",
        "WebSocket connections gone, by the close code sent.",
        labels=["app", "code"],
    )
    slow = CounterMetricFamily(
        "revurb_slow_consumers_closed", "Sockets closed for not reading fast enough (4100).", labels=["app"]
    )
    codes: dict[tuple[str, str], int] = {}
    for snapshot in counters:
        for app_id, app in snapshot["apps"].items():
            for code, n in app["closed"].items():
                codes[(app_id, code)] = codes.get((app_id, code), 0) + n
    for (app_id, code), n in sorted(codes.items()):
        closed.add_metric([app_id, code], n)
    for app_id in sorted({app_id for app_id, _ in codes} | _app_ids(counters)):
        slow.add_metric([app_id], codes.get((app_id, str(int(ErrorCode.OVER_CAPACITY))), 0))
    yield closed
    yield slow
    received = CounterMetricFamily(
        "revurb_messages_received", "Frames from clients, by kind.", labels=["app", "kind"]
    )
    for app_id, app in _totals(counters).items():
        received.add_metric([app_id, "client_event"], app["client_events_in"])
        received.add_metric([app_id, "protocol"], app["frames_in"] - app["client_events_in"])
    yield received
    yield counter("revurb_bytes_received", "Length of the frames from clients.", "bytes_in")
    sent = CounterMetricFamily(
        "revurb_messages_sent",
        "Channel deliveries to sockets, by where the event came from.",
        labels=["app", "kind"],
    )
    sent_bytes = CounterMetricFamily(
        "revurb_bytes_sent", "Payload length of channel deliveries, by origin.", labels=["app", "kind"]
    )
    for app_id, app in _totals(counters).items():
        sent.add_metric([app_id, "local"], app["sent_local"])
        sent.add_metric([app_id, "remote"], app["sent_remote"])
        sent_bytes.add_metric([app_id, "local"], app["bytes_local"])
        sent_bytes.add_metric([app_id, "remote"], app["bytes_remote"])
    yield sent
    yield sent_bytes
    yield counter("revurb_rate_limited", "Client events refused by the rate limit (4301).", "rate_limited")


def _api_families(counters: Sequence[Snapshot]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "revurb_http_requests", "HTTP API requests, by endpoint and status.", labels=["endpoint", "status"]
    )
    totals: dict[tuple[str, int], int] = {}
    latency: dict[str, tuple[list[int], float]] = {}
    for snapshot in counters:
        for endpoint, status, n in snapshot["requests"]:
            totals[(endpoint, status)] = totals.get((endpoint, status), 0) + n
        for endpoint, (counts, seconds) in snapshot["latency"].items():
            summed, total = latency.get(endpoint, ([0] * len(counts), 0.0))
            latency[endpoint] = ([a + b for a, b in zip(summed, counts, strict=True)], total + seconds)
    for (endpoint, status), n in sorted(totals.items()):
        requests.add_metric([endpoint, str(status)], n)
    yield requests
    histogram = HistogramMetricFamily(
        "revurb_http_request_duration_seconds", "HTTP API request handling time.", labels=["endpoint"]
    )
    bounds = [*(f"{bound:g}" for bound in LATENCY_BUCKETS), "+Inf"]
    for endpoint, (counts, seconds) in sorted(latency.items()):
        cumulative, running = [], 0
        for bound, n in zip(bounds, counts, strict=True):
            running += n
            cumulative.append((bound, float(running)))
        histogram.add_metric([endpoint], cumulative, seconds)
    yield histogram


def _bus_families(counters: Sequence[Snapshot], gauges: Sequence[Snapshot]) -> Iterator[Metric]:
    def total(field: str) -> float:
        return float(sum(snapshot["bus"][field] for snapshot in counters))  # type: ignore[literal-required]

    yield CounterMetricFamily(
        "revurb_bus_published", "Messages published to the other nodes.", total("published")
    )
    yield CounterMetricFamily(
        "revurb_bus_received", "Messages received from the other nodes.", total("received")
    )
    lag = GaugeMetricFamily(
        "revurb_bus_lag_seconds",
        "How far this node is behind the bus: publish, the oldest unpublished message's wait; "
        "read, how old the newest entry read was when delivered.",
        labels=["direction"],
    )
    lag.add_metric(["publish"], max((snapshot["bus"]["lag_seconds"] for snapshot in gauges), default=0.0))
    lag.add_metric(["read"], max((snapshot["bus"]["read_lag_seconds"] for snapshot in gauges), default=0.0))
    yield lag
    queued = sum(snapshot["bus"]["queued"] for snapshot in gauges)
    yield GaugeMetricFamily("revurb_outbox_size", "Messages waiting to be published.", queued)
    yield CounterMetricFamily(
        "revurb_outbox_dropped", "Messages dropped from a full outbox.", total("dropped")
    )


#: Webhook counters: field -> (metric name, help).
_WEBHOOK_COUNTERS = {
    "sent": ("revurb_webhooks_sent", "Webhook requests answered with a 2xx."),
    "retried": ("revurb_webhooks_retried", "Webhook requests that failed and were tried again."),
    "failed": ("revurb_webhooks_failed", "Webhook requests given up after retrying (events dropped)."),
    "dropped": ("revurb_webhooks_dropped", "Webhook events dropped because their queue was full."),
}


def _webhook_families(counters: Sequence[Snapshot], gauges: Sequence[Snapshot]) -> Iterator[Metric]:
    for field, (name, doc) in _WEBHOOK_COUNTERS.items():
        total = sum(s["webhooks"][field] for s in counters if "webhooks" in s)  # type: ignore[literal-required]
        yield CounterMetricFamily(name, doc, float(total))
    queued = sum(s["webhooks"]["queued"] for s in gauges if "webhooks" in s)
    yield GaugeMetricFamily("revurb_webhook_queue_size", "Webhook events waiting to be sent.", float(queued))


def _app_ids(snapshots: Iterable[Snapshot]) -> set[str]:
    return {app_id for snapshot in snapshots for app_id in snapshot["apps"]}


def _sum_by_app(snapshots: Sequence[Snapshot], field: str) -> dict[str, int]:
    summed: dict[str, int] = {}
    for snapshot in snapshots:
        for app_id, app in snapshot["apps"].items():
            summed[app_id] = summed.get(app_id, 0) + app[field]  # type: ignore[literal-required]
    return dict(sorted(summed.items()))


def _totals(snapshots: Sequence[Snapshot]) -> dict[str, AppSnapshot]:
    fields = ("frames_in", "client_events_in", "sent_local", "sent_remote", "bytes_local", "bytes_remote")
    totals: dict[str, AppSnapshot] = {}
    for snapshot in snapshots:
        for app_id, app in snapshot["apps"].items():
            into = totals.get(app_id)
            if into is None:
                totals[app_id] = {**app}
                continue
            for field in fields:
                into[field] += app[field]  # type: ignore[literal-required]
    return dict(sorted(totals.items()))


class _Families(Collector):
    def __init__(self, counters: Sequence[Snapshot], gauges: Sequence[Snapshot]) -> None:
        self.counters, self.gauges = counters, gauges

    def collect(self) -> Iterable[Metric]:
        return families(self.counters, self.gauges)


def exposition(counters: Sequence[Snapshot], gauges: Sequence[Snapshot] | None = None) -> bytes:
    """The text format of the given snapshots (gauges: the live processes' ones, default all)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(counters, counters if gauges is None else gauges))
    return generate_latest(registry)
