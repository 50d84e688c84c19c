"""The client a trusted proxy forwards for, on scopes that skip uvicorn's proxy-headers middleware.

uvicorn wraps the app in `ProxyHeadersMiddleware` (`--proxy-headers`, `forwarded_allow_ips`), which
rewrites `client` and `scheme` from `X-Forwarded-For` / `X-Forwarded-Proto` when the peer is a
trusted proxy. A route served through the transport hook skips that wrapper, so its scope gets the
same rewrite here, with the middleware's own trust.
"""

from __future__ import annotations

from typing import Protocol

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from revurb.transport.hook import Scope

_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


class TrustedProxies(Protocol):
    """What uvicorn's middleware knows of the proxies it trusts."""

    def __contains__(self, host: str | None) -> bool: ...

    def get_trusted_client_address(self, x_forwarded_for: str) -> tuple[str, int]: ...


def trusted_proxies(app: object) -> TrustedProxies | None:
    """The trust of uvicorn's proxy-headers middleware if it wraps `app`, else None."""
    if not isinstance(app, ProxyHeadersMiddleware):
        return None
    trusted: TrustedProxies | None = getattr(app, "trusted_hosts", None)
    return trusted


def forward_websocket_scope(scope: Scope, trusted: TrustedProxies) -> None:
    """Rewrite a WebSocket scope's `client` and `scheme` as uvicorn's middleware would."""
    client = scope.get("client")
    if (client[0] if client else None) not in trusted:
        return
    forwarded_for: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            forwarded_for.append(value)
        elif name == b"x-forwarded-proto":
            scheme = _SCHEMES.get(value.decode("latin-1").strip())
            if scheme is not None:
                scope["scheme"] = scheme
    if forwarded_for:
        host, port = trusted.get_trusted_client_address(b", ".join(forwarded_for).decode("latin-1"))
        if host:
            scope["client"] = (host, port)
