"""Who may open a socket: the app named by the key, the Origin it allows, a protocol it speaks."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from urllib.parse import parse_qs, urlsplit

from revurb.apps import App, AppProvider
from revurb.wire import codes
from revurb.wire.codes import ErrorCode
from revurb.wire.errors import PusherError

_MIN_PROTOCOL, _MAX_PROTOCOL = 5, 7


def origin_allowed(app: App, origin: str | None) -> bool:
    """Reverb's rule: `*` allows all; otherwise the Origin's host must match a pattern."""
    if "*" in app.allowed_origins:
        return True
    if not origin:
        return False
    host = (urlsplit(origin).hostname or "").lower()
    return any(fnmatchcase(host, pattern.lower()) for pattern in app.allowed_origins)


def _protocol_version(query: str) -> str | None:
    """The first non-empty `protocol` value of a query, as `parse_qs` reads it."""
    if "%" in query or "+" in query:
        versions = parse_qs(query).get("protocol")
        return versions[0] if versions else None
    for part in query.split("&"):  # every client sends a plain query: no unquoting to do
        name, _, value = part.partition("=")
        if name == "protocol" and value:
            return value
    return None


def protocol_error(query_string: bytes) -> PusherError | None:
    """Check `?protocol=`; a missing version is accepted (as Reverb and Soketi do)."""
    version = _protocol_version(query_string.decode("latin-1"))
    if version is None:
        return None
    if not version.isdigit():
        return PusherError(ErrorCode.INVALID_VERSION_FORMAT, codes.INVALID_VERSION_FORMAT, True)
    if not _MIN_PROTOCOL <= int(version) <= _MAX_PROTOCOL:
        return PusherError(ErrorCode.UNSUPPORTED_PROTOCOL, codes.UNSUPPORTED_PROTOCOL, True)
    return None


async def admit(
    provider: AppProvider, key: str, headers: Iterable[tuple[bytes, bytes]], query_string: bytes
) -> App | PusherError:
    """The app a new socket belongs to, or the error (sent, then the socket closes) that refuses it."""
    app = await provider.find_by_key(key)
    if app is None:
        return PusherError(ErrorCode.APP_NOT_FOUND, codes.APP_NOT_FOUND, True)
    origin = None
    for name, value in headers:
        if name == b"origin":
            origin = value.decode("latin-1")
            break
    if not origin_allowed(app, origin):
        return PusherError(ErrorCode.UNAUTHORIZED, codes.ORIGIN_NOT_ALLOWED, True)
    return protocol_error(query_string) or app
