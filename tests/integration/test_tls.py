"""TLS: `revurb start` serving wss:// with a self-signed certificate made in the test."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients.node import NodeDriver
from tests.support.processes import REVURB, Launcher, Process, launched, run
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import DEFAULT_APP, DEFAULT_QUERY, free_port
from tests.support.tls import self_signed

PASSPHRASE = "correct horse"


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    yield from launched()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, with a passphrase-protected key."""
    return self_signed(tmp_path, "revurb test", ("localhost",), PASSPHRASE)


def trusting(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    return context


@pytest.fixture
def tls_server(
    launcher: Launcher, certificate: tuple[Path, Path], tmp_path: Path
) -> tuple[Process, int, Path]:
    cert, key = certificate
    port = free_port()
    command = [*REVURB, "start", "--host", "127.0.0.1", "--port", str(port), "--tls-cert", str(cert)]
    command += ["--tls-key", str(key)]
    server = launcher.start(
        command,
        tmp_path,
        {**DEFAULT_APP, "REVERB_TLS_PASSPHRASE": PASSPHRASE},
        ready_url=f"https://127.0.0.1:{port}/up",
        context=trusting(cert),
    )
    return server, port, cert


@pytest.fixture
async def wss_client(tls_server: tuple[Process, int, Path]) -> AsyncIterator[PusherSocket]:
    _, port, cert = tls_server
    client = await PusherSocket.connect(
        f"wss://127.0.0.1:{port}/app/app-key?{DEFAULT_QUERY}", "app-key", "app-secret", ssl=trusting(cert)
    )
    yield client
    await client.close()


async def test_banner_names_the_wss_url(tls_server: tuple[Process, int, Path]) -> None:
    server, port, _ = tls_server
    assert f"  clients connect to wss://127.0.0.1:{port}/app/{{key}}\n" in server.output()
    assert PASSPHRASE not in server.output()


async def test_a_wss_client_verifying_the_certificate_subscribes(wss_client: PusherSocket) -> None:
    reply = await wss_client.join("private-tls")
    assert reply == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": "private-tls",
        "data": "{}",
    }


async def test_plain_ws_is_not_served_on_a_tls_port(tls_server: tuple[Process, int, Path]) -> None:
    _, port, _ = tls_server
    with pytest.raises(Exception):  # noqa: B017 - the handshake fails one way or another
        await PusherSocket.connect(
            f"ws://127.0.0.1:{port}/app/app-key?{DEFAULT_QUERY}", "app-key", "app-secret"
        )


@dataclass
class Endpoint:
    """What the Node driver needs to reach a server."""

    port: int
    host: str = "127.0.0.1"
    path: str = ""
    app_id: str = "1001"
    key: str = "app-key"
    secret: str = "app-secret"


async def test_pusher_js_connects_over_wss(
    node_driver: NodeDriver, tls_server: tuple[Process, int, Path]
) -> None:
    _, port, _ = tls_server
    target = Endpoint(port)
    socket_id = await node_driver.connect(target, "js", tls=True)
    assert socket_id
    outcome = await node_driver.subscribe("js", "private-tls-js")
    assert outcome["subscribed"] is True, outcome
    reply = await node_driver.call(
        {
            "cmd": "rest",
            "appId": target.app_id,
            "key": target.key,
            "secret": target.secret,
            "host": target.host,
            "port": port,
            "path": "",
            "tls": True,
            "call": "trigger",
            "args": ["private-tls-js", "over-tls", {"n": 1}],
        },
        timeout=6.0,
    )
    assert (reply["ok"], reply["status"], reply["body"]) == (True, 200, {}), reply
    event = await node_driver.expect(
        {"type": "event", "client": "js", "channel": "private-tls-js", "event": "over-tls"}
    )
    assert event["data"] == {"n": 1}


@pytest.mark.parametrize(
    ("passphrase", "message"),
    [
        (
            "not-the-passphrase",
            "Invalid configuration: servers.reverb.options.tls: cannot load the certificate",
        ),
        (None, "Invalid configuration: servers.reverb.options.tls: cannot load the certificate"),
    ],
)
def test_a_wrong_passphrase_is_one_clear_message(
    certificate: tuple[Path, Path], tmp_path: Path, passphrase: str | None, message: str
) -> None:
    cert, key = certificate
    env = {**DEFAULT_APP, "REVERB_TLS_CERT": str(cert), "REVERB_TLS_KEY": str(key)}
    if passphrase is not None:
        env["REVERB_TLS_PASSPHRASE"] = passphrase
    result = run(["start", "--port", str(free_port())], tmp_path, env, timeout=20)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.endswith(
        "and that the passphrase (REVERB_TLS_PASSPHRASE, --tls-passphrase) is right\n"
    )
    assert "not-the-passphrase" not in result.stderr and PASSPHRASE not in result.stderr
