"""The protocol core without a server: a fake connection, the memory backend, exact frames."""

from __future__ import annotations

import json
import sys

import pytest

from revurb.apps import App
from revurb.channels import names
from revurb.channels.names import is_valid_name, kind_of
from revurb.channels.registry import Registry
from revurb.protocol.dispatch import Dispatcher
from revurb.scaling.memory import MemoryBackend
from revurb.wire import auth, frames
from revurb.wire.connection import Connection

APP = App(id="1", key="key", secret="secret")


class FakeConnection(Connection[App]):
    __slots__ = ("sent", "closed_with")

    def __init__(self, app: App = APP, socket_id: str | None = None) -> None:
        super().__init__(app, socket_id)
        self.sent: list[dict[str, object]] = []
        self.closed_with: tuple[int, str] | None = None

    def send(self, frame: str) -> None:
        self.sent.append(json.loads(frame))

    def close(self, code: int, reason: str = "") -> None:
        self.closed_with = (code, reason)


@pytest.fixture
def server() -> Dispatcher:
    return Dispatcher(Registry(MemoryBackend()))


@pytest.mark.parametrize(
    ("name", "private", "presence", "encrypted", "cache"),
    [
        ("news", False, False, False, False),
        ("private-a", True, False, False, False),
        ("private-encrypted-a", True, False, True, False),
        ("presence-a", False, True, False, False),
        ("cache-a", False, False, False, True),
        ("private-cache-a", True, False, False, True),
        ("private-encrypted-cache-a", True, False, True, True),
        ("presence-cache-a", False, True, False, True),
    ],
)
def test_kind_by_prefix(name: str, private: bool, presence: bool, encrypted: bool, cache: bool) -> None:
    kind = kind_of(name)
    assert (kind.private, kind.presence, kind.encrypted, kind.cache) == (private, presence, encrypted, cache)


def test_channel_name_rules() -> None:
    assert is_valid_name("-_=@,.;azAZ09")
    assert is_valid_name("a" * 200)
    assert not is_valid_name("a" * 201)
    assert not is_valid_name("")
    assert not is_valid_name("with space")
    assert not is_valid_name("ümlaut")
    assert is_valid_name("#server-to-user-42")
    assert not is_valid_name("#other")


def test_auth_token_verification_is_exact() -> None:
    string = auth.channel_auth_string("1.2", "private-a")
    token = f"key:{auth.sign('secret', string)}"
    assert auth.verify_token("key", "secret", string, token)
    assert not auth.verify_token("key", "secret", string, token.upper())
    assert not auth.verify_token("key", "other", string, token)
    assert not auth.verify_token("other", "secret", string, token)
    assert not auth.verify_token("key", "secret", string, None)
    assert not auth.verify_token("key", "secret", string, token + "0")


def test_frames_put_pusher_data_in_a_json_string() -> None:
    assert (
        frames.error(4200, "x") == '{"event":"pusher:error","data":"{\\"code\\":4200,\\"message\\":\\"x\\"}"}'
    )
    assert json.loads(frames.connection_established("1.2", 30)) == {
        "event": "pusher:connection_established",
        "data": '{"socket_id":"1.2","activity_timeout":30}',
    }


async def test_open_greets_and_counts(server: Dispatcher) -> None:
    connection = FakeConnection(socket_id="1.1")
    assert await server.open(connection)
    assert connection.sent == [
        {"event": "pusher:connection_established", "data": '{"socket_id":"1.1","activity_timeout":30}'}
    ]
    assert await server.registry.backend.connection_count("1") == 1
    await server.close(connection)
    assert await server.registry.backend.connection_count("1") == 0


async def test_quota_is_enforced() -> None:
    server = Dispatcher(Registry(MemoryBackend()))
    app = App(id="q", key="q", secret="s", max_connections=1)
    assert await server.open(FakeConnection(app))
    refused = FakeConnection(app)
    assert not await server.open(refused)
    assert refused.closed_with == (4004, "Application is over connection quota")
    assert await server.registry.backend.connection_count("q") == 1


