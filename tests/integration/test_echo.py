"""laravel-echo 2 (over pusher-js, broadcaster "pusher") against a real Revurb server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.clients.node import NodeDriver, ServerLike

pytestmark = pytest.mark.node

ALICE = {"user_id": "1", "user_info": {"id": "1", "name": "Alice"}}
BOB = {"user_id": "2", "user_info": {"id": "2", "name": "Bob"}}
AUTH_ERROR = {"type": "AuthError", "error": "The connection is unauthorized.", "status": 401}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def echo(client: str, channel: str, kind: str, **more: Any) -> dict[str, Any]:
    return {"type": "echo", "client": client, "channel": channel, "kind": kind, **more}


async def test_channel_listen_gets_namespaced_and_raw_events(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    channel = unique("orders.")
    await node_driver.connect(server, "e", echo=True)

    await node_driver.ok({"cmd": "echo_listen", "client": "e", "channel": channel, "event": "OrderShipped"})
    await node_driver.ok({"cmd": "echo_listen", "client": "e", "channel": channel, "event": ".order.raw"})
    await node_driver.expect(echo("e", channel, "subscribed"))

    shipped = await node_driver.rest(
        server, "trigger", channel, "App\\Events\\OrderShipped", {"order": {"id": 1}}
    )
    assert shipped["status"] == 200
    raw = await node_driver.rest(server, "trigger", channel, "order.raw", {"order": {"id": 2}})
    assert raw["status"] == 200

    got = await node_driver.expect(echo("e", channel, "listen", event="OrderShipped"))
    assert got["payload"] == {"order": {"id": 1}}
    got = await node_driver.expect(echo("e", channel, "listen", event=".order.raw"))
    assert got["payload"] == {"order": {"id": 2}}
    await node_driver.assert_none(lambda m: m["type"] == "echo" and m["kind"] == "listen")


async def test_private_listen(node_driver: NodeDriver, server: ServerLike) -> None:
    name = unique("App.Models.User.")
    await node_driver.connect(server, "e", echo=True)

    reply = await node_driver.ok(
        {"cmd": "echo_private", "client": "e", "channel": name, "event": "InvoicePaid"}
    )
    assert reply["pusher_channel"] == f"private-{name}"
    await node_driver.expect(echo("e", name, "subscribed"))

    sent = await node_driver.rest(
        server, "trigger", f"private-{name}", "App\\Events\\InvoicePaid", {"amount": 99.5}
    )
    assert sent["status"] == 200
    got = await node_driver.expect(echo("e", name, "listen", event="InvoicePaid"))
    assert got["payload"] == {"amount": 99.5}
    assert got["pusher_channel"] == f"private-{name}"


async def test_private_auth_failure_reaches_error_handler(
    node_driver: NodeDriver, server: ServerLike
) -> None:
    name = unique("secrets.")
    await node_driver.connect(server, "e", echo=True, badAuth=True)

    await node_driver.ok({"cmd": "echo_error", "client": "e", "channel": name, "kind": "private"})

    got = await node_driver.expect(echo("e", name, "error"))
    assert got["payload"] == AUTH_ERROR
    await node_driver.assert_none(echo("e", name, "subscribed"), within=0.3)


async def test_join_here_joining_leaving(node_driver: NodeDriver, server: ServerLike) -> None:
    room = unique("chat.")
    await node_driver.connect(server, "alice", echo=True, presence=ALICE)
    await node_driver.connect(server, "bob", echo=True, presence=BOB)

    reply = await node_driver.ok({"cmd": "echo_join", "client": "alice", "channel": room})
    assert reply["pusher_channel"] == f"presence-{room}"
    here = await node_driver.expect(echo("alice", room, "here"))
    assert here["payload"] == [{"id": "1", "name": "Alice"}]

    await node_driver.ok({"cmd": "echo_join", "client": "bob", "channel": room})
    here = await node_driver.expect(echo("bob", room, "here"))
    assert sorted(here["payload"], key=lambda u: u["id"]) == [
        {"id": "1", "name": "Alice"},
        {"id": "2", "name": "Bob"},
    ]
    joining = await node_driver.expect(echo("alice", room, "joining"))
    assert joining["payload"] == {"id": "2", "name": "Bob"}
    await node_driver.assert_none(echo("bob", room, "joining"), within=0.3)

    await node_driver.ok({"cmd": "echo_leave", "client": "bob", "channel": room})
    leaving = await node_driver.expect(echo("alice", room, "leaving"))
    assert leaving["payload"] == {"id": "2", "name": "Bob"}


async def test_join_listens_for_broadcasts_too(node_driver: NodeDriver, server: ServerLike) -> None:
    room = unique("game.")
    await node_driver.connect(server, "alice", echo=True, presence=ALICE)

    await node_driver.ok({"cmd": "echo_join", "client": "alice", "channel": room, "event": "ScoreChanged"})
    await node_driver.expect(echo("alice", room, "here"))

    sent = await node_driver.rest(
        server, "trigger", f"presence-{room}", "App\\Events\\ScoreChanged", {"score": [3, 1]}
    )
    assert sent["status"] == 200
    got = await node_driver.expect(echo("alice", room, "listen", event="ScoreChanged"))
    assert got["payload"] == {"score": [3, 1]}


@pytest.mark.parametrize("kind", ["private", "presence"])
async def test_whisper_reaches_others_but_not_the_sender(
    node_driver: NodeDriver, server: ServerLike, kind: str
) -> None:
    name = unique("typing.")
    await node_driver.connect(server, "alice", echo=True, presence=ALICE)
    await node_driver.connect(server, "bob", echo=True, presence=BOB)
    for client in ("alice", "bob"):
        await node_driver.ok(
            {
                "cmd": "echo_listen_for_whisper",
                "client": client,
                "channel": name,
                "kind": kind,
                "event": "typing",
            }
        )
        await node_driver.expect(echo(client, name, "subscribed"))

    await node_driver.ok(
        {
            "cmd": "echo_whisper",
            "client": "alice",
            "channel": name,
            "kind": kind,
            "event": "typing",
            "data": {"name": "Alice", "typing": True},
        }
    )

    got = await node_driver.expect(echo("bob", name, "whisper", event="typing"))
    assert got["payload"] == {"name": "Alice", "typing": True}
    await node_driver.assert_none(echo("alice", name, "whisper"))
    if kind == "presence":
        raw = await node_driver.expect(
            lambda m: (
                m["type"] == "message" and m["client"] == "bob" and m["message"]["event"] == "client-typing"
            )
        )
        assert raw["message"] == {
            "event": "client-typing",
            "channel": f"presence-{name}",
            "data": {"name": "Alice", "typing": True},
            "user_id": "1",
        }
