"""Shared fixtures: real `revurb start` servers and real `redis-server` processes on free ports."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import pytest

from tests.support.bench import node  # noqa: F401  (the benchmark smoke tests' fixture)
from tests.support.fixture_types import Connect, StartServer
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import DEFAULT_QUERY, RedisServer, RunningServer, free_port, in_ci, start_revurb

with contextlib.suppress(ImportError):  # the pusher-js / laravel-echo driver
    from tests.clients.fixtures import node_driver  # noqa: F401


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """One `revurb start` for the session, default app 1001 / app-key / app-secret."""
    running = start_revurb()
    yield running
    running.stop()


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start servers with extra `REVERB_*` env or CLI args; all are stopped after the test."""
    started: list[RunningServer] = []

    def start(
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        *,
        port: int | None = None,
        cwd: str | None = None,
        wait: bool = True,
    ) -> RunningServer:
        running = start_revurb(env, args, port=port, cwd=cwd, wait=wait)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
async def connect(server: RunningServer) -> AsyncIterator[Connect]:
    """Open raw Pusher sockets to a server (the session one unless given); closed after the test."""
    sockets: list[PusherSocket] = []

    async def open_socket(
        target: RunningServer | None = None,
        *,
        key: str | None = None,
        query: str = DEFAULT_QUERY,
        handshake: bool = True,
        **options: Any,
    ) -> PusherSocket:
        target = target or server
        client = await PusherSocket.connect(
            target.ws_url(key, query), target.key, target.secret, handshake, **options
        )
        sockets.append(client)
        return client

    yield open_socket
    for client in sockets:
        await client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the session; required (never skipped) when CI=true."""
    import shutil

    if shutil.which("redis-server") is None:
        if in_ci():
            pytest.fail("redis-server is required in CI but is not installed")
        pytest.skip("redis-server is not installed")
    directory = tempfile.mkdtemp(prefix="revurb-redis-")
    redis = RedisServer(port=free_port(), directory=directory)
    redis.start()
    yield redis
    redis.stop()
