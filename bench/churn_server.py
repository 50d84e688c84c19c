"""`revurb start` as the churn benchmark runs it: the same server, which on SIGUSR2 writes what it
still holds (tasks, sockets, channels, presence members, backend counts) to `REVURB_BENCH_STATE`.

Bench code only: it reads the app's internals, which nothing else may do.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
from typing import Any

import uvicorn

from bench.report import dumps
from revurb.config import load_settings
from revurb.serve import Server, uvicorn_options
from revurb.server.app import Revurb, create_app


def state(app: Revurb, server: uvicorn.Server) -> dict[str, Any]:
    managers = app.registry.managers.values()
    # The memory backend's counts live in its Mirror (scaling/mirror.py).
    mirror: Any = getattr(app.backend, "_mirror", None)
    rosters = mirror.members if mirror is not None else {}
    subscriptions = mirror.subscriptions if mirror is not None else {}
    connections = mirror.connections if mirror is not None else {}
    return {
        "tasks": len(asyncio.all_tasks()),
        "server_connections": len(server.server_state.connections),
        "server_tasks": len(server.server_state.tasks),
        "sockets": sum(len(manager.connections) for manager in managers),
        "channels": sum(len(manager.channels) for manager in managers),
        "users": sum(len(manager.users) for manager in managers),
        "presence_members": sum(
            len(members) for app_rosters in rosters.values() for members in app_rosters.values()
        ),
        "presence_channels": sum(len(app_rosters) for app_rosters in rosters.values()),
        "subscription_counts": sum(len(counts) for counts in subscriptions.values()),
        "connection_counts": {app_id: connections.get(app_id, 0) for app_id in app.registry.managers},
        "gc_objects": len(gc.get_objects()),
    }


class BenchServer(Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        path = os.environ["REVURB_BENCH_STATE"]

        def dump() -> None:
            with open(path, "w") as handle:
                handle.write(dumps(state(self.revurb, self)))

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump)


def main(port: int) -> None:
    settings = load_settings()
    app = create_app(settings)
    options = {**uvicorn_options(settings), "log_level": "warning"}
    BenchServer(uvicorn.Config(app, host="127.0.0.1", port=port, **options), app).run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
