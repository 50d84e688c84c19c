"""Embedding: Revurb mounted under /realtime in FastAPI and Starlette hosts with composed lifespans,
and `uvicorn revurb.asgi:app` / `uvicorn asgi:app` reading the same configuration as `revurb start`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pusher
import pytest
from pusher.http import process_response
from pusher.requests import RequestsBackend

from tests.clients.node import NodeDriver
from tests.support.http import signed_params
from tests.support.processes import REPO, Launcher, Process, launched
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import DEFAULT_APP, DEFAULT_QUERY, free_port

MOUNT = "/realtime"

FASTAPI_HOST = """
import contextlib

from fastapi import FastAPI

from revurb.config import load_settings
from revurb.server.app import create_app, lifespan_of

realtime = create_app(load_settings())


@contextlib.asynccontextmanager
async def lifespan(app):
    async with lifespan_of(realtime)(realtime):
        app.state.host_ready = True
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/hello")
async def hello():
    return {"hello": "from the host", "ready": app.state.host_ready}


app.mount("/realtime", realtime)
"""

STARLETTE_HOST = """
import contextlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from revurb.config import load_settings
from revurb.server.app import create_app, lifespan_of

realtime = create_app(load_settings())


@contextlib.asynccontextmanager
async def lifespan(app):
    async with lifespan_of(realtime)(realtime):
        yield


async def hello(request):
    return JSONResponse({"hello": "from the host"})


