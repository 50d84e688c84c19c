"""The dashboard in a real browser: log in, live connection counts from pusher-js clients, the debug
console, a test event received by pusher-js, and a second node's figures with scaling on.

`REVURB_DASHBOARD_SCREENSHOT=docs/dashboard.png` makes the overview test save its screenshot there
(the README shows it); normal runs write nothing.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.clients.node import NodeDriver
from tests.support.dashboard import ENABLED, SECRET, base_url
from tests.support.fixture_types import StartServer
from tests.support.http import trigger
from tests.support.pusher_socket import unique
from tests.support.servers import RedisServer, RunningServer

if TYPE_CHECKING:
    from playwright.async_api import Page

#: How long a change may take to show: the page hears every second, so a few seconds on a busy machine.
SHOWN_MS = 5000
SCREENSHOT = os.environ.get("REVURB_DASHBOARD_SCREENSHOT")


@pytest.fixture
def enabled(start_server: StartServer) -> RunningServer:
    return start_server(ENABLED)


async def log_in(page: Page, server: RunningServer, secret: str = SECRET, key: str = "") -> None:
    await page.goto(f"{base_url(server)}/")
    assert page.url == f"{base_url(server)}/login"
    if key:
        await page.fill("#login-key", key)
    await page.fill("#login-secret", secret)
    await page.click("#login-submit")


async def logged_in(page: Page, server: RunningServer) -> None:
    await log_in(page, server)
    await page.wait_for_selector("body[data-ready=true]", timeout=SHOWN_MS)


async def shows(page: Page, selector: str, text: str) -> None:
    """Wait until the element's text is exactly `text`."""
    await page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent === text",
        arg=[selector, text],
        timeout=SHOWN_MS,
    )


async def test_log_in_fails_with_a_wrong_secret_then_works(
    page: Page, enabled: RunningServer, page_errors: list[str]
) -> None:
    await log_in(page, enabled, "not-the-secret")
    error = page.locator("#login-error")
    await error.wait_for(state="visible", timeout=SHOWN_MS)
    assert await error.text_content() == "Wrong key or secret"
    assert page.url == f"{base_url(enabled)}/login"
    assert await page.context.cookies() == []
    # The browser logs the refused request itself; nothing else may be logged.
    assert page_errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    page_errors.clear()
    await page.fill("#login-secret", SECRET)
    await page.click("#login-submit")
    await page.wait_for_selector("body[data-ready=true]", timeout=SHOWN_MS)
    assert page.url == f"{base_url(enabled)}/"
    assert await page.text_content("#scope") == "every app"
    [cookie] = await page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("revurb_dashboard", True, "Strict")


@pytest.mark.timeout(150 if SCREENSHOT else 60)  # a minute of traffic before the screenshot
async def test_the_connection_count_follows_pusher_js_clients(
    page: Page, enabled: RunningServer, node_driver: NodeDriver
) -> None:
    await logged_in(page, enabled)
    await shows(page, "#total-connections", "0")
    for name in ("a", "b", "c"):
        await node_driver.connect(enabled, name)
    await shows(page, "#total-connections", "3")
    assert await page.text_content('#node-rows tr td[data-field="connections"]') == "3"
    for name in ("b", "c"):
        await node_driver.ok({"cmd": "disconnect", "client": name})
    await shows(page, "#total-connections", "1")
    if SCREENSHOT:
        await busy_overview(page, enabled, node_driver)
        await page.screenshot(path=str(Path(SCREENSHOT)), full_page=True)


async def busy_overview(page: Page, server: RunningServer, node_driver: NodeDriver) -> None:
    """Clients and a minute of uneven traffic, for the README's screenshot."""
    for name, channel in (("d", "orders"), ("e", "orders"), ("f", "orders"), ("g", "chat"), ("h", "chat")):
        await node_driver.connect(server, name)
        await node_driver.subscribe(name, channel)
    for second in range(60):
        for n in range(4 + (second * 7) % 11):
            channel = "orders" if n % 3 else "chat"
            await trigger(server, channel, "order.created", f'{{"id":{second * 100 + n}}}')
        await asyncio.sleep(1)


async def test_the_console_shows_a_triggered_event_within_a_second(
    page: Page, enabled: RunningServer
) -> None:
    await logged_in(page, enabled)
    await page.click('button[data-tab="console"]')
    await page.click("#console-start")
    await page.wait_for_selector("#console-status[data-live=true]", timeout=SHOWN_MS)
    channel = unique("console-")
    payload = '{"order":42,"items":["tea","cake"],"note":"exact <b>text</b>"}'
    await trigger(enabled, channel, "order.created", payload)
    row = page.locator('tr.console-row[data-kind="api_event"]')
    await row.wait_for(timeout=1000)  # within a second of the trigger's answer
    assert await row.locator('td[data-field="channel"]').text_content() == channel
    assert await row.locator('td[data-field="event"]').text_content() == "order.created"
    assert await row.locator('code[data-field="data"]').text_content() == payload
    assert await row.locator("b").count() == 0  # shown as text, never as markup
    await page.click("#console-pause")
    await trigger(enabled, channel, "while-paused", "{}")
    await shows(page, "#console-status", "Watching app 1001 · paused, 1 waiting")
    assert await page.locator("tr.console-row").count() == 1
    await page.click("#console-pause")
    assert await page.locator("tr.console-row").count() == 2
    await page.click("#console-clear")
    assert await page.locator("tr.console-row").count() == 0


async def test_a_test_event_sent_from_the_page_reaches_pusher_js(
    page: Page, enabled: RunningServer, node_driver: NodeDriver
) -> None:
    channel = unique("from-page-")
    await node_driver.connect(enabled, "listener")
    assert (await node_driver.subscribe("listener", channel))["subscribed"] is True
    await logged_in(page, enabled)
    await page.click('button[data-tab="send"]')
    await page.fill("#send-channel", channel)
    await page.fill("#send-event", "greeting")
    await page.fill("#send-data", '{"hello":"from the dashboard","n":7}')
    await page.click("#send-submit")
    await shows(page, "#send-result", "200 {}")
    event = await node_driver.expect({"type": "event", "client": "listener", "event": "greeting"})
    assert (event["channel"], event["data"]) == (channel, {"hello": "from the dashboard", "n": 7})


async def test_a_second_nodes_figures_show_on_the_first_nodes_page(
    page: Page, start_server: StartServer, redis_server: RedisServer, node_driver: NodeDriver
) -> None:
    scaling = {
        **ENABLED,
        "REVERB_SCALING_ENABLED": "true",
        "REDIS_URL": redis_server.url,
        "REVERB_SCALING_CHANNEL": f"revurb-dashboard-{uuid.uuid4().hex[:8]}",
    }
    first, second = start_server(scaling), start_server(scaling)
    await logged_in(page, first)
    for name in ("x", "y"):
        await node_driver.connect(second, name)
    await page.wait_for_function(
        "port => [...document.querySelectorAll('#node-rows tr')].some(row => "
        "row.querySelector('.node-name').textContent.includes(`:${port} pid`) && "
        "row.querySelector('td[data-field=connections]').textContent === '2')",
        arg=second.port,
        timeout=SHOWN_MS + 5000,
    )
    names = await page.locator("#node-rows .node-name").all_text_contents()
    assert len(names) == 2
    assert names[0].endswith(f":{first.port} pid {first.process.pid} (this node)")
    assert names[1].endswith(f":{second.port} pid {second.process.pid}")
    assert await page.text_content("#total-connections") == "2"
    assert await page.text_content("#cluster-state") == "2 nodes"
