"""The HTTP API's optional per-app event rate (`max_backend_events_per_sec`, as Soketi's): 429 with
`Retry-After` over it, each channel of an event counting once, nothing delivered of a refused event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.http import api
from tests.support.pusher_socket import PusherSocket, unique
from tests.support.servers import RunningServer, start_revurb

LIMIT = 5


@pytest.fixture(scope="module")
def limited() -> Iterator[RunningServer]:
    running = start_revurb({"REVERB_APP_MAX_BACKEND_EVENTS_PER_SEC": str(LIMIT)})
    yield running
    running.stop()


async def next_second() -> None:
    """Start at the beginning of a second (of the server's clock: the same machine's)."""
    await asyncio.sleep(1 - time.time() % 1 + 0.01)


def event(channels: list[str], data: str = "{}") -> dict[str, Any]:
    return {"name": "e", "channels": channels, "data": data}


async def test_over_the_limit_a_trigger_gets_429_with_retry_after(limited: RunningServer) -> None:
    channel = unique("rate-")
    subscriber = await PusherSocket.connect(limited.ws_url(), limited.key, limited.secret)
    await subscriber.join(channel)

    await next_second()
    answers = [
        await api(limited, "POST", "/events", event([channel], str(index))) for index in range(LIMIT + 1)
    ]

    assert [answer.status_code for answer in answers] == [200] * LIMIT + [429]
    refused = answers[-1]
    assert refused.json() == {"error": "Too many requests"}
    assert (refused.headers["retry-after"], refused.headers["x-ratelimit-limit"]) == ("1", str(LIMIT))
    assert refused.headers["x-ratelimit-remaining"] == "0"
    received = [(await subscriber.recv_event("e"))["data"] for _ in range(LIMIT)]
    assert received == [str(index) for index in range(LIMIT)]
    await subscriber.assert_silent()
    await subscriber.close()

    await next_second()
    assert (await api(limited, "POST", "/events", event([channel]))).status_code == 200


async def test_each_channel_of_an_event_and_of_a_batch_counts(limited: RunningServer) -> None:
    await next_second()
    three, batch = await asyncio.gather(
        api(limited, "POST", "/events", event(["a", "b", "c"])),
        api(limited, "POST", "/batch_events", {"batch": [{**event([]), "channel": "d"}] * 2}),
    )
    over = await api(limited, "POST", "/events", event(["e"]))

    assert [three.status_code, batch.status_code, over.status_code] == [200, 200, 429]


async def test_apps_without_a_limit_are_not_limited(server: RunningServer) -> None:
    await next_second()
    answers = await asyncio.gather(
        *(api(server, "POST", "/events", event(["free"])) for _ in range(3 * LIMIT))
    )

    assert {answer.status_code for answer in answers} == {200}


async def test_reads_are_not_counted(limited: RunningServer) -> None:
    await next_second()
    reads = await asyncio.gather(*(api(limited, "GET", "/channels") for _ in range(LIMIT + 2)))

    assert {read.status_code for read in reads} == {200}
