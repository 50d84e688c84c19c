"""The WebSocket opening handshake (RFC 6455 section 4): read the upgrade request, answer it."""

from __future__ import annotations

import binascii
import hashlib
import http
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The only version of the protocol (RFC 6455 section 4.4); anything else is answered 426 with it.
VERSION = b"13"
_KEY_BYTES = 16


@dataclass(slots=True)
class UpgradeRequest:
    """What the server needs of an upgrade request to build the ASGI scope and answer it."""

    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    key: bytes
    subprotocols: list[str]


class Refusal(NamedTuple):
    """Why a request is refused: its status, a short text for the body, any extra headers."""

    status: int
    message: str
    headers: Sequence[tuple[bytes, bytes]] = ()


def refusal(status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """A plain-text HTTP answer that refuses a request and closes the connection."""
    body = message.encode()
    lines = [b"HTTP/1.1 %d %s" % (status, http.HTTPStatus(status).phrase.encode())]
    lines += [name + b": " + value for name, value in headers]
    lines += [
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _valid_key(key: bytes) -> bool:
    try:
        # What `base64.b64decode(key, validate=True)` does, without its two Python calls.
        return len(binascii.a2b_base64(key, strict_mode=True)) == _KEY_BYTES
    except binascii.Error:
        return False


def read_upgrade(
    method: str, http_version: str, target: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> UpgradeRequest | Refusal:
    """Check an `Upgrade: websocket` request (header names lower-cased) and take what the server needs.

    Returns the request, or the answer that refuses it.
    """
    if method != "GET":
        return Refusal(400, "A WebSocket handshake must be a GET request.")
    if http_version != "1.1":
        return Refusal(400, "A WebSocket handshake needs HTTP/1.1.")
    key = version = b""
    kept: list[tuple[bytes, bytes]] = []
    subprotocols: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-key":
            key = value = value.strip()
        elif name == b"sec-websocket-version":
            version = value.strip()
        elif name == b"sec-websocket-protocol":
            subprotocols += [item.strip() for item in value.decode("latin-1").split(",") if item.strip()]
        elif name == b"sec-websocket-extensions":
            continue  # never negotiated: no compression context per socket
        kept.append((name, value))
    if version != VERSION:
        return Refusal(426, "Unsupported WebSocket version.", [(b"sec-websocket-version", VERSION)])
    if not _valid_key(key):
        return Refusal(400, "Missing or invalid Sec-WebSocket-Key.")
    raw_path, _, query = target.partition(b"?")
    return UpgradeRequest(raw_path, query, kept, key, subprotocols)


def parse_upgrade(data: bytes) -> UpgradeRequest | Refusal:
    """Parse the request head an HTTP protocol hands over after `Upgrade: websocket`.

    Returns what the server needs, or the answer that refuses the request.
    """
    head = data.partition(b"\r\n\r\n")[0]
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return Refusal(400, "Invalid HTTP request received.")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return read_upgrade(parts[0].decode("latin-1"), parts[2][5:].decode("latin-1"), parts[1], headers)


_SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
)


def accept_response(
    key: bytes, subprotocol: str | None, headers: Iterable[tuple[bytes, bytes]] = ()
) -> bytes:
    """The `101 Switching Protocols` answer, with the app's subprotocol and extra headers."""
    head = _SWITCHING + binascii.b2a_base64(hashlib.sha1(key + _GUID).digest(), newline=False)
    if not subprotocol and not headers:
        return head + b"\r\n\r\n"
    lines = [head]
    if subprotocol:
        lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode())
    lines += [bytes(name) + b": " + bytes(value) for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def reject_response(status: int) -> bytes:
    """A plain HTTP refusal of the upgrade by the app (it closed before accepting, or failed)."""
    phrase = http.HTTPStatus(status).phrase.encode()
    return b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % (status, phrase)
