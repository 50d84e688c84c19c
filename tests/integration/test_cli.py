"""The real `revurb` command in subprocesses: start, connect, stop; debug; install; restart; workers."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from revurb import __version__
from revurb.apps import App
from revurb.config import Settings
from tests.support.processes import REPO, REVURB, Launcher, Process, launched, run
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import DEFAULT_APP, DEFAULT_QUERY, RedisServer, free_port

QUERY = DEFAULT_QUERY
#: uvicorn shuts down gracefully on SIGTERM, then re-raises it: the exit status says SIGTERM.
GRACEFUL = -signal.SIGTERM


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    yield from launched()


class ProvidedApps:
    """An app provider defined here and named by import path in the server's configuration."""

    def __init__(self, settings: Settings) -> None:
        self.apps = (App(id="77", key="provided-key", secret="provided-secret"),)

    async def all(self) -> Sequence[App]:
        return self.apps

    async def find_by_id(self, app_id: str) -> App | None:
        return next((a for a in self.apps if a.id == app_id), None)

    async def find_by_key(self, key: str) -> App | None:
        return next((a for a in self.apps if a.key == key), None)


def start(
    launcher: Launcher, cwd: Path, args: Sequence[str] = (), env: dict[str, str] | None = None, port: int = 0
) -> tuple[Process, int]:
    port = port or free_port()
    command = [*REVURB, "start", "--host", "127.0.0.1", "--port", str(port), *args]
    return launcher.start(command, cwd, env, ready_url=f"http://127.0.0.1:{port}/up"), port


async def connect(
    port: int, key: str = "app-key", secret: str = "app-secret", path: str = ""
) -> PusherSocket:
    return await PusherSocket.connect(f"ws://127.0.0.1:{port}{path}/app/{key}?{QUERY}", key, secret)


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_start_connect_stop(launcher: Launcher, tmp_path: Path) -> None:
    server, port = start(launcher, tmp_path, env=DEFAULT_APP)
    banner = server.output()
    assert f"Revurb {__version__} listening on 127.0.0.1:{port}\n" in banner
    assert f"  clients connect to ws://127.0.0.1:{port}/app/{{key}}\n" in banner
    assert "  app 1001 (key app-key)\n" in banner
    assert "app-secret" not in banner
    pid_file = Path(tempfile.gettempdir()) / f"revurb-{port}.pid"
    assert pid_file.read_text() == f"{server.popen.pid}\n"

    client = await connect(port)
    await client.join("public-room")
    assert server.stop(signal.SIGTERM) == GRACEFUL
    assert await client.closed_with() == (4200, "Server is shutting down")
    await client.close()
    assert not pid_file.exists()
    assert "Traceback" not in server.output()


async def test_debug_logs_every_frame_with_socket_ids(launcher: Launcher, tmp_path: Path) -> None:
    server, port = start(launcher, tmp_path, ["--debug"], DEFAULT_APP)
    client = await connect(port)
    await client.join("public-room")
    await client.close()
    expected_in = (
        f'{client.socket_id} -> {{"event": "pusher:subscribe", "data": {{"channel": "public-room"}}}}'
    )
    wait_for(lambda: expected_in in server.output())
    out = server.output()
    assert re.search(rf"{re.escape(client.socket_id)} <- .*pusher:connection_established", out), out
    assert re.search(
        rf"{re.escape(client.socket_id)} <- .*pusher_internal:subscription_succeeded.*public-room", out
    ), out


async def test_without_debug_no_frames_are_logged(launcher: Launcher, tmp_path: Path) -> None:
    server, port = start(launcher, tmp_path, env=DEFAULT_APP)
    client = await connect(port)
    await client.join("public-room")
    await client.close()
    await asyncio.sleep(0.3)
    assert client.socket_id not in server.output()


async def test_flags_override_the_environment(launcher: Launcher, tmp_path: Path) -> None:
    server, port = start(launcher, tmp_path, ["--path", "ws/", "--hostname", "rt.example"], DEFAULT_APP)
    assert f"  clients connect to ws://rt.example:{port}/ws/app/{{key}}\n" in server.output()
    client = await connect(port, path="/ws")
    assert client.socket_id
    await client.close()


async def test_nothing_configured_makes_development_credentials(launcher: Launcher, tmp_path: Path) -> None:
    server, port = start(launcher, tmp_path)
    written = dotenv_values(tmp_path / ".env")
    assert set(written) == {"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET"}
    app_id, key, secret = written["REVERB_APP_ID"], written["REVERB_APP_KEY"], written["REVERB_APP_SECRET"]
    assert app_id and app_id.isdigit() and key and secret and len(key) == 20 and key != secret
    out = server.output()
    assert f"  REVERB_APP_KEY={key}\n  REVERB_APP_SECRET={secret}\n" in out
    assert f'const pusher = new Pusher("{key}", {{' in out
    assert f'    wsHost: "127.0.0.1",\n    wsPort: {port},' in out
    assert 'broadcaster: "reverb",' in out
    client = await connect(port, key, secret)
    assert client.socket_id
    await client.close()
    server.stop()

    again, _ = start(launcher, tmp_path)
    assert dotenv_values(tmp_path / ".env") == written
    assert "development credentials" not in again.output()
    assert f"  app {app_id} (key {key})" in again.output()


