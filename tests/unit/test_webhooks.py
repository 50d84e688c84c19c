"""Webhooks without a server: filters, backoff, the signed request, batching and retries over a
fake HTTP transport, routing and acknowledgements, the memory backend's events, and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from revurb.apps import App, ConfigAppProvider, Webhook
from revurb.channels.console import ConsoleTap, Watcher
from revurb.channels.registry import Registry
from revurb.config import WebhookSettings
from revurb.scaling.base import WebhookEntry, WebhookEvent
from revurb.scaling.memory import MemoryBackend
from revurb.scaling.webhook_queue import LocalWebhooks
from revurb.server.metrics import exposition
from revurb.webhooks import Webhooks, WebhookStats, backoff, request
from revurb.webhooks.sender import MAX_BATCH, Sender
from tests.unit.test_metrics import samples, snapshot

APP = App(id="1", key="key", secret="secret", webhooks=(Webhook("http://hooks/a"),))
FAST = WebhookSettings(batch_window=0.01, retry_for=5.0, queue_size=1000)

Handler = Callable[[httpx.Request], httpx.Response]


class Hooks:
    """A fake receiver behind httpx's MockTransport: answers `statuses` first, then 200."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []
        self.arrived = asyncio.Event()

    def __call__(self, sent: httpx.Request) -> httpx.Response:
        self.requests.append(sent)
        self.arrived.set()
        if self.statuses:
            status = self.statuses.pop(0)
            if status == 0:
                raise httpx.ConnectError("refused", request=sent)
            return httpx.Response(status)
        return httpx.Response(200)

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(sent.content) for sent in self.requests]

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()


def occupied(channel: str) -> WebhookEvent:
    return {"name": "channel_occupied", "channel": channel}


def entry(n: int, channel: str = "c") -> WebhookEntry:
    return WebhookEntry(f"id-{n}", APP.id, occupied(f"{channel}{n}"))


