"""Presence members: parsing `channel_data` and the limits a member must respect."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from revurb.apps import App
from revurb.wire import frames
from revurb.wire.codes import ErrorCode
from revurb.wire.errors import SubscriptionError


@dataclass(frozen=True, slots=True)
class Member:
    """A user on a presence channel, as the auth endpoint described it."""

    user_id: str
    user_info: Any


def parse_member(app: App, channel_data: object) -> Member:
    """Read `{"user_id": ..., "user_info": ...}` from signed channel data, enforcing size limits."""
    if not isinstance(channel_data, str):
        raise SubscriptionError("AuthError", "Presence channels need channel_data.", HTTPStatus.UNAUTHORIZED)
    try:
        data = frames.loads(channel_data)
    except frames.JSONDecodeError:
        raise SubscriptionError(
            "AuthError", "The channel_data is not valid JSON.", HTTPStatus.UNAUTHORIZED
        ) from None
    if not isinstance(data, dict):
        raise SubscriptionError(
            "AuthError", "The channel_data must be a JSON object.", HTTPStatus.UNAUTHORIZED
        )
    user_id = data.get("user_id")
    if isinstance(user_id, int | float) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise SubscriptionError("AuthError", "The channel_data has no user_id.", HTTPStatus.UNAUTHORIZED)
    user_info = data.get("user_info")
    if len(frames.dumps_bytes(user_info)) > app.max_presence_member_size:
        size_kb = app.max_presence_member_size / 1024
        raise SubscriptionError(
            "LimitReached",
            f"The maximum size for a channel member is {size_kb:g} KB.",
            ErrorCode.CLIENT_EVENT_REJECTED,  # Soketi's status for an oversized member
        )
    return Member(user_id, user_info)


def presence_data(members: dict[str, Any]) -> dict[str, Any]:
    """The `presence` object of `subscription_succeeded` on a presence channel."""
    return {"presence": {"count": len(members), "ids": list(members), "hash": members}}
