"""pytest fixtures for the real-client harness; import them into a conftest.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.clients.node import NodeDriver, NodeUnavailable


async def started(driver: NodeDriver) -> AsyncIterator[NodeDriver]:
    """Body of a driver fixture: start it (skip without Node, fail under CI), close it afterwards."""
    try:
        await driver.start()
    except NodeUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real-client tests cannot run: {exc}")
        pytest.skip(f"real-client tests need Node: {exc}")
    try:
        yield driver
    finally:
        await driver.close()


@pytest_asyncio.fixture
async def node_driver() -> AsyncIterator[NodeDriver]:
    """A started driver.mjs; skips without Node or node_modules, except under CI where it fails."""
    async for driver in started(NodeDriver()):
        yield driver
