"""Exceptions that carry a Pusher code; the edges turn them into frames or HTTP responses."""

from dataclasses import dataclass
from http import HTTPStatus

from revurb.wire.codes import ErrorCode


@dataclass(slots=True)
class PusherError(Exception):
    """A connection-level error: sent as `pusher:error`, then the socket closes if `close` is set."""

    code: ErrorCode
    message: str
    close: bool = False


@dataclass(slots=True)
class SubscriptionError(Exception):
    """A failed subscription: sent on the channel as `pusher:subscription_error`; socket stays open."""

    type: str
    error: str
    status: int


def auth_error() -> SubscriptionError:
    """The subscription error for missing or invalid channel auth (Pusher and Soketi wording)."""
    return SubscriptionError("AuthError", "The connection is unauthorized.", HTTPStatus.UNAUTHORIZED)
