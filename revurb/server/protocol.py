"""Compatibility alias: `--ws revurb.server.protocol:RevurbWebSocketProtocol` still names the
WebSocket protocol, which lives in `revurb.transport.websocket` (`revurb.transport:WebSocketProtocol`)."""

from revurb.transport.websocket import WebSocketProtocol as RevurbWebSocketProtocol

__all__ = ["RevurbWebSocketProtocol"]
