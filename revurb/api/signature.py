"""Pusher request signatures: `auth_key`, `auth_timestamp`, `auth_version`, `body_md5`, `auth_signature`."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

from revurb.api.errors import unauthorized
from revurb.apps import App
from revurb.wire import auth

#: How far `auth_timestamp` may be from the server's clock, either way (Pusher: 600 s).
TIMESTAMP_WINDOW = 600
REQUIRED = ("auth_key", "auth_timestamp", "auth_version", "auth_signature")


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    """`METHOD\\npath\\nquery` with keys lower-cased and sorted, values as sent, unescaped."""
    pairs = sorted([(key.lower(), value) for key, value in params.items() if key != "auth_signature"])
    query = "&".join([f"{key}={value}" for key, value in pairs])
    return f"{method}\n{path}\n{query}"


def verify(
    app: App,
    method: str,
    paths: Sequence[str],
    params: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> None:
    """Raise a 401 `ApiError` unless the request is signed with the app's key and secret."""
    for name in REQUIRED:
        if name not in params:
            raise unauthorized(f"Missing authentication parameter: {name}")
    if params["auth_version"] != "1.0":
        raise unauthorized("Unsupported auth_version: only 1.0 is supported")
    if not hmac.compare_digest(params["auth_key"].encode(), app.key.encode()):
        raise unauthorized("Invalid auth_key")
    raw_timestamp = params["auth_timestamp"]
    # ASCII digits only: int() would also take signs, spaces, underscores and other scripts' digits.
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()):
        raise unauthorized("Invalid auth_timestamp: expected whole seconds since the epoch")
    timestamp = int(raw_timestamp)
    now = time.time() if now is None else now
    if abs(now - timestamp) > TIMESTAMP_WINDOW:
        raise unauthorized(f"Timestamp expired: auth_timestamp is over {TIMESTAMP_WINDOW} s from server time")
    if body or "body_md5" in params:
        given = params.get("body_md5")
        if given is None:
            raise unauthorized("Missing authentication parameter: body_md5")
        if not hmac.compare_digest(hashlib.md5(body).hexdigest().encode(), given.encode()):
            raise unauthorized("Invalid body_md5: it does not match the request body")
    signature = params["auth_signature"]
    # Proxies that keep the path prefix leave SDKs signing either form; both prove the secret.
    # Which form matched is no secret, so the second is only computed when the first fails.
    for path in paths:
        if auth.signatures_match(auth.sign(app.secret, string_to_sign(method, path, params)), signature):
            return
    signed = string_to_sign(method, paths[0], params)
    raise unauthorized(f"Invalid signature: expected the HMAC-SHA256 of {signed!r}")
