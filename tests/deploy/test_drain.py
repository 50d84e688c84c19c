"""SIGTERM one of two nodes behind the shipped nginx with 200 pusher-js clients connected."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import ARRIVED, TimedDriver
from tests.deploy.stack import DRAIN_ENV, Endpoint, cluster_behind_nginx
from tests.support.api_client import call
from tests.support.metrics import scrape, value
from tests.support.servers import RedisServer, free_port

pytestmark = [pytest.mark.node, pytest.mark.redis, pytest.mark.timeout(90)]

CLIENTS = 200
#: The first clients also join the presence channel, each as its own user.
PRESENCE_CLIENTS = 60
ROOM, PRESENCE = "room", "presence-room"
GRACE = float(DRAIN_ENV["REVURB_GRACE_PERIOD"])
BATCH = 25


def user(index: int) -> dict[str, Any]:
    return {"user_id": f"u{index}", "user_info": {"n": index}}


def frame_data(report: dict[str, Any]) -> dict[str, Any]:
    data = report["message"].get("data")
    return data if isinstance(data, dict) else {}


async def join(driver: TimedDriver, entry: Endpoint, index: int) -> None:
    client = f"c{index}"
    await driver.connect(entry, client, waitMs=8000)
    assert (await driver.subscribe(client, ROOM))["subscribed"] is True
    if index < PRESENCE_CLIENTS:
        assert (await driver.subscribe(client, PRESENCE, presence=user(index)))["subscribed"] is True


async def poll_readiness(port: int, seen: list[tuple[float, int]], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=1) as http:
        while not stop.is_set():
            try:
                reply = await http.get(f"http://127.0.0.1:{port}/ready")
                seen.append((loop.time(), reply.status_code))
            except httpx.HTTPError:
                pass  # the listener is gone: the process is exiting
            await asyncio.sleep(0.02)


async def test_sigterm_drains_a_node_and_its_clients_move_to_the_other(
    timed_driver: TimedDriver, redis_server: RedisServer, tmp_path: Path
) -> None:
    driver = timed_driver
    loop = asyncio.get_running_loop()
    with cluster_behind_nginx(tmp_path, redis_server, f"drain-{free_port()}") as (proxy, first, second):
        entry = Endpoint(proxy.port)
        await driver.connect(second.server, "watcher")
        watcher = {"user_id": "watcher", "user_info": {}}
        assert (await driver.subscribe("watcher", PRESENCE, presence=watcher))["subscribed"] is True
        for start in range(0, CLIENTS, BATCH):
            await asyncio.gather(*(join(driver, entry, i) for i in range(start, min(start + BATCH, CLIENTS))))
        on_first = value(await scrape(first.metrics_url), "revurb_connections", app="1001")
        assert on_first is not None and 0 < on_first < CLIENTS
        driver.messages.clear()  # from here on, only what the drain causes

        seen: list[tuple[float, int]] = []
        stop = asyncio.Event()
        poller = asyncio.create_task(poll_readiness(first.server.port, seen, stop))
        await asyncio.sleep(0.1)
        began = loop.time()
        first.server.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(first.server.process.wait, GRACE + 5)
        exited = loop.time() - began
        stop.set()
        await poller

        # The process left within the grace period, with uvicorn's graceful exit status.
        assert exited < GRACE, f"exited after {exited:.2f} s"
        assert code == -signal.SIGTERM, first.server.output()

        # Readiness: 503 from the signal on (never 200 again), while the listener was still open.
        after = [status for at, status in seen if at >= began]
        assert 503 in after, seen
        assert 200 not in after[after.index(503) :], after

        # Every client on the drained node was told 4200 and closed with 4200; no client elsewhere.
        closed = [m for m in driver.history if m["type"] == "closed" and m.get(ARRIVED, 0) >= began]
        moved = {m["client"] for m in closed}
        assert {m["code"] for m in closed} == {4200}, closed
        assert len(moved) == len(closed) == on_first
        told = {
            m["client"]
            for m in driver.history
            if m["type"] == "message"
            and m["message"].get("event") == "pusher:error"
            and frame_data(m).get("code") == 4200
        }
        assert told == moved

        # The other node's roster dropped the drained node's presence users within 1 s.
        gone = {f"u{int(c[1:])}" for c in moved if int(c[1:]) < PRESENCE_CLIENTS}
        assert gone, "no presence user was on the drained node"
        removed = {
            frame_data(m).get("user_id"): m[ARRIVED] - began
            for m in driver.history
            if m["type"] == "message"
            and m["client"] == "watcher"
            and m["message"].get("event") == "pusher_internal:member_removed"
        }
        assert set(removed) == gone
        assert max(removed.values()) < 1.0, sorted(removed.values())

        # Every moved client reconnected (through nginx, so to the other node) and rejoined.
        for client in sorted(moved):
            await driver.expect({"type": "state", "client": client, "current": "connected"}, timeout=10)
        await until_equal(lambda: connections(second), CLIENTS + 1)
        await until_equal(lambda: roster_size(second), PRESENCE_CLIENTS + 1)
        assert value(await scrape(second.metrics_url), "revurb_connections", app="1001") == CLIENTS + 1


async def connections(node: Any) -> int:
    reply = await call(node.server, "GET", "/connections")
    return int(reply.json()["connections"])


async def roster_size(node: Any) -> int:
    reply = await call(node.server, "GET", f"/channels/{PRESENCE}/users")
    return len(reply.json()["users"])


async def until_equal(read: Any, expected: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    got = await read()
    while got != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        got = await read()
    assert got == expected
