"""The shipped nginx site in front of two nodes on Redis: real pusher-js and laravel-echo clients
connect through it, the Python `pusher` SDK triggers through it, events reach clients on both nodes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pusher
import pytest

from tests.clients.node import NodeDriver
from tests.deploy.stack import Endpoint, cluster_behind_nginx
from tests.support.metrics import scrape, value
from tests.support.servers import RedisServer, free_port

pytestmark = [pytest.mark.node, pytest.mark.redis]

CLIENTS = 6  # pusher-js; nginx's round robin puts half on each node
CHANNEL = "orders"


async def test_clients_and_the_python_sdk_through_nginx_reach_both_nodes(
    node_driver: NodeDriver, redis_server: RedisServer, tmp_path: Path
) -> None:
    with cluster_behind_nginx(tmp_path, redis_server, f"nginx-{free_port()}") as (proxy, first, second):
        entry = Endpoint(proxy.port)
        for index in range(CLIENTS):
            await node_driver.connect(entry, f"js{index}")
            assert (await node_driver.subscribe(f"js{index}", CHANNEL))["subscribed"] is True
        await node_driver.connect(entry, "echo", echo=True)
        await node_driver.ok(
            {"cmd": "echo_listen", "client": "echo", "channel": CHANNEL, "event": ".shipped"}
        )
        await node_driver.expect({"type": "echo", "client": "echo", "channel": CHANNEL, "kind": "subscribed"})

        held = [
            value(await scrape(node.metrics_url), "revurb_connections", app="1001")
            for node in (first, second)
        ]
        assert sum(h or 0 for h in held) == CLIENTS + 1
        assert all(h and h >= 1 for h in held), f"nginx left a node without clients: {held}"

        sdk = pusher.Pusher(
            app_id="1001", key="app-key", secret="app-secret", host="127.0.0.1", port=proxy.port, ssl=False
        )
        reply = await asyncio.to_thread(sdk.trigger, CHANNEL, "shipped", {"order": 7})
        assert reply == {}

        for index in range(CLIENTS):
            got = await node_driver.expect({"type": "event", "client": f"js{index}", "event": "shipped"})
            assert (got["channel"], got["data"]) == (CHANNEL, {"order": 7})
        heard = await node_driver.expect(
            {"type": "echo", "client": "echo", "kind": "listen", "event": ".shipped"}
        )
        assert heard["payload"] == {"order": 7}

        # Delivered on both nodes: each wrote the event to its own clients (one trigger, one publish).
        for node, clients in zip((first, second), held, strict=True):
            samples = await scrape(node.metrics_url)
            local = value(samples, "revurb_messages_sent_total", app="1001", kind="local") or 0
            remote = value(samples, "revurb_messages_sent_total", app="1001", kind="remote") or 0
            assert local + remote == clients
        assert proxy.error_log().count("[error]") == 0, proxy.error_log()
