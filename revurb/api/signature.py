"""Pusher request signatures: `auth_key`, `auth_timestamp`, `auth_version`, `body_md5`, `auth_signature`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence

from revurb.api.errors import unauthorized
from revurb.apps import App
from revurb.wire import auth

#: How far `auth_timestamp` may be from the server's clock, either way (Pusher: 600 s).
TIMESTAMP_WINDOW = 600


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    """`METHOD\npath\nquery` with keys lower-cased and sorted, values as sent, unescaped."""
    pairs = sorted([(key.lower(), value) for key, value in params.items() if key != "auth_signature"])
    return f"{method}\n{path}\n" + "&".join(map("=".join, pairs))


def verify(
    app: App,
    method: str,
    paths: Sequence[str],
    params: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> None:
    """Raise a 401 `ApiError` unless the request is signed with the app's key and secret.

    Every signed trigger comes through here, so it reads each parameter once and compares in
    constant time only what is secret (the signature); the key and the body's MD5 are not.
    """
    try:
        key = params["auth_key"]
        raw_timestamp = params["auth_timestamp"]
        version = params["auth_version"]
        signature = params["auth_signature"]
    except KeyError as missing:
        raise unauthorized(f"Missing authentication parameter: {missing.args[0]}") from None
    if version != "1.0":
        raise unauthorized("Unsupported auth_version: only 1.0 is supported")
    if key != app.key:
        raise unauthorized("Invalid auth_key")
    # ASCII digits only: int() would also take signs, spaces, underscores and other scripts' digits.
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()):
        raise unauthorized("Invalid auth_timestamp: expected whole seconds since the epoch")
    if abs((time.time() if now is None else now) - int(raw_timestamp)) > TIMESTAMP_WINDOW:
        raise unauthorized(f"Timestamp expired: auth_timestamp is over {TIMESTAMP_WINDOW} s from server time")
    given = params.get("body_md5")
    if body or given is not None:
        if given is None:
            raise unauthorized("Missing authentication parameter: body_md5")
        if hashlib.md5(body).hexdigest() != given:
            raise unauthorized("Invalid body_md5: it does not match the request body")
    # Proxies that keep the path prefix leave SDKs signing either form; both prove the secret.
    # Which form matched is no secret, so the second is only computed when the first fails.
    for path in paths:
        if auth.signatures_match(auth.sign(app.secret, string_to_sign(method, path, params)), signature):
            return
    signed = string_to_sign(method, paths[0], params)
    raise unauthorized(f"Invalid signature: expected the HMAC-SHA256 of {signed!r}")