async def test_presence_lifecycle_in_the_core(server: Dispatcher) -> None:
    watcher, joiner = FakeConnection(socket_id="1.1"), FakeConnection(socket_id="2.2")
    for connection in (watcher, joiner):
        await server.open(connection)
        connection.sent.clear()
    for connection, user in ((watcher, "w"), (joiner, "j")):
        data = json.dumps({"user_id": user, "user_info": {"u": user}})
        token = f"key:{auth.sign('secret', f'{connection.socket_id}:presence-room:{data}')}"
        await server.message(
            connection,
            json.dumps(
                {
                    "event": "pusher:subscribe",
                    "data": {"channel": "presence-room", "auth": token, "channel_data": data},
                }
            ),
        )
    assert watcher.sent[-1] == {
        "event": "pusher_internal:member_added",
        "channel": "presence-room",
        "data": '{"user_id":"j","user_info":{"u":"j"}}',
    }
    assert await server.registry.backend.members("1", "presence-room") == {"w": {"u": "w"}, "j": {"u": "j"}}
    await server.close(joiner)
    assert watcher.sent[-1] == {
        "event": "pusher_internal:member_removed",
        "channel": "presence-room",
        "data": '{"user_id":"j"}',
    }
    assert await server.registry.backend.occupied_channels("1") == {"presence-room": 1}


async def test_sweep_pings_then_closes(server: Dispatcher) -> None:
    app = App(id="p", key="p", secret="s", ping_interval=10)
    connection = FakeConnection(app)
    await server.open(connection)
    manager = server.registry.manager(app)
    start = connection.last_seen
    manager.sweep(start + 5)
    assert connection.sent[-1]["event"] == "pusher:connection_established"
    manager.sweep(start + 10)
    assert connection.sent[-1] == {"event": "pusher:ping"}
    manager.sweep(start + 19)
    assert connection.closed_with is None
    manager.sweep(start + 20)
    assert connection.closed_with == (4201, "Pong reply not received in time")


async def test_a_pong_clears_the_ping(server: Dispatcher) -> None:
    app = App(id="p2", key="p2", secret="s", ping_interval=0.01)
    connection = FakeConnection(app)
    await server.open(connection)
    manager = server.registry.manager(app)
    manager.sweep(connection.last_seen + 1)
    assert connection.pinged_at is not None
    await server.message(connection, '{"event":"pusher:pong"}')
    assert connection.pinged_at is None


async def test_memory_backend_cache_expires() -> None:
    backend = MemoryBackend(cache_ttl=0.0)
    await backend.cache_put("1", "cache-a", "frame")
    assert await backend.cache_get("1", "cache-a") is None
    backend = MemoryBackend()
    await backend.cache_put("1", "cache-a", "frame")
    cached = await backend.cache_get("1", "cache-a")
    assert cached is not None and cached["frame"] == "frame" and 1790 <= cached["ttl"] <= 1800


async def test_compacting_after_a_wave_keeps_what_is_left_in_smaller_tables(server: Dispatcher) -> None:
    sockets = [FakeConnection(socket_id=f"1.{n}") for n in range(2000)]
    for n, connection in enumerate(sockets):
        assert await server.open(connection)
        subscribe = {"event": "pusher:subscribe", "data": {"channel": f"c-{n}"}}
        await server.message(connection, json.dumps(subscribe))
    manager = server.registry.manager(APP)
    for connection in sockets[:-1]:
        await server.close(connection)
    grown = (sys.getsizeof(manager.connections), sys.getsizeof(manager.channels))
    assert is_valid_name("c-1999")
    assert "c-1999" in names._VALID_NAMES

    server.registry.compact()

    assert list(manager.connections) == ["1.1999"]
    assert list(manager.channels) == ["c-1999"]
    assert manager.channels["c-1999"].subscribers == {"1.1999": sockets[-1]}
    assert sys.getsizeof(manager.connections) < grown[0] // 10
    assert sys.getsizeof(manager.channels) < grown[1] // 10
    assert not names._VALID_NAMES
    # The socket left goes on as before.
    await server.close(sockets[-1])
    assert (manager.connections, manager.channels) == ({}, {})
