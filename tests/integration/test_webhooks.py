"""Webhooks against a real receiver: every kind with Pusher's exact body, signatures the Python and
Node `pusher` SDKs accept, filters and headers, retries, bounds and metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pusher
import pytest

from tests.clients.node import NodeDriver
from tests.support.fixture_types import Connect, StartServer
from tests.support.pusher_socket import dumps, unique
from tests.support.servers import DEFAULT_APP
from tests.support.webhook_receiver import Delivery, running_receiver

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


def config_file(tmp_path: Path, *hooks: dict[str, Any], **options: Any) -> list[str]:
    """`--config` arguments for the default app with these webhook tables."""
    app = {"app_id": APP_ID, "key": KEY, "secret": SECRET, "webhooks": list(hooks), **options}
    path = tmp_path / "webhooks.json"
    path.write_text(json.dumps({"apps": {"apps": [app]}}))
    return ["--config", str(path)]


def member(user_id: str) -> str:
    return dumps({"user_id": user_id, "user_info": {"name": user_id}})


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
    start_server: StartServer, connect: Connect, node_driver: NodeDriver, tmp_path: Path
) -> None:
    async with running_receiver() as receiver:
        args = config_file(tmp_path, {"url": receiver.url, "event_types": EVERY_KIND})
        server = start_server(FAST, args)
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
        assert events == [
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
