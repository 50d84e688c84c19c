"""HTTP/1.1 and WebSocket protocol classes for uvicorn (`--http` / `--ws`), as uvicorn's own
`protocols/` are: parsing, framing, the handshake, write coalescing and flow control.

A leaf: nothing here imports the rest of Revurb. An app may offer a faster path than ASGI messages
through the hook in `revurb.transport.hook`; any other ASGI app is served through plain ASGI.
"""

from revurb.transport.http import HttpProtocol
from revurb.transport.websocket import WebSocketProtocol

__all__ = ["HttpProtocol", "WebSocketProtocol"]
