"""HMAC-SHA256 signatures of channel auth, user sign-in and the HTTP API; constant-time checks."""

import hmac


def sign(secret: str, string: str) -> str:
    """Hex HMAC-SHA256 of `string` keyed with the app secret."""
    return hmac.digest(secret.encode(), string.encode(), "sha256").hex()


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