def test_install_writes_fresh_credentials_without_overwriting(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("APP_NAME=demo\nREVERB_APP_KEY=kept-key\nREVERB_APP_SECRET=\n")
    result = run(["install"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Wrote REVERB_APP_ID, REVERB_APP_SECRET, REVERB_HOST, REVERB_PORT, REVERB_SCHEME to .env\n"
    )
    values = dotenv_values(tmp_path / ".env")
    assert values["APP_NAME"] == "demo"
    assert values["REVERB_APP_KEY"] == "kept-key"
    assert values["REVERB_APP_ID"] and values["REVERB_APP_ID"].isdigit()
    assert values["REVERB_APP_SECRET"] and len(values["REVERB_APP_SECRET"]) == 20
    assert (values["REVERB_HOST"], values["REVERB_PORT"], values["REVERB_SCHEME"]) == (
        "localhost",
        "8080",
        "http",
    )

    again = run(["install"], tmp_path)
    assert again.stdout == ".env already has every value; nothing changed\n"
    assert dotenv_values(tmp_path / ".env") == values


def test_install_makes_different_credentials_each_time(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run(["install"], tmp_path / "a")
    run(["install"], tmp_path / "b")
    a, b = dotenv_values(tmp_path / "a" / ".env"), dotenv_values(tmp_path / "b" / ".env")
    assert a["REVERB_APP_KEY"] != b["REVERB_APP_KEY"] and a["REVERB_APP_SECRET"] != b["REVERB_APP_SECRET"]


async def test_restart_through_the_pid_file(launcher: Launcher, tmp_path: Path) -> None:
    server, port = start(launcher, tmp_path, env=DEFAULT_APP)
    client = await connect(port)
    result = run(["restart", "--port", str(port)], tmp_path, DEFAULT_APP)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Sent SIGTERM to the server (pid {server.popen.pid}); it stops gracefully\n"
    assert server.wait() == GRACEFUL
    assert await client.closed_with() == (4200, "Server is shutting down")
    await client.close()

    nothing = run(["restart", "--port", str(port)], tmp_path, DEFAULT_APP)
    assert nothing.returncode == 1
    assert nothing.stderr.startswith("No running server found (no live pid in ")


@pytest.mark.redis
async def test_restart_through_redis_stops_every_server(
    launcher: Launcher, tmp_path: Path, redis_server: RedisServer
) -> None:
    channel = f"restart-{free_port()}"
    env = {
        **DEFAULT_APP,
        "REVERB_SCALING_ENABLED": "true",
        "REVERB_SCALING_CHANNEL": channel,
        "REDIS_URL": redis_server.url,
        "REVERB_RESTART_CHECK_INTERVAL": "0.2",
    }
    first, _ = start(launcher, tmp_path, env=env)
    second, _ = start(launcher, tmp_path, env=env)
    other, _ = start(launcher, tmp_path, env={**env, "REVERB_SCALING_CHANNEL": f"{channel}-other"})
    result = run(["restart"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Restart signal stored in Redis ({channel}:restart); servers stop within 0.2 s\n"
    assert first.wait() == GRACEFUL
    assert second.wait() == GRACEFUL
    assert "restart requested (revurb restart): stopping gracefully" in first.output()
    await asyncio.sleep(0.6)
    assert other.alive(), "a server on another channel must not restart"

    # A server started after the restart signal keeps running.
    fresh, _ = start(launcher, tmp_path, env=env)
    await asyncio.sleep(0.6)
    assert fresh.alive()


@pytest.mark.redis
async def test_two_workers_serve_clients_from_both_processes(
    launcher: Launcher, tmp_path: Path, redis_server: RedisServer
) -> None:
    env = {
        **DEFAULT_APP,
        "REVERB_SCALING_ENABLED": "true",
        "REVERB_SCALING_CHANNEL": f"workers-{free_port()}",
        "REDIS_URL": redis_server.url,
        "REVERB_RESTART_CHECK_INTERVAL": "0.2",
    }
    server, port = start(launcher, tmp_path, ["--workers", "2", "--debug"], env)
    assert f"listening on 127.0.0.1:{port} (2 workers)" in server.output()
    clients: list[PusherSocket] = []
    pids: dict[str, str] = {}
    for _ in range(8):
        batch = await asyncio.gather(*(connect(port) for _ in range(6)))
        clients += batch
        for client in batch:
            await client.join("public-everyone")
        await asyncio.sleep(0.2)
        for client in clients:
            found = re.search(rf"\[(\d+)\] revurb\.frames: {re.escape(client.socket_id)} ->", server.output())
            if found:
                pids[client.socket_id] = found.group(1)
        if len(set(pids.values())) >= 2:
            break
    assert len(set(pids.values())) == 2, f"all sockets landed on one worker: {set(pids.values())}"

    body = json.dumps({"name": "greet", "channel": "public-everyone", "data": "hello"})
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"http://127.0.0.1:{port}/apps/1001/events",
            content=body,
            params=_signed("POST", "/apps/1001/events", body),
        )
    assert reply.status_code == 200, reply.text
    for client in clients:
        frame = await client.recv_event("greet")
        assert frame == {"event": "greet", "channel": "public-everyone", "data": "hello"}

    # `revurb restart` stops the whole server: a worker that sees the signal stops the supervisor.
    assert run(["restart"], tmp_path, env).returncode == 0
    assert server.wait() in (0, GRACEFUL)
    for client in clients:
        assert (await client.closed_with())[0] in (4200, 1012)  # both tell clients to reconnect
        await client.close()


def _signed(method: str, path: str, body: str) -> dict[str, str]:
    import hashlib

    from tests.support.pusher_socket import sign

    params = {
        "auth_key": "app-key",
        "auth_timestamp": str(int(time.time())),
        "auth_version": "1.0",
        "body_md5": hashlib.md5(body.encode()).hexdigest(),
    }
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["auth_signature"] = sign("app-secret", f"{method}\n{path}\n{query}")
    return params


def test_workers_without_scaling_is_a_clear_error(tmp_path: Path) -> None:
    result = run(["start", "--port", str(free_port()), "--workers", "2"], tmp_path, DEFAULT_APP)
    assert result.returncode == 2
    assert result.stderr == (
        "Invalid configuration: --workers is 2, but several workers need scaling: set "
        "REVERB_SCALING_ENABLED=true (servers.reverb.scaling.enabled) and point it at Redis\n"
    )


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"REVERB_SERVER_PORT": "eighty"},
            [],
            "REVERB_SERVER_PORT must be a whole number from 1 to 65535, got 'eighty'",
        ),
        (
            {"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "x"},
            [],
            "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM must be one of members, all, none, got 'x'",
        ),
        ({}, ["--config", "missing.toml"], "config file {cwd}/missing.toml does not exist"),
        ({}, ["--tls-cert", "nope.pem"], "--tls-cert: the file nope.pem does not exist"),
    ],
)
def test_invalid_configuration_is_one_line_and_exit_code_2(
    env: dict[str, str], args: list[str], message: str, tmp_path: Path
) -> None:
    result = run(["start", *args], tmp_path, {**DEFAULT_APP, **env})
    assert result.returncode == 2
    assert result.stderr == f"Invalid configuration: {message.format(cwd=tmp_path)}\n"
    assert "app-secret" not in result.stderr + result.stdout


async def test_config_file_and_provider_by_import_path(launcher: Launcher, tmp_path: Path) -> None:
    (tmp_path / "revurb.toml").write_text(
        '[servers.reverb]\npath = "/rt"\n\n[apps]\nprovider = "tests.integration.test_cli:ProvidedApps"\n'
    )
    server, port = start(launcher, tmp_path, ["--config", "revurb.toml"], {"PYTHONPATH": str(REPO)})
    assert "  apps from tests.integration.test_cli:ProvidedApps\n" in server.output()
    client = await connect(port, "provided-key", "provided-secret", path="/rt")
    await client.join("private-x")
    refused = await PusherSocket.connect(
        f"ws://127.0.0.1:{port}/rt/app/app-key?{QUERY}", "app-key", "app-secret", handshake=False
    )
    assert await refused.recv() == {
        "event": "pusher:error",
        "data": json.dumps({"code": 4001, "message": "Application does not exist"}, separators=(",", ":")),
    }
    await refused.close()
    await client.close()


async def test_revurb_config_names_the_config_file(launcher: Launcher, tmp_path: Path) -> None:
    (tmp_path / "revurb.json").write_text('{"servers": {"reverb": {"path": "/from-json"}}}')
    server, port = start(launcher, tmp_path, env={**DEFAULT_APP, "REVURB_CONFIG": "revurb.json"})
    assert f"  clients connect to ws://127.0.0.1:{port}/from-json/app/{{key}}\n" in server.output()
    client = await connect(port, path="/from-json")
    await client.close()


def test_version_and_help(tmp_path: Path) -> None:
    assert run(["--version"], tmp_path).stdout == f"revurb {__version__}\n"
    for command in ("start", "install", "restart"):
        shown = run([command, "--help"], tmp_path)
        assert shown.returncode == 0 and "Usage: revurb " + command in shown.stdout
    assert "--workers" in run(["start", "--help"], tmp_path).stdout


def test_restart_never_signals_a_process_that_is_not_revurb(tmp_path: Path) -> None:
    port = free_port()
    bystander = subprocess.Popen(["sleep", "30"])
    pid_file = Path(tempfile.gettempdir()) / f"revurb-{port}.pid"
    try:
        pid_file.write_text(f"{bystander.pid}\n")  # a stale pid file, its pid reused by another program
        result = run(["restart", "--port", str(port)], tmp_path, DEFAULT_APP)
        assert result.returncode == 1
        assert result.stderr == f"No running server found (no live pid in {pid_file})\n"
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
        pid_file.unlink(missing_ok=True)
