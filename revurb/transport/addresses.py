"""A connection's addresses as ASGI scopes carry them: `(host, port)`, or None (a Unix socket, say)."""

from __future__ import annotations

import asyncio


def address(info: object) -> tuple[str, int] | None:
    """`(host, port)` of a `sockname` or `peername` (IPv6's four-tuple included), else None."""
    if isinstance(info, tuple | list) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


def local_address(transport: asyncio.BaseTransport) -> tuple[str, int] | None:
    """The server's end: read from what the transport noted when it was made (uvicorn's
    `get_local_addr` asks the socket again, a system call or three per connection)."""
    return address(transport.get_extra_info("sockname"))


def remote_address(transport: asyncio.BaseTransport) -> tuple[str, int] | None:
    return address(transport.get_extra_info("peername"))
