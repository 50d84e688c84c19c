"""The dashboard over HTTP against a real `revurb start`: off by default, behind a login, scoped per app,
its headers and cookie, the console's entries and the test event."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api_client import call
from tests.support.dashboard import ENABLED, OTHER_APP, SECRET, base_url, dashboard, two_apps_config
from tests.support.fixture_types import Connect, StartServer
from tests.support.http import trigger
from tests.support.pusher_socket import unique
from tests.support.servers import RunningServer
from tests.support.tls import self_signed

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
GUARDED = [
    ("GET", "/api/overview"),
    ("GET", "/api/channels?app=1001"),
    ("GET", "/api/members?app=1001&channel=presence-x"),
    ("GET", "/api/stream"),
    ("POST", "/api/events"),
]


@pytest.fixture
def enabled(start_server: StartServer, tmp_path: Path) -> RunningServer:
    """A server with the dashboard on and two apps, 1001 and 2002."""
    return start_server(ENABLED, ["--config", str(two_apps_config(tmp_path))])


@pytest.mark.parametrize(
    "path", ["", "/", "/login", "/api/overview", "/api/stream", "/static/dashboard.js", "/static/login.js"]
)
async def test_the_dashboard_is_not_there_unless_enabled(server: RunningServer, path: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{base_url(server)}{path}")
    assert (response.status_code, response.json()) == (404, {"error": "Not Found"})


def test_enabling_it_without_a_secret_stops_startup(start_server: StartServer) -> None:
    server = start_server({"REVURB_DASHBOARD": "true"}, wait=False)
    assert server.process.wait(15) != 0
    assert (
        "REVURB_DASHBOARD is true, which needs a secret to log in with: set REVURB_DASHBOARD_SECRET "
        "(servers.reverb.dashboard.secret)"
    ) in server.output()


async def test_without_a_session_pages_go_to_the_login_and_the_api_answers_401(
    enabled: RunningServer,
) -> None:
    async with dashboard(enabled) as page:
        for path in ("", "/"):
            response = await page.get(path)
            assert response.status_code == 303
        assert (await page.get("")).headers["location"] == "/dashboard/"
        assert (await page.get("/")).headers["location"] == "/dashboard/login"
        for method, path in GUARDED:
            response = await page.client.request(method, f"{page.base}{path}", json={})
            assert (response.status_code, response.json()) == (401, {"error": "Log in first"}), path
        forged = page.client.cookies
        forged.set("revurb_dashboard", "2a.9999999999.00", domain=enabled.host)
        assert (await page.get("/api/overview")).status_code == 401
        login = await page.get("/login")
        assert login.status_code == 200
        assert login.headers["content-type"] == "text/html; charset=utf-8"
        assert b'<form id="login-form">' in login.content


async def test_a_wrong_secret_is_refused_and_sets_no_cookie(enabled: RunningServer) -> None:
    async with dashboard(enabled) as page:
        for secret, key in (
            ("nope", None),
            ("app-secret", None),
            (SECRET, "app-key"),
            ("app-secret", "no-key"),
        ):
            response = await page.login(secret, key)
            assert (response.status_code, response.json()) == (401, {"error": "Wrong key or secret"})
            assert "set-cookie" not in response.headers
        assert (await page.get("/api/overview")).status_code == 401


async def test_the_session_cookie_flags_and_the_content_security_policy(enabled: RunningServer) -> None:
    async with dashboard(enabled) as page:
        response = await page.login()
        assert (response.status_code, response.json()) == (200, {"scope": "*"})
        cookie = response.headers["set-cookie"]
        name, _, flags = cookie.partition(";")
        assert name.startswith("revurb_dashboard=")
        assert sorted(flag.strip().lower() for flag in flags.split(";")) == [
            "httponly",
            "max-age=28800",
            "path=/dashboard",
            "samesite=strict",
        ]
        for path in ("/", "/login", "/static/dashboard.js", "/static/dashboard.css", "/api/overview"):
            answer = await page.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-security-policy"] == CSP, path
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
        index = (await page.get("/")).text
        assert '<script type="module" src="static/dashboard.js"></script>' in index
        assert "style=" not in index and "onclick" not in index


async def test_the_cookie_is_secure_behind_tls(start_server: StartServer, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "127.0.0.1")
    server = start_server({**ENABLED, "REVERB_TLS_CERT": str(cert), "REVERB_TLS_KEY": str(key)}, wait=False)
    async with httpx.AsyncClient(timeout=5, verify=ssl.create_default_context(cafile=str(cert))) as client:
        async with asyncio.timeout(15):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"https://127.0.0.1:{server.port}/up")).status_code == 200:
                        break
                assert server.alive(), server.output()
                await asyncio.sleep(0.1)
        response = await client.post(
            f"https://127.0.0.1:{server.port}/dashboard/login", json={"secret": SECRET}
        )
    assert response.status_code == 200
    flags = [flag.strip().lower() for flag in response.headers["set-cookie"].split(";")[1:]]
    assert "secure" in flags and "httponly" in flags and "samesite=strict" in flags


async def test_failed_logins_are_rate_limited(enabled: RunningServer) -> None:
    async with dashboard(enabled) as page:
        for _ in range(5):
            assert (await page.login("wrong")).status_code == 401
        limited = await page.login(SECRET)
        assert (limited.status_code, limited.json()) == (
            429,
            {"error": "Too many failed logins: try again later"},
        )
        assert 0 < int(limited.headers["retry-after"]) <= 60
        assert "set-cookie" not in limited.headers


async def test_changes_must_be_same_origin_json(enabled: RunningServer) -> None:
    async with dashboard(enabled) as page:
        await page.login()
        form = await page.client.post(f"{page.base}/api/events", data={"app": "1001"})
        assert (form.status_code, form.json()) == (
            415,
            {"error": "Send JSON (Content-Type: application/json)"},
        )
        foreign = await page.client.post(
            f"{page.base}/api/events", json={"app": "1001"}, headers={"origin": "http://evil.example"}
        )
        assert (foreign.status_code, foreign.json()) == (403, {"error": "Cross-origin requests are refused"})
        logout = await page.post("/logout", {})
        assert logout.status_code == 200
        assert "revurb_dashboard=" in logout.headers["set-cookie"]
        assert (await page.get("/api/overview")).status_code == 401


async def test_an_app_login_never_sees_another_apps_data(enabled: RunningServer, connect: Connect) -> None:
    mine, theirs = unique("mine-"), unique("theirs-")
    socket = await connect(enabled)
    await socket.join(mine)
    other = await connect(enabled, key=OTHER_APP["key"])
    await other.join(theirs)
    async with dashboard(enabled) as page:
        response = await page.login("app-secret", "app-key")
        assert (response.status_code, response.json()) == (200, {"scope": "1001"})
        async with page.stream(console="1001") as stream:
            await stream.next("console")
            await trigger(enabled, mine, "mine-event", '{"n":1}')
            other_trigger = await call(
                enabled,
                "POST",
                "/events",
                {"name": "theirs-event", "channels": [theirs], "data": '{"n":2}'},
                app_id=OTHER_APP["app_id"],
                key=OTHER_APP["key"],
                secret=OTHER_APP["secret"],
            )
            assert other_trigger.status_code == 200
            await other.recv_event("theirs-event")
            await trigger(enabled, mine, "after", "{}")
            entries = await stream.entries(2)
            assert [(e["kind"], e["channel"], e["event"]) for e in entries] == [
                ("api_event", mine, "mine-event"),
                ("api_event", mine, "after"),
            ]
            tick = await stream.next("tick", lambda tick: "1001" in tick["nodes"][0]["samples"][0]["apps"])
        overview = (await page.get("/api/overview")).json()
        assert overview["scope"] == "1001"
        assert overview["apps"] == [{"id": "1001", "key": "app-key"}]
        for sample in [*overview["nodes"][0]["samples"], *tick["nodes"][0]["samples"]]:
            assert set(sample["apps"]) <= {"1001"}
            # Node-wide request and bus counts sum every app's traffic: an app's login sees none.
            assert sample["node"][:4] == [0, 0, 0, 0]
        text = json.dumps(overview)
        assert "2002" not in text and "other-key" not in text and theirs not in text
        channels = (await page.get("/api/channels", app="1001")).json()
        assert channels == {
            "app": "1001",
            "channels": [{"name": mine, "subscriptions": 1, "presence": False}],
            "total": 1,
        }
        for path, params in (
            ("/api/channels", {"app": "2002"}),
            ("/api/members", {"app": "2002", "channel": "presence-x"}),
            ("/api/stream", {"console": "2002"}),
        ):
            refused = await page.get(path, **params)
            assert (refused.status_code, refused.json()) == (403, {"error": "This login sees one app only"})
        send = await page.post("/api/events", {"app": "2002", "channel": theirs, "event": "e", "data": "{}"})
        assert (send.status_code, send.json()) == (403, {"error": "This login sees one app only"})
        await other.assert_silent()
    async with dashboard(enabled) as everyone:
        await everyone.login()
        both = (await everyone.get("/api/overview")).json()
        assert both["apps"] == [{"id": "1001", "key": "app-key"}, {"id": "2002", "key": "other-key"}]
        theirs_listed = (await everyone.get("/api/channels", app="2002")).json()["channels"]
        assert theirs_listed == [{"name": theirs, "subscriptions": 1, "presence": False}]


async def test_the_console_streams_what_sockets_and_the_api_do(
    enabled: RunningServer, connect: Connect
) -> None:
    channel = unique("private-console-")
    async with dashboard(enabled) as page:
        await page.login()
        async with page.stream(console="1001", ticks="0") as stream:
            await stream.next("console")
            socket = await connect(enabled)
            await socket.join(channel)
            await socket.send({"event": "client-typing", "channel": channel, "data": {"who": "me"}})
            await socket.send({"event": "pusher:ping", "data": {}})
            await socket.recv_event("pusher:pong")  # the client event was handled before the trigger
            await trigger(enabled, channel, "api-event", '{"text":"hello"}', socket_id=socket.socket_id)
            await socket.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})
            await socket.close()
            entries = await stream.entries(6)
    sid = socket.socket_id
    shape = [{k: v for k, v in entry.items() if k not in ("time", "node")} for entry in entries]
    assert shape == [
        {"kind": "opened", "socket_id": sid},
        {"kind": "subscribed", "socket_id": sid, "channel": channel},
        {
            "kind": "client_event",
            "socket_id": sid,
            "channel": channel,
            "event": "client-typing",
            "size": len('{"who":"me"}'),
            "data": '{"who":"me"}',
            "truncated": False,
        },
        {
            "kind": "api_event",
            "socket_id": sid,
            "channel": channel,
            "event": "api-event",
            "size": len('{"text":"hello"}'),
            "data": '{"text":"hello"}',
            "truncated": False,
        },
        {"kind": "unsubscribed", "socket_id": sid, "channel": channel},
        {"kind": "closed", "socket_id": sid, "code": None},
    ]


async def test_a_channel_filter_and_a_truncated_payload(enabled: RunningServer, connect: Connect) -> None:
    wanted, other = unique("orders-"), unique("chat-")
    big = json.dumps({"blob": "x" * 3000})
    async with dashboard(enabled) as page:
        await page.login()
        async with page.stream(console="1001", channel="orders-", ticks="0") as stream:
            await stream.next("console")
            socket = await connect(enabled)
            await socket.join(other)
            await trigger(enabled, other, "ignored", "{}")
            await trigger(enabled, wanted, "big", big)
            [entry] = await stream.entries(1)
    assert entry["channel"] == wanted
    assert (entry["size"], entry["truncated"], entry["data"]) == (len(big), True, big[:1024])


async def test_a_test_event_from_the_page_reaches_a_subscriber(
    enabled: RunningServer, connect: Connect
) -> None:
    channel = unique("test-event-")
    socket = await connect(enabled)
    await socket.join(channel)
    async with dashboard(enabled) as page:
        await page.login()
        sent = await page.post(
            "/api/events", {"app": "1001", "channel": channel, "event": "from-page", "data": '{"a":[1,2]}'}
        )
        assert (sent.status_code, sent.json()) == (200, {})
        frame = await socket.recv_event("from-page")
        assert frame == {"event": "from-page", "channel": channel, "data": '{"a":[1,2]}'}
        refused = await page.post(
            "/api/events", {"app": "1001", "channel": "bad name!", "event": "e", "data": "x"}
        )
        assert refused.status_code == 400
        assert refused.json()["error"].startswith("Invalid channel name")


def connections_of(tick: dict[str, Any], app_id: str = "1001") -> int | None:
    """The app's connection count in a tick's sample of the first node (None: not in it)."""
    figures = tick["nodes"][0]["samples"][0]["apps"].get(app_id)
    return None if figures is None else int(figures[0])


async def test_the_overview_counts_connections(enabled: RunningServer, connect: Connect) -> None:
    async with dashboard(enabled) as page:
        await page.login()
        async with page.stream() as stream:
            sockets = [await connect(enabled) for _ in range(3)]
            await stream.next("tick", lambda tick: connections_of(tick) == 3)
            for socket in sockets[1:]:
                await socket.close()
            await stream.next("tick", lambda tick: connections_of(tick) == 1)
        overview = (await page.get("/api/overview")).json()
    node = overview["nodes"][0]
    assert overview["fields"]["app"][0] == "connections"
    assert overview["cluster"] == {"enabled": False, "connected": False}
    assert node["own"] is True and node["bus"] == {"driver": "memory", "connected": True}
    assert node["name"].endswith(f":{enabled.port} pid {enabled.process.pid}")
    assert node["samples"][-1]["apps"]["1001"][0] == 1


async def test_channels_by_prefix_and_a_presence_channels_members(
    enabled: RunningServer, connect: Connect
) -> None:
    room, news = unique("presence-room-"), unique("news-")
    alice, bob = await connect(enabled), await connect(enabled)
    await alice.join(room, '{"user_id":"alice","user_info":{"name":"Alice"}}')
    await bob.join(room, '{"user_id":"bob","user_info":{"name":"Bob"}}')
    await bob.join(news)
    async with dashboard(enabled) as page:
        await page.login()
        listed = (await page.get("/api/channels", app="1001", prefix="presence-room-")).json()
        assert listed == {
            "app": "1001",
            "channels": [{"name": room, "subscriptions": 2, "presence": True}],
            "total": 1,
        }
        members = (await page.get("/api/members", app="1001", channel=room)).json()
        assert members == {
            "app": "1001",
            "channel": room,
            "members": [{"id": "alice", "info": {"name": "Alice"}}, {"id": "bob", "info": {"name": "Bob"}}],
            "total": 2,
        }
        refused = await page.get("/api/members", app="1001", channel=news)
        assert (refused.status_code, refused.json()) == (
            400,
            {"error": "Members are kept for presence channels only"},
        )
        unknown = await page.get("/api/channels", app="9999")
        assert (unknown.status_code, unknown.json()) == (404, {"error": "Application does not exist"})
        unnamed = await page.get("/api/channels")
        assert (unnamed.status_code, unnamed.json()) == (400, {"error": "Name an app: ?app=<app id>"})
