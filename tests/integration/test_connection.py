"""Connecting: the handshake and the refusals that close the socket."""

import json
import re

from tests.support.pusher_socket import PusherSocket
from tests.support.servers import RunningServer


async def test_connection_established_carries_socket_id_and_activity_timeout(server: RunningServer) -> None:
    client = await PusherSocket.connect(server.ws_url(), server.key, server.secret, handshake=False)
    frame = await client.recv()
    assert frame["event"] == "pusher:connection_established"
    data = json.loads(frame["data"])
    assert set(data) == {"socket_id", "activity_timeout"}
    assert re.fullmatch(r"[1-9]\d*\.[1-9]\d*", data["socket_id"])
    assert data["activity_timeout"] == 30
    await client.close()


async def test_unknown_app_key_gets_4001_and_is_closed(server: RunningServer) -> None:
    client = await PusherSocket.connect(server.ws_url("nope"), server.key, server.secret, handshake=False)
    assert await client.recv() == {
        "event": "pusher:error",
        "data": json.dumps({"code": 4001, "message": "Application does not exist"}, separators=(",", ":")),
    }
    assert await client.closed_with() == (4001, "Application does not exist")
