"""The floor: a minimal hand-written uvloop + httptools Pusher server, the yardstick for Revurb.

`python -m bench.floor_server --port P --app-id ID --key KEY --secret SECRET`

It does the protocol work a benchmark exercises and nothing else: a signed `POST /apps/{id}/events`
(key, timestamp, body MD5 and HMAC-SHA256 signature checked) fanned out to the subscribers of public
channels; the WebSocket upgrade on `/app/{key}` with `pusher:connection_established`;
`pusher:subscribe` acknowledged; `pusher:ping` and protocol pings answered; close frames echoed.
No configuration, no ASGI, no logging, no limits, no backpressure, no private channels: what Revurb
does beyond this is what a benchmark against the floor prices. It stands apart from `revurb/` and
imports only uvloop, httptools and orjson, so its footprint is the interpreter's plus theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import random
import signal
import struct
import time
from typing import cast
from urllib.parse import parse_qsl

import httptools
import orjson
import uvloop

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Pusher's clock-skew allowance for `auth_timestamp`, in seconds.
TIMESTAMP_WINDOW = 600
ACTIVITY_TIMEOUT = 30
OP_CONTINUATION, OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x8, 0x9, 0xA
FIN = 0x80
SHORT_LENGTH, MEDIUM_LENGTH = 126, 127
NORMAL_CLOSURE = 1000
PONG = orjson.dumps({"event": "pusher:pong", "data": "{}"})


def response(status: bytes, body: bytes) -> bytes:
    """A keep-alive HTTP/1.1 response with a JSON body."""
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
    return head + str(len(body)).encode() + b"\r\n\r\n" + body


OK = response(b"200 OK", b"{}")
BAD_REQUEST = response(b"400 Bad Request", b'{"error":"bad request"}')
UNAUTHORIZED = response(b"401 Unauthorized", b'{"error":"invalid signature"}')
NOT_FOUND = response(b"404 Not Found", b'{"error":"not found"}')


def server_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server frame."""
    length = len(payload)
    if length < SHORT_LENGTH:
        return bytes((FIN | opcode, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", FIN | opcode, SHORT_LENGTH, length) + payload
    return struct.pack("!BBQ", FIN | opcode, MEDIUM_LENGTH, length) + payload


def unmask(mask: bytes, payload: bytes) -> bytes:
    """XOR the payload with the repeated 4-byte mask, as one big-integer operation."""
    length = len(payload)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")


class App:
    """The one app, its channels and its subscribers."""

    def __init__(self, app_id: str, key: str, secret: str) -> None:
        self.events_path = f"/apps/{app_id}/events"
        self.ws_path = f"/app/{key}"
        self.key = key
        self.secret = secret.encode()
        self.channels: dict[str, set[Connection]] = {}
        self.ids = itertools.count(1)
        self.prefix = random.randint(1, 1_000_000_000)

    def signed(self, path: str, query: str, body: bytes) -> bool:
        """The Pusher request signature: key, timestamp window, body MD5, HMAC-SHA256 of the query."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        signature = params.pop("auth_signature", "")
        if params.get("auth_key") != self.key:
            return False
        try:
            skew = abs(time.time() - int(params.get("auth_timestamp", "")))
        except ValueError:
            return False
        if skew > TIMESTAMP_WINDOW:
            return False
        if body and params.get("body_md5") != hashlib.md5(body).hexdigest():
            return False
        string = "&".join(f"{name.lower()}={value}" for name, value in sorted(params.items()))
        expected = hmac.new(self.secret, f"POST\n{path}\n{string}".encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def trigger(self, body: bytes) -> bool:
        """Fan an event out to its channels' subscribers; False if the body is not a valid event."""
        try:
            event = orjson.loads(body)
            name = event["name"]
            channels = event.get("channels") or [event["channel"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return False
        data = event.get("data", "")
        if not isinstance(data, str):
            data = orjson.dumps(data).decode()
        excluded = event.get("socket_id")
        for channel in channels:
            subscribers = self.channels.get(channel)
            if not subscribers:
                continue
            frame = server_frame(OP_TEXT, orjson.dumps({"event": name, "channel": channel, "data": data}))
            for subscriber in subscribers:
                if subscriber.socket_id != excluded:
                    subscriber.write(frame)
        return True


class Connection(asyncio.Protocol):
    """One TCP connection: HTTP/1.1 requests until an upgrade, then WebSocket frames."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.url = b""
        self.ws_key = b""
        self.body: list[bytes] = []
        self.buffer = b""
        self.socket_id = ""
        self.subscriptions: set[str] = set()

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            self.frames(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.upgrade(data[upgrade.args[0] :])
        except httptools.HttpParserError:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        for channel in self.subscriptions:
            subscribers = self.app.channels.get(channel)
            if subscribers is not None:
                subscribers.discard(self)
                if not subscribers:
                    del self.app.channels[channel]
        self.subscriptions.clear()
        self.transport = None

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.ws_key, self.body = b"", b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"sec-websocket-key":
            self.ws_key = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.parser is not None
        if self.parser.should_upgrade():
            return  # feed_data raises HttpParserUpgrade next
        url = httptools.parse_url(self.url)
        path = url.path.decode()
        method = self.parser.get_method()
        if method == b"POST" and path == self.app.events_path:
            body = b"".join(self.body)
            if not self.app.signed(path, (url.query or b"").decode(), body):
                self.write(UNAUTHORIZED)
            elif not self.app.trigger(body):
                self.write(BAD_REQUEST)
            else:
                self.write(OK)
        elif method == b"GET" and path == "/up":
            self.write(OK)
        else:
            self.write(NOT_FOUND)

    # -- WebSocket
    def upgrade(self, rest: bytes) -> None:
        path = httptools.parse_url(self.url).path.decode()
        if path != self.app.ws_path or not self.ws_key:
            self.write(NOT_FOUND)
            self.close()
            return
        self.parser = None
        accept = base64.b64encode(hashlib.sha1(self.ws_key + WS_GUID).digest())
        self.socket_id = f"{self.app.prefix}.{next(self.app.ids)}"
        established = {"socket_id": self.socket_id, "activity_timeout": ACTIVITY_TIMEOUT}
        message = {"event": "pusher:connection_established", "data": orjson.dumps(established).decode()}
        self.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + server_frame(OP_TEXT, orjson.dumps(message))
        )
        if rest:
            self.frames(rest)

    def frames(self, data: bytes) -> None:
        """Handle every complete client frame in the buffer; keep the incomplete tail."""
        buffer = self.buffer + data if self.buffer else data
        at, end = 0, len(buffer)
        while end - at >= 2:
            opcode, length = buffer[at] & 0x0F, buffer[at + 1] & 0x7F
            start = at + 2
            if length == SHORT_LENGTH:
                if end - start < 2:
                    break
                (length,) = struct.unpack_from("!H", buffer, start)
                start += 2
            elif length == MEDIUM_LENGTH:
                if end - start < 8:
                    break
                (length,) = struct.unpack_from("!Q", buffer, start)
                start += 8
            if end - start < 4 + length:
                break
            payload = unmask(buffer[start : start + 4], buffer[start + 4 : start + 4 + length])
            at = start + 4 + length
            self.frame(opcode, payload)
            if self.transport is None:
                return
        self.buffer = buffer[at:]

    def frame(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_TEXT:
            self.message(payload)
        elif opcode == OP_PING:
            self.write(server_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.write(server_frame(OP_CLOSE, struct.pack("!H", NORMAL_CLOSURE)))
            self.close()

    def message(self, payload: bytes) -> None:
        try:
            message = orjson.loads(payload)
            event = message["event"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if event == "pusher:subscribe":
            channel = message["data"]["channel"]
            self.app.channels.setdefault(channel, set()).add(self)
            self.subscriptions.add(channel)
            ack = {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}
            self.write(server_frame(OP_TEXT, orjson.dumps(ack)))
        elif event == "pusher:unsubscribe":
            channel = message["data"]["channel"]
            self.subscriptions.discard(channel)
            self.app.channels.get(channel, set()).discard(self)
        elif event == "pusher:ping":
            self.write(server_frame(OP_TEXT, PONG))

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve(host: str, port: int, app: App) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(app), host, port, backlog=4096)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, App(args.app_id, args.key, args.secret)))


if __name__ == "__main__":
    main()