@pytest.fixture
async def client() -> AsyncIterator[Callable[[Hooks], httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []

    def make(hooks: Hooks) -> httpx.AsyncClient:
        made.append(httpx.AsyncClient(transport=httpx.MockTransport(hooks)))
        return made[-1]

    yield make
    for each in made:
        await each.aclose()


# Which URL wants what


def test_a_webhook_without_event_types_gets_every_kind_but_subscription_count() -> None:
    hook = Webhook("http://h")
    for kind in ("channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event"):
        assert hook.wants(kind, "c")
    assert hook.wants("cache_miss", "c")
    assert not hook.wants("subscription_count", "c")
    assert Webhook("http://h", ("subscription_count",)).wants("subscription_count", "c")


def test_event_types_and_the_channel_name_filter() -> None:
    hook = Webhook(
        "http://h", ("member_added",), channel_name_starts_with="presence-", channel_name_ends_with="-x"
    )
    assert hook.wants("member_added", "presence-room-x")
    assert not hook.wants("member_removed", "presence-room-x")
    assert not hook.wants("member_added", "private-room-x")
    assert not hook.wants("member_added", "presence-room")
    assert Webhook("http://h", channel_name_ends_with="-x").wants("channel_occupied", "a-x")


# Backoff and the request


def test_backoff_doubles_from_half_a_second_to_a_cap_with_jitter() -> None:
    rng = random.Random(7)
    for attempt in range(40):
        ceiling = min(backoff.CAP_SECONDS, backoff.BASE_SECONDS * 2**attempt)
        waits = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(set(waits)) == len(waits)  # jittered


def test_the_request_carries_pusher_s_body_signature_and_the_event_ids() -> None:
    hook = Webhook("http://h", headers=(("Authorization", "Bearer t"), ("X-Pusher-Key", "forged")))
    body, headers = request.build(APP, hook, ["1-0", "1-1"], [occupied("a"), occupied("b")])
    decoded = json.loads(body)
    assert list(decoded) == ["time_ms", "events"]
    assert decoded["events"] == [occupied("a"), occupied("b")]
    assert headers == {
        "Authorization": "Bearer t",
        "X-Pusher-Key": "key",  # the configured headers cannot replace Pusher's
        "Content-Type": "application/json",
        "X-Pusher-Signature": hmac.new(b"secret", body.encode(), hashlib.sha256).hexdigest(),
        "X-Revurb-Webhook-Id": "1-0,1-1",
    }


# The sender


def sender(
    hooks_client: httpx.AsyncClient, settings: WebhookSettings, stats: WebhookStats
) -> tuple[Sender, list[str]]:
    done: list[str] = []

    async def finished(ids: list[str]) -> None:
        done.extend(ids)

    reports: list[tuple[str, list[WebhookEvent], int | None]] = []
    made = Sender(APP, APP.webhooks[0], hooks_client, settings, stats, lambda *r: reports.append(r), finished)
    return made, done


async def test_events_within_the_window_go_in_one_request_at_most_max_batch_each(
    client: Callable[[Hooks], httpx.AsyncClient],
) -> None:
    hooks, stats = Hooks(), WebhookStats()
    one, done = sender(client(hooks), FAST, stats)
    for n in range(MAX_BATCH + 50):
        assert one.put(entry(n))
    task = asyncio.create_task(one.run())
    await hooks.wait(2)
    await asyncio.sleep(0.05)
    task.cancel()
    sizes = [len(body["events"]) for body in hooks.bodies()]  # type: ignore[arg-type]
    assert sizes == [MAX_BATCH, 50]
    assert done == [f"id-{n}" for n in range(MAX_BATCH + 50)]
    assert (stats.sent, stats.queued, len(one)) == (2, 0, 0)


async def test_a_failing_request_is_retried_with_the_same_ids_then_counted_sent(
    client: Callable[[Hooks], httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backoff, "BASE_SECONDS", 0.01)
    hooks, stats = Hooks(500, 0, 503), WebhookStats()
    one, done = sender(client(hooks), FAST, stats)
    assert await one.deliver([entry(1), entry(2)])
    assert [sent.headers["x-revurb-webhook-id"] for sent in hooks.requests] == ["id-1,id-2"] * 4
    assert (stats.sent, stats.retried, stats.failed) == (1, 3, 0)


async def test_a_request_still_failing_at_the_horizon_is_given_up_and_logged(
    client: Callable[[Hooks], httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(backoff, "BASE_SECONDS", 0.01)
    hooks, stats = Hooks(*[500] * 100), WebhookStats()
    one, _ = sender(client(hooks), WebhookSettings(retry_for=0.1), stats)
    assert not await one.deliver([entry(1)])
    assert stats.failed == 1 and stats.sent == 0
    assert stats.retried == len(hooks.requests) - 1 > 0
    assert "failed" in caplog.text and "HTTP 500: dropped 1 events" in caplog.text


async def test_a_closing_sender_does_not_retry(client: Callable[[Hooks], httpx.AsyncClient]) -> None:
    hooks, stats = Hooks(500), WebhookStats()
    one, _ = sender(client(hooks), FAST, stats)
    one.closing = True
    assert not await one.deliver([entry(1)])
    assert (len(hooks.requests), stats.failed, stats.retried) == (1, 1, 0)


async def test_a_full_queue_drops_new_events_counts_and_logs_each_streak_once(
    client: Callable[[Hooks], httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    stats = WebhookStats()
    one, _ = sender(client(Hooks()), WebhookSettings(queue_size=2), stats)
    caplog.set_level(logging.WARNING, "revurb.webhooks")
    assert [one.put(entry(n)) for n in range(5)] == [True, True, False, False, False]
    assert (stats.dropped, stats.queued, len(one)) == (3, 2, 2)
    assert caplog.text.count("is full (2 events): dropping new events") == 1
    one._queue.popleft()
    assert one.put(entry(9))
    assert "3 events dropped" in caplog.text


# Routing, acknowledgements and the memory backend


class AckingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.acked: list[str] = []

    async def ack_webhooks(self, ids: list[str]) -> None:
        self.acked.extend(ids)


async def test_an_event_is_acknowledged_once_every_url_that_wants_it_is_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks = Hooks()
    real = httpx.AsyncClient

    def fake_client(**options: object) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(hooks))

    monkeypatch.setattr(httpx, "AsyncClient", fake_client)
    app = App(
        id="1",
        key="k",
        secret="s",
        webhooks=(
            Webhook("http://h/all"),
            Webhook("http://h/presence", channel_name_starts_with="presence-"),
        ),
    )
    other = App(id="2", key="k2", secret="s2")
    backend = AckingBackend()
    service = Webhooks(FAST, ConfigAppProvider([app, other]), Registry(backend), backend)
    await service.start()
    try:
        backend.webhook("1", occupied("presence-a"))
        backend.webhook("1", occupied("news"))
        backend.webhook("2", occupied("news"))  # an app without webhooks
        backend.webhook("3", occupied("news"))  # an app that is gone
        await hooks.wait(2)
        async with asyncio.timeout(5):
            while len(backend.acked) < 4:
                await asyncio.sleep(0.01)
    finally:
        await service.stop()
    node = backend.node_id
    assert sorted(backend.acked) == sorted(f"{node}-{n}" for n in range(1, 5))
    by_url = {str(sent.url): json.loads(sent.content)["events"] for sent in hooks.requests}
    assert by_url == {
        "http://h/all": [occupied("presence-a"), occupied("news")],
        "http://h/presence": [occupied("presence-a")],
    }
    assert service.stats.sent == 2


async def test_no_app_with_webhooks_records_nothing() -> None:
    backend = MemoryBackend()
    service = Webhooks(
        FAST, ConfigAppProvider([App(id="1", key="k", secret="s")]), Registry(backend), backend
    )
    await service.start()
    await backend.add_subscriber("1", "c")
    assert await backend.take_webhooks(0.01) == []
    await service.stop()


async def test_the_memory_backend_records_each_transition_once() -> None:
    backend = MemoryBackend()
    backend.enable_webhooks(1.0)
    assert await backend.remove_subscriber("1", "c") == 0  # never occupied: nothing vacated
    await backend.add_subscriber("1", "c")
    await backend.add_subscriber("1", "c")
    await backend.add_member("1", "presence-p", "u", {}, "s1")
    await backend.add_member("1", "presence-p", "u", {}, "s2")
    await backend.remove_member("1", "presence-p", "u")
    await backend.remove_member("1", "presence-p", "u")
    await backend.remove_subscriber("1", "c")
    await backend.remove_subscriber("1", "c")
    taken = await backend.take_webhooks(0.01)
    assert [(e.app_id, e.event) for e in taken] == [
        ("1", occupied("c")),
        ("1", {"name": "member_added", "channel": "presence-p", "user_id": "u"}),
        ("1", {"name": "member_removed", "channel": "presence-p", "user_id": "u"}),
        ("1", {"name": "channel_vacated", "channel": "c"}),
    ]
    assert len({e.id for e in taken}) == 4


async def test_local_webhooks_wait_for_events_and_number_them_per_process() -> None:
    queue = LocalWebhooks("node")
    queue.put("1", occupied("ignored"))  # not enabled yet
    queue.enabled = True
    assert await queue.take(0.01) == []
    waiting = asyncio.create_task(queue.take(5))
    await asyncio.sleep(0)
    queue.put("1", occupied("c"))
    assert await waiting == [WebhookEntry("node-1", "1", occupied("c"))]


# Metrics


def test_webhook_metrics_sum_counters_over_processes_and_the_queue_over_live_ones() -> None:
    counts = {"sent": 3, "retried": 2, "failed": 1, "dropped": 4, "queued": 5}
    live = snapshot(1, {}, webhooks=counts)
    dead = snapshot(2, {}, webhooks={**counts, "queued": 9})
    found = samples(exposition([live, dead, snapshot(3, {})], [live]))
    assert found[("revurb_webhooks_sent_total", ())] == 6
    assert found[("revurb_webhooks_retried_total", ())] == 4
    assert found[("revurb_webhooks_failed_total", ())] == 2
    assert found[("revurb_webhooks_dropped_total", ())] == 8
    assert found[("revurb_webhook_queue_size", ())] == 5


async def test_a_sender_that_fails_unexpectedly_drops_the_batch_and_goes_on(
    client: Callable[[Hooks], httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks, stats = Hooks(), WebhookStats()
    one, done = sender(client(hooks), WebhookSettings(batch_window=0), stats)
    real = request.build

    def broken_once(*args: object) -> tuple[str, dict[str, str]]:
        monkeypatch.setattr(request, "build", real)
        raise ValueError("broken")

    monkeypatch.setattr(request, "build", broken_once)
    one.put(entry(1))
    task = asyncio.create_task(one.run())
    async with asyncio.timeout(5):
        while not done:
            await asyncio.sleep(0.01)
    one.put(entry(2))
    await hooks.wait(1)
    task.cancel()
    assert "dropped 1 events" in caplog.text
    assert (stats.failed, stats.sent) == (1, 1)
    assert [json.loads(sent.content)["events"] for sent in hooks.requests] == [[entry(2).event]]


class FailingProvider(ConfigAppProvider):
    def __init__(self, apps: list[App]) -> None:
        super().__init__(apps)
        self.failures = 1

    async def find_by_id(self, app_id: str) -> App | None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database away")
        return await super().find_by_id(app_id)


async def test_the_take_loop_survives_a_failing_provider(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("revurb.webhooks.service.TAKE_WAIT", 0.01)
    backend = AckingBackend()
    service = Webhooks(FAST, FailingProvider([APP]), Registry(backend), backend)
    await service.start()
    try:
        backend.webhook(APP.id, occupied("lost"))
        async with asyncio.timeout(5):
            while "taking webhook events failed" not in caplog.text:
                await asyncio.sleep(0.01)
        backend.webhook("2", occupied("later"))  # another app: routed (and acknowledged) now
        async with asyncio.timeout(5):
            while not backend.acked:
                await asyncio.sleep(0.01)
    finally:
        await service.stop()
    assert backend.acked == [f"{backend.node_id}-2"]


async def test_each_try_is_reported_to_a_console_watching_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backoff, "BASE_SECONDS", 0.01)
    hooks = Hooks(0, 500)  # refused, then 500, then 200
    real = httpx.AsyncClient
    monkeypatch.setattr(httpx, "AsyncClient", lambda **_: real(transport=httpx.MockTransport(hooks)))
    backend = MemoryBackend()
    registry = Registry(backend)
    tap = ConsoleTap("node", rate=100)
    watcher = Watcher()
    tap.watchers.append(watcher)
    registry.manager(APP).console = tap
    service = Webhooks(FAST, ConfigAppProvider([APP]), registry, backend)
    await service.start()
    try:
        backend.webhook(APP.id, occupied("watched"))
        await hooks.wait(3)
        await asyncio.sleep(0.05)
    finally:
        await service.stop()
    entries = watcher.take()
    assert [(e["kind"], e.get("event"), e.get("channel"), e.get("code")) for e in entries] == [
        ("webhook", "channel_occupied", "watched", None),
        ("webhook", "channel_occupied", "watched", 500),
        ("webhook", "channel_occupied", "watched", 200),
    ]
