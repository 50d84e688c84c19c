"""The call signatures of the factory fixtures (`start_server`, `connect`, the cluster's `client`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tests.support.pusher_socket import PusherSocket
from tests.support.servers import DEFAULT_QUERY, RunningServer


class StartServer(Protocol):
    """`start_server(env, args)`: a `revurb start` with the default app plus `env`, stopped after the test."""

    def __call__(
        self,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        *,
        port: int | None = None,
        cwd: str | None = None,
        wait: bool = True,
    ) -> RunningServer: ...


class Connect(Protocol):
    """`await connect(server)`: a raw Pusher socket (to the session server by default), closed after the test.

    `options` go to `websockets.connect` (`origin`, `max_size`, `compression`, ...)."""

    async def __call__(
        self,
        target: RunningServer | None = None,
        *,
        key: str | None = None,
        query: str = DEFAULT_QUERY,
        handshake: bool = True,
        **options: Any,
    ) -> PusherSocket: ...


class ConnectToNode(Protocol):
    """`await client(node)`: a raw Pusher socket to one node of a cluster, closed after the test."""

    async def __call__(
        self, node: RunningServer, *, handshake: bool = True, **options: Any
    ) -> PusherSocket: ...
