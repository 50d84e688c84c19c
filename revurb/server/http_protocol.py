"""Compatibility alias: `--http revurb.server.http_protocol:RevurbHttpProtocol` still names the HTTP
protocol, which lives in `revurb.transport.http` (`revurb.transport:HttpProtocol`)."""

from revurb.transport.http import HttpProtocol as RevurbHttpProtocol

__all__ = ["RevurbHttpProtocol"]
