"""HMAC-SHA256 signatures of channel auth, user sign-in and the HTTP API; constant-time checks."""

import functools
import hashlib
import hmac

#: Secrets whose keyed HMAC state is kept (apps from a provider may be many; each costs ~1 KB).
_KEYED_SECRETS = 256


@functools.lru_cache(maxsize=_KEYED_SECRETS)
def _keyed(secret: str) -> hmac.HMAC:
    """The HMAC-SHA256 state once the key is in: a copy of it skips OpenSSL's key setup, which is
    most of a short message's cost (a signed trigger: 0.9 us instead of 1.7 us)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def sign(secret: str, string: str) -> str:
    """Hex HMAC-SHA256 of `string` keyed with the app secret."""
    mac = _keyed(secret).copy()
    mac.update(string.encode())
    return mac.hexdigest()


def signatures_match(expected: str, given: str) -> bool:
    """Compare two signatures in constant time."""
    return hmac.compare_digest(expected.encode(), given.encode())


def channel_auth_string(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    if channel_data is None:
        return f"{socket_id}:{channel}"
    return f"{socket_id}:{channel}:{channel_data}"


def user_auth_string(socket_id: str, user_data: str) -> str:
    return f"{socket_id}::user::{user_data}"


def verify_token(key: str, secret: str, string: str, auth: object) -> bool:
    """Check an `auth` token of the form `"{key}:{signature}"` against the string it signs."""
    if not isinstance(auth, str):
        return False
    given_key, _, signature = auth.partition(":")
    expected = sign(secret, string)
    # Both comparisons always run so timing does not reveal which part was wrong.
    key_ok = hmac.compare_digest(given_key.encode(), key.encode())
    return signatures_match(expected, signature) and key_ok
