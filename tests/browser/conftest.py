"""A real headless Chromium (Debian's `chromium`) driven by Playwright, for the dashboard's page.

Playwright starts the browser it is given (`executable_path`), never one of its own downloads, and
gives each launch a fresh profile directory. Without Chromium or Playwright the tests are skipped,
except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from tests.support.servers import in_ci

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

#: Debian's Chromium; another binary can be named with REVURB_CHROMIUM.
CHROMIUM = os.environ.get("REVURB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Flags for a machine without network, display or GPU; Playwright adds --headless and the profile.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"browser tests cannot run: {reason}")
    pytest.skip(f"browser tests need {reason}")


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("Playwright (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def page_errors() -> Iterator[list[str]]:
    """Errors the page logged (a CSP violation among them); the test fails if there are any."""
    errors: list[str] = []
    yield errors
    assert errors == [], f"the page logged errors: {errors}"


@pytest_asyncio.fixture
async def page(browser: Browser, page_errors: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    opened = await context.new_page()
    opened.on("pageerror", lambda error: page_errors.append(f"pageerror: {error}"))
    opened.on(
        "console", lambda message: page_errors.append(message.text) if message.type == "error" else None
    )
    try:
        yield opened
    finally:
        await context.close()
