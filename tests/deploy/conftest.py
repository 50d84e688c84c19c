"""Fixtures of the deploy tier: a Node driver that stamps when each report arrived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.clients.fixtures import started
from tests.clients.node import Message, NodeDriver

#: Key added to each report: the event loop's time when it reached pytest.
ARRIVED = "_arrived"


class TimedDriver(NodeDriver):
    """The real-client driver; every report carries its arrival time under `ARRIVED`."""

    def _dispatch(self, message: Message) -> None:
        message[ARRIVED] = asyncio.get_running_loop().time()
        super()._dispatch(message)


@pytest_asyncio.fixture
async def timed_driver() -> AsyncIterator[TimedDriver]:
    async for driver in started(TimedDriver()):
        assert isinstance(driver, TimedDriver)
        yield driver
