"""The WebSocket opening handshake (RFC 6455 section 4): read the upgrade request, answer it."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_REASONS = {
    400: b"Bad Request",
    403: b"Forbidden",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


@dataclass(slots=True)
class UpgradeRequest:
    """What the server needs of an upgrade request to build the ASGI scope and answer it."""

    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    key: bytes
    subprotocols: list[str]


def parse_upgrade(data: bytes) -> UpgradeRequest | None:
    """Parse the request uvicorn hands over after an `Upgrade: websocket`; None if it is unusable."""
    head = data.partition(b"\r\n\r\n")[0]
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) != 3:
        return None
    headers: list[tuple[bytes, bytes]] = []
    key = b""
    subprotocols: list[str] = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"sec-websocket-key":
            key = value
        elif name == b"sec-websocket-protocol":
            subprotocols += [item.strip() for item in value.decode("latin-1").split(",") if item.strip()]
        elif name == b"sec-websocket-extensions":
            continue  # never negotiated: no compression context per socket
        headers.append((name, value))
    if not key:
        return None
    raw_path, _, query = parts[1].partition(b"?")
    return UpgradeRequest(raw_path, query, headers, key, subprotocols)


def accept_response(
    key: bytes, subprotocol: str | None, headers: Iterable[tuple[bytes, bytes]] = ()
) -> bytes:
    """The `101 Switching Protocols` answer, with the app's subprotocol and extra headers."""
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + accept,
    ]
    if subprotocol:
        lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode())
    lines += [bytes(name) + b": " + bytes(value) for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def reject_response(status: int) -> bytes:
    """A plain HTTP refusal of the upgrade (the app closed before accepting, or failed)."""
    return b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % (status, _REASONS[status])
