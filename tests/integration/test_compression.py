"""permessage-deflate: refused by default (a lean socket), accepted with REVERB_PER_MESSAGE_DEFLATE."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fixture_types import Connect
from tests.support.http import trigger
from tests.support.pusher_socket import PusherSocket
from tests.support.servers import RunningServer, start_revurb

OFFER = "deflate"  # websockets offers permessage-deflate
EVENT = {"event": "news", "channel": "compressed", "data": '{"text":"' + "hello " * 200 + '"}'}


@pytest.fixture(scope="module")
def deflating() -> Iterator[RunningServer]:
    running = start_revurb({"REVERB_PER_MESSAGE_DEFLATE": "true"})
    yield running
    running.stop()


def negotiated(client: PusherSocket) -> str | None:
    response = client.ws.response
    assert response is not None
    return response.headers.get("Sec-WebSocket-Extensions")


async def subscribe_and_receive(client: PusherSocket, server: RunningServer) -> dict[str, Any]:
    await client.send({"event": "pusher:subscribe", "data": {"channel": "compressed"}})
    assert (await client.recv())["event"] == "pusher_internal:subscription_succeeded"
    await trigger(server, "compressed", EVENT["event"], EVENT["data"])
    return await client.recv()


async def test_by_default_an_offer_is_declined_and_frames_go_uncompressed(
    connect: Connect, server: RunningServer
) -> None:
    client = await connect(compression=OFFER)

    assert negotiated(client) is None
    assert await subscribe_and_receive(client, server) == EVENT


async def test_when_enabled_an_offer_is_accepted_and_events_arrive_compressed(
    connect: Connect, deflating: RunningServer
) -> None:
    client = await connect(deflating, compression=OFFER)

    extension = negotiated(client)
    assert extension is not None
    assert extension.startswith("permessage-deflate")
    assert await subscribe_and_receive(client, deflating) == EVENT


async def test_when_enabled_a_client_without_an_offer_still_gets_plain_frames(
    connect: Connect, deflating: RunningServer
) -> None:
    client = await connect(deflating)

    assert negotiated(client) is None
    assert await subscribe_and_receive(client, deflating) == EVENT
