"""Dashboard logins and their session cookie.

The dashboard secret logs in to every app; an app's key and secret log in to that app alone. A
session is a signed, expiring token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind
TLS). Nothing is kept on the server, so any node that has the same dashboard secret accepts it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from revurb.apps import AppProvider

COOKIE = "revurb_dashboard"
#: How long a login lasts.
SESSION_SECONDS = 8 * 3600
#: The scope of a login with the dashboard secret.
ALL_APPS = "*"
_CONTEXT = b"revurb dashboard session"


@dataclass(frozen=True, slots=True)
class Session:
    """Who is logged in: every app (`ALL_APPS`) or one app's id, until `expires` (epoch seconds)."""

    scope: str
    expires: int

    @property
    def every_app(self) -> bool:
        return self.scope == ALL_APPS

    def sees(self, app_id: str) -> bool:
        return self.every_app or self.scope == app_id


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def same_secret(given: str, expected: str) -> bool:
    """Constant time, whatever the lengths: compares digests of equal size."""
    return hmac.compare_digest(_digest(given), _digest(expected))


class Sessions:
    """Issues and reads session tokens signed with a key derived from the dashboard secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._key = hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()

    async def login(self, provider: AppProvider, key: str, secret: str) -> str | None:
        """The scope these credentials log in to, or None. Always compares once, in constant time."""
        if not key:
            return ALL_APPS if same_secret(secret, self._secret) else None
        app = await provider.find_by_key(key)
        # An unknown key costs the same compare as a known one.
        expected = app.secret if app is not None else secrets.token_hex(16)
        if same_secret(secret, expected) and app is not None:
            return app.id
        return None

    def issue(self, scope: str, now: float | None = None) -> str:
        expires = int(time.time() if now is None else now) + SESSION_SECONDS
        # Hex keeps the cookie value free of characters that would need quoting.
        body = f"{scope.encode().hex()}.{expires}"
        return f"{body}.{self._sign(body)}"

    def read(self, token: str | None, now: float | None = None) -> Session | None:
        """The session a cookie holds, if it is signed by us and has not expired."""
        if not token or token.count(".") != 2:
            return None
        body, _, signature = token.rpartition(".")
        if not hmac.compare_digest(self._sign(body).encode(), signature.encode()):
            return None
        encoded, _, raw_expires = body.partition(".")
        if not raw_expires.isdigit() or int(raw_expires) < (time.time() if now is None else now):
            return None
        try:
            scope = bytes.fromhex(encoded).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return Session(scope, int(raw_expires))

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
