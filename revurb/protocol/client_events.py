"""`client-*` events: who may send them, on which channels, how often, and who receives them."""

from __future__ import annotations

import time

from revurb.apps import App
from revurb.channels.manager import ChannelManager
from revurb.channels.names import kind_of
from revurb.scaling.base import WebhookEvent
from revurb.wire import codes, frames
from revurb.wire.codes import ErrorCode
from revurb.wire.connection import Connection
from revurb.wire.errors import PusherError
from revurb.wire.frames import ClientMessage


def relay(connection: Connection[App], manager: ChannelManager, message: ClientMessage) -> None:
    """Relay a client event to the channel's other subscribers, on every node."""
    app = connection.app
    if app.accept_client_events_from == "none":
        raise PusherError(ErrorCode.CLIENT_EVENT_REJECTED, codes.CLIENT_EVENTS_DISABLED)
    name = message.get("channel")
    if not isinstance(name, str):
        raise PusherError(ErrorCode.RECONNECT_NOW, codes.INVALID_MESSAGE)
    kind = kind_of(name)
    if not kind.accepts_client_events:
        raise PusherError(ErrorCode.UNAUTHORIZED, codes.CLIENT_EVENT_WRONG_CHANNEL)
    channel = manager.channels.get(name)
    subscribed = channel is not None and connection.socket_id in channel.subscribers
    if not subscribed and app.accept_client_events_from == "members":
        raise PusherError(ErrorCode.UNAUTHORIZED, codes.CLIENT_EVENT_NOT_MEMBER)
    if not allow(connection, time.monotonic()):
        manager.tally.rate_limited += 1
        raise PusherError(ErrorCode.CLIENT_EVENT_REJECTED, codes.CLIENT_EVENT_RATE_LIMITED)
    user_id = channel.members.get(connection.socket_id) if channel is not None else None
    frame = frames.event(message["event"], name, message.get("data"), user_id)
    manager.broadcast(name, frame, connection.socket_id)
    if app.webhooks:
        _webhook(connection, manager, message, name, user_id)
    if manager.console is not None:
        manager.console.client_event(connection.socket_id, name, message["event"], message.get("data"))


def _webhook(
    connection: Connection[App],
    manager: ChannelManager,
    message: ClientMessage,
    name: str,
    user_id: str | None,
) -> None:
    """Pusher's `client_event` webhook: `data` as a string, `user_id` on presence channels."""
    data = message.get("data")
    event: WebhookEvent = {
        "name": "client_event",
        "channel": name,
        "event": message["event"],
        "data": data if isinstance(data, str) else frames.dumps(data),
        "socket_id": connection.socket_id,
    }
    if user_id is not None:
        event["user_id"] = user_id
    manager.webhook(event)


def allow(connection: Connection[App], now: float) -> bool:
    """Fixed-window rate limit on a socket's client events (Pusher: 10 a second)."""
    app = connection.app
    if not app.rate_limiting:
        return True
    if now - connection.window_start >= app.rate_limit_decay_seconds:
        connection.window_start = now
        connection.window_count = 0
    connection.window_count += 1
    return connection.window_count <= app.rate_limit_max_attempts
