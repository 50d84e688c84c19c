"""pusher-js clients spread over three nodes behave as if on one server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.clients.node import NodeDriver
from tests.cluster.conftest import StartCluster
from tests.support.pusher_socket import unique

pytestmark = pytest.mark.node

ALICE = {"user_id": "1", "user_info": {"name": "Alice"}}
BOB = {"user_id": "2", "user_info": {"name": "Bob"}}
CAROL = {"user_id": "3", "user_info": {"name": "Carol"}}


def _event(client: str, channel: str, event: str) -> dict[str, Any]:
    return {"type": "event", "client": client, "channel": channel, "event": event}


async def test_pusher_js_presence_and_events_across_nodes(
    node_driver: NodeDriver, cluster: StartCluster
) -> None:
    a, b, c = cluster(3)
    channel = unique("presence-room-")
    await node_driver.connect(a, "alice", presence=ALICE)
    await node_driver.connect(b, "bob-phone", presence=BOB)
    await node_driver.connect(c, "bob-laptop", presence=BOB)
    await node_driver.connect(c, "carol", presence=CAROL)

    assert (await node_driver.subscribe("alice", channel))["subscribed"] is True
    assert (await node_driver.subscribe("bob-phone", channel))["subscribed"] is True
    added = await node_driver.expect(_event("alice", channel, "pusher:member_added"))
    assert added["data"] == {"id": "2", "info": {"name": "Bob"}}
    assert (await node_driver.subscribe("bob-laptop", channel))["subscribed"] is True
    assert (await node_driver.subscribe("carol", channel))["subscribed"] is True
    everyone = {"1": {"name": "Alice"}, "2": {"name": "Bob"}, "3": {"name": "Carol"}}
    carol = await node_driver.expect({"type": "members", "client": "carol", "channel": channel})
    assert (carol["count"], carol["members"]) == (3, everyone)
    for name in ("alice", "bob-phone", "bob-laptop"):
        joined = await node_driver.expect(_event(name, channel, "pusher:member_added"))
        assert joined["data"] == {"id": "3", "info": {"name": "Carol"}}
    # Bob's second socket (another node) is the same member: nobody heard of it.
    await node_driver.assert_none(
        lambda m: m["type"] == "event" and m["event"] == "pusher:member_added" and m["channel"] == channel,
        within=0.5,
    )
    for name in ("alice", "bob-phone", "bob-laptop", "carol"):
        snapshot = await node_driver.ok({"cmd": "members", "client": name, "channel": channel})
        assert (snapshot["count"], snapshot["members"]) == (3, everyone)

    for i, node in enumerate((a, b, c)):
        reply = await node_driver.rest(node, "trigger", channel, "tick", {"n": i})
        assert reply["status"] == 200
        for name in ("alice", "bob-phone", "bob-laptop", "carol"):
            event = await node_driver.expect(_event(name, channel, "tick"))
            assert event["data"] == {"n": i}
        users = await node_driver.rest(node, "get", {"path": f"/channels/{channel}/users"})
        assert sorted(users["body"]["users"], key=lambda u: u["id"]) == [
            {"id": "1"},
            {"id": "2"},
            {"id": "3"},
        ]

    await node_driver.ok({"cmd": "disconnect", "client": "bob-phone"})
    await node_driver.assert_none(_event("alice", channel, "pusher:member_removed"))
    await node_driver.ok({"cmd": "disconnect", "client": "bob-laptop"})
    for name in ("alice", "carol"):
        removed = await node_driver.expect(_event(name, channel, "pusher:member_removed"))
        assert removed["data"] == {"id": "2", "info": {"name": "Bob"}}
    await node_driver.assert_none(_event("alice", channel, "pusher:member_removed"), within=0.3)
