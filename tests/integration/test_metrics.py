"""Prometheus metrics after known traffic: exact counter values, in one process and summed over
`--workers 2`; on the main port behind a bearer token."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

import httpx
import pytest

from tests.support.api_client import call
from tests.support.metrics import Samples, scrape, value
from tests.support.pusher_socket import PusherSocket, unique
from tests.support.servers import RedisServer, RunningServer, free_port

APP = "1001"


async def traffic(
    server: RunningServer, channel: str, clients: list[PusherSocket]
) -> tuple[str, list[PusherSocket]]:
    """`clients` (each joins `channel`), one more socket that closes itself, one event triggered and
    one request that fails its signature. Returns the delivered frame."""
    for client in clients:
        await client.join(channel)
    leaver = await PusherSocket.connect(server.ws_url(), server.key, server.secret)
    await leaver.close()
    reply = await call(server, "POST", "/events", {"name": "tick", "channel": channel, "data": "{}"})
    assert reply.status_code == 200, reply.text
    bad = await call(
        server, "POST", "/events", {"name": "tick", "channel": channel, "data": "{}"}, secret="x"
    )
    assert bad.status_code == 401
    frame = json.dumps({"event": "tick", "channel": channel, "data": "{}"}, separators=(",", ":"))
    for client in clients:
        assert await client.recv_raw() == frame
    return frame, clients


async def sockets(server: RunningServer, count: int) -> list[PusherSocket]:
    return list(
        await asyncio.gather(
            *(PusherSocket.connect(server.ws_url(), server.key, server.secret) for _ in range(count))
        )
    )


def assert_counts(samples: Samples, subscribers: int, frame: str, frames_in: int, processes: int) -> None:
    def v(name: str, **labels: str) -> float | None:
        return value(samples, name, **labels)

    assert v("revurb_connections", app=APP) == subscribers
    assert v("revurb_connections_opened_total", app=APP) == subscribers + 1
    assert v("revurb_connections_closed_total", app=APP, code="client") == 1
    assert v("revurb_subscriptions", app=APP) == subscribers
    assert v("revurb_channels", app=APP) == processes  # a gauge per process, summed
    assert v("revurb_messages_received_total", app=APP, kind="protocol") == frames_in
    assert v("revurb_messages_received_total", app=APP, kind="client_event") == 0
    delivered = (v("revurb_messages_sent_total", app=APP, kind="local") or 0) + (
        v("revurb_messages_sent_total", app=APP, kind="remote") or 0
    )
    assert delivered == subscribers
    sent_bytes = (v("revurb_bytes_sent_total", app=APP, kind="local") or 0) + (
        v("revurb_bytes_sent_total", app=APP, kind="remote") or 0
    )
    assert sent_bytes == subscribers * len(frame)
    assert v("revurb_http_requests_total", endpoint="trigger", status="200") == 1
    assert v("revurb_http_requests_total", endpoint="trigger", status="401") == 1
    assert v("revurb_http_request_duration_seconds_count", endpoint="trigger") == 2
    assert v("revurb_http_request_duration_seconds_bucket", endpoint="trigger", le="+Inf") == 2
    assert v("revurb_slow_consumers_closed_total", app=APP) == 0
    assert v("revurb_rate_limited_total", app=APP) == 0


async def test_exact_counts_in_one_process(start_server: Callable[..., RunningServer]) -> None:
    port = free_port()
    server = start_server({"REVURB_METRICS": "true", "REVURB_METRICS_PORT": str(port)})
    url = f"http://127.0.0.1:{port}/metrics"
    frame, clients = await traffic(server, unique("metrics-"), await sockets(server, 3))
    samples = await scrape(url)
    assert_counts(samples, 3, frame, frames_in=3, processes=1)  # one pusher:subscribe each
    assert value(samples, "revurb_messages_sent_total", app=APP, kind="remote") == 0
    assert value(samples, "revurb_bus_published_total") == 0  # no bus without scaling

    # A frame over the app's limit is closed by the server with 1009: counted by its code.
    await clients[0].send("x" * 20_000)
    assert (await clients[0].closed_with())[0] == 1009
    await asyncio.sleep(0.2)
    samples = await scrape(url)
    assert value(samples, "revurb_connections_closed_total", app=APP, code="1009") == 1
    assert value(samples, "revurb_connections", app=APP) == 2
    for client in clients:
        await client.close()


@pytest.mark.redis
async def test_exact_counts_summed_over_two_workers(
    start_server: Callable[..., RunningServer], redis_server: RedisServer
) -> None:
    port = free_port()
    server = start_server(
        {
            "REVERB_SCALING_ENABLED": "true",
            "REVERB_SCALING_CHANNEL": f"metrics-{port}",
            "REDIS_URL": redis_server.url,
            "REVURB_METRICS": "true",
            "REVURB_METRICS_PORT": str(port),
        },
        ["--workers", "2", "--debug"],
    )
    url = f"http://127.0.0.1:{port}/metrics"
    # Connect until both workers hold sockets (--debug logs each frame with its worker's pid).
    clients: list[PusherSocket] = []
    for _ in range(20):
        await asyncio.sleep(0.2)  # the second worker may still be starting
        batch = await sockets(server, 4)
        clients += batch
        for client in batch:
            await client.send({"event": "pusher:ping", "data": {}})
            await client.recv_event("pusher:pong")
        pids = set(re.findall(r"\[(\d+)\] revurb\.frames: \S+ -> ", server.output()))
        if len(pids) == 2:
            break
    assert len(pids) == 2, "every socket landed on one worker"
    subscribers = len(clients)
    frame, clients = await traffic(server, unique("metrics-"), clients)
    # The workers write their counts every second: wait for both to have written this traffic.
    for _ in range(60):
        samples = await scrape(url)
        if value(samples, "revurb_connections_opened_total", app=APP) == subscribers + 1:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.2)
    samples = await scrape(url)
    # Frames in: a pusher:ping and a pusher:subscribe from each.
    assert_counts(samples, subscribers, frame, frames_in=2 * subscribers, processes=2)
    local = value(samples, "revurb_messages_sent_total", app=APP, kind="local")
    remote = value(samples, "revurb_messages_sent_total", app=APP, kind="remote")
    assert local and remote, f"{local} local, {remote} remote deliveries"
    # One trigger: one publish by the worker that took it, one receive by the other.
    assert value(samples, "revurb_bus_published_total") == 1
    assert value(samples, "revurb_bus_received_total") == 1
    assert value(samples, "revurb_outbox_size") == 0
    for client in clients:
        await client.close()


async def test_on_the_main_port_behind_a_bearer_token(start_server: Callable[..., RunningServer]) -> None:
    server = start_server(
        {"REVURB_METRICS": "true", "REVURB_METRICS_PORT": "0", "REVURB_METRICS_TOKEN": "s3cret"}
    )
    url = f"{server.http_url}/metrics"
    async with httpx.AsyncClient(timeout=2) as http:
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, headers={"authorization": "Bearer wrong"})).status_code == 401
    client = await PusherSocket.connect(server.ws_url(), server.key, server.secret)
    samples = await scrape(url, token="s3cret")
    assert value(samples, "revurb_connections_opened_total", app=APP) == 1
    await client.close()


async def test_metrics_port_needs_the_token_when_one_is_set(
    start_server: Callable[..., RunningServer],
) -> None:
    port = free_port()
    start_server({"REVURB_METRICS": "true", "REVURB_METRICS_PORT": str(port), "REVURB_METRICS_TOKEN": "t"})
    async with httpx.AsyncClient(timeout=2) as http:
        assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 401
        assert (await http.get(f"http://127.0.0.1:{port}/other")).status_code == 404
        ok = await http.get(f"http://127.0.0.1:{port}/metrics", headers={"authorization": "Bearer t"})
    assert ok.status_code == 200
    assert "# TYPE revurb_connections_opened_total counter" in ok.text