app = Starlette(routes=[Route("/hello", hello), Mount("/realtime", app=realtime)], lifespan=lifespan)
"""


@dataclass
class Endpoint:
    """What the Node driver needs to reach a server."""

    port: int
    path: str = MOUNT
    host: str = "127.0.0.1"
    app_id: str = "1001"
    key: str = "app-key"
    secret: str = "app-secret"


# pusher ships no types, so its RequestsBackend is Any to mypy and subclassing it is flagged.
class MountedBackend(RequestsBackend):  # type: ignore[misc]
    """The Python SDK knows no path prefix: send to the mount point, sign the path without it."""

    def send_request(self, request: Any) -> Any:
        url = f"{request.base_url}{MOUNT}{request.signed_path}"
        reply = self.session.request(
            request.method,
            url,
            headers=request.headers,
            data=request.body,
            timeout=self.client.timeout,
            **self.options,
        )
        return process_response(reply.status_code, reply.text)


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    yield from launched()


def uvicorn(
    launcher: Launcher, target: str, cwd: Path, env: dict[str, str], ready: str = "/up"
) -> tuple[Process, int]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--app-dir", str(cwd)]
    full_env = {"PYTHONPATH": str(REPO), **env}
    return launcher.start(command, cwd, full_env, ready_url=f"http://127.0.0.1:{port}{ready}"), port


async def connect(
    port: int, path: str = MOUNT, key: str = "app-key", secret: str = "app-secret"
) -> PusherSocket:
    return await PusherSocket.connect(f"ws://127.0.0.1:{port}{path}/app/{key}?{DEFAULT_QUERY}", key, secret)


@pytest.fixture(params=["fastapi", "starlette"])
def host(request: pytest.FixtureRequest, launcher: Launcher, tmp_path: Path) -> tuple[Process, int]:
    source = FASTAPI_HOST if request.param == "fastapi" else STARLETTE_HOST
    (tmp_path / "host_app.py").write_text(source)
    env = {**DEFAULT_APP, "REVERB_APP_PING_INTERVAL": "0.5", "REVERB_SWEEP_INTERVAL": "0.1"}
    return uvicorn(launcher, "host_app:app", tmp_path, env, ready=f"{MOUNT}/up")


async def test_the_host_keeps_its_own_routes(host: tuple[Process, int]) -> None:
    _, port = host
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"http://127.0.0.1:{port}/hello")
        health = await http.get(f"http://127.0.0.1:{port}{MOUNT}/up")
    assert reply.json()["hello"] == "from the host"
    assert health.json()["health"] == "OK"


async def test_mounted_socket_subscribes_and_the_lifespan_runs(host: tuple[Process, int]) -> None:
    _, port = host
    client = await connect(port)
    reply = await client.join("private-mounted")
    assert reply == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": "private-mounted",
        "data": "{}",
    }
    # The ping / prune sweep only runs from Revurb's lifespan: a ping proves the host composed it.
    assert await client.recv_event("pusher:ping", timeout=5) == {"event": "pusher:ping"}
    await client.close()


async def test_python_sdk_signs_the_path_without_the_mount_point(host: tuple[Process, int]) -> None:
    _, port = host
    client = await connect(port)
    await client.join("mounted-news")
    sdk = pusher.Pusher(
        app_id="1001",
        key="app-key",
        secret="app-secret",
        host="127.0.0.1",
        port=port,
        ssl=False,
        backend=MountedBackend,
    )
    result = await asyncio.to_thread(sdk.trigger, "mounted-news", "headline", {"title": "mounted"})
    assert result == {}
    frame = await client.recv_event("headline")
    assert frame == {"event": "headline", "channel": "mounted-news", "data": '{"title": "mounted"}'}
    channels = await asyncio.to_thread(sdk.channels_info)
    assert channels == {"channels": {"mounted-news": {}}}
    await client.close()


async def test_pusher_js_with_the_mount_path(node_driver: NodeDriver, host: tuple[Process, int]) -> None:
    _, port = host
    target = Endpoint(port)
    socket_id = await node_driver.connect(target, "js")
    assert socket_id
    outcome = await node_driver.subscribe(
        "js", "presence-mounted", presence={"user_id": "u1", "user_info": {}}
    )
    assert outcome["subscribed"] is True, outcome
    reply = await node_driver.rest(target, "trigger", "presence-mounted", "hi", {"from": "node sdk"})
    assert (reply["ok"], reply["status"], reply["body"]) == (True, 200, {}), reply
    event = await node_driver.expect(
        {"type": "event", "client": "js", "channel": "presence-mounted", "event": "hi"}
    )
    assert event["data"] == {"from": "node sdk"}


async def test_laravel_echo_with_the_mount_path(node_driver: NodeDriver, host: tuple[Process, int]) -> None:
    _, port = host
    target = Endpoint(port)
    await node_driver.connect(target, "echo", echo=True)
    await node_driver.ok(
        {"cmd": "echo_private", "client": "echo", "channel": "orders.1", "event": "OrderShipped"}
    )
    await node_driver.expect({"type": "echo", "client": "echo", "channel": "orders.1", "kind": "subscribed"})
    reply = await node_driver.rest(
        target, "trigger", "private-orders.1", "App\\Events\\OrderShipped", {"id": 1}
    )
    assert reply["status"] == 200, reply
    got = await node_driver.expect(
        {"type": "echo", "client": "echo", "kind": "listen", "event": "OrderShipped"}
    )
    assert got["payload"] == {"id": 1}


CONFIG_PY = """
config = {"servers": {"reverb": {"path": "/from-config-py"}}}
"""


@pytest.mark.parametrize("target", ["revurb.asgi:app", "asgi:app"])
async def test_uvicorn_reads_the_same_configuration_as_revurb_start(
    launcher: Launcher, tmp_path: Path, target: str
) -> None:
    (tmp_path / ".env").write_text(
        "REVERB_APP_ID=555\nREVERB_APP_KEY=dotenv-key\nREVERB_APP_SECRET=dotenv-secret\n"
    )
    (tmp_path / "reverb.config.py").write_text(CONFIG_PY)
    app_dir = REPO if target == "asgi:app" else tmp_path
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--app-dir", str(app_dir)]
    launcher.start(
        command,
        tmp_path,
        {"REVERB_SERVER_PATH": "/from-env"},
        ready_url=f"http://127.0.0.1:{port}/from-env/up",
    )
    client = await connect(port, "/from-env", "dotenv-key", "dotenv-secret")
    await client.join("private-uvicorn")
    await client.close()


@pytest.mark.parametrize(
    ("ws", "http"),
    [
        ("revurb.transport:WebSocketProtocol", "revurb.transport:HttpProtocol"),
        # The names of earlier releases, which users may still pass.
        ("revurb.server.protocol:RevurbWebSocketProtocol", "revurb.server.http_protocol:RevurbHttpProtocol"),
    ],
)
async def test_uvicorn_serves_the_fast_path_when_given_revurbs_protocols(
    launcher: Launcher, tmp_path: Path, ws: str, http: str
) -> None:
    protocols = ["--ws", ws, "--http", http]
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "revurb.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
    process = launcher.start(
        [*command, *protocols], tmp_path, dict(DEFAULT_APP), ready_url=f"http://127.0.0.1:{port}/up"
    )
    url = f"ws://127.0.0.1:{port}/app/app-key?{DEFAULT_QUERY}"
    client = await PusherSocket.connect(url, "app-key", "app-secret", compression="deflate")

    # uvicorn's own WebSocket layer would accept the deflate offer; Revurb's protocol declines it.
    assert client.ws.response is not None
    assert client.ws.response.headers.get("Sec-WebSocket-Extensions") is None
    await client.send({"event": "pusher:subscribe", "data": {"channel": "fast"}})
    assert (await client.recv())["event"] == "pusher_internal:subscription_succeeded"
    body = b'{"name":"e","channels":["fast"],"data":"x"}'
    query = signed_params("POST", "/apps/1001/events", "app-key", "app-secret", body)
    async with httpx.AsyncClient(timeout=5) as api:
        answer = await api.post(f"http://127.0.0.1:{port}/apps/1001/events", params=query, content=body)
    assert (answer.status_code, answer.text) == (200, "{}")
    assert await client.recv() == {"event": "e", "channel": "fast", "data": "x"}

    # Plain uvicorn shuts down through the protocol, which asks the app to say goodbye: 4200.
    stopping = asyncio.get_running_loop().run_in_executor(None, process.stop)
    assert await client.closed_with() == (4200, "Server is shutting down")
    await stopping


async def test_uvicorn_reads_a_config_file_named_by_revurb_config(launcher: Launcher, tmp_path: Path) -> None:
    (tmp_path / "revurb.json").write_text(
        '{"servers": {"reverb": {"path": "/json"}},'
        ' "apps": {"apps": [{"app_id": "9", "key": "jk", "secret": "js"}]}}'
    )
    process, port = uvicorn(
        launcher, "revurb.asgi:app", tmp_path, {"REVURB_CONFIG": "revurb.json"}, ready="/json/up"
    )
    client = await connect(port, "/json", "jk", "js")
    await client.join("private-json")
    await client.close()
    assert process.alive()


def test_uvicorn_with_invalid_configuration_exits_with_one_message(
    launcher: Launcher, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "uvicorn", "revurb.asgi:app", "--port", str(free_port())]
    process = launcher.start(command, tmp_path, {**DEFAULT_APP, "REVERB_APP_MAX_MESSAGE_SIZE": "big"})
    assert process.wait() == 2
    assert process.output() == (
        "Invalid configuration: REVERB_APP_MAX_MESSAGE_SIZE must be a whole number of at least 1, got 'big'\n"
    )
