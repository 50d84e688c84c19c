"""`pusher:*` events from clients: ping, pong, subscribe, unsubscribe and sign-in."""

from __future__ import annotations

from revurb.apps import App
from revurb.channels.manager import ChannelManager
from revurb.channels.names import MAX_NAME_LENGTH, is_valid_name, kind_of, server_to_user_channel
from revurb.channels.presence import Member, parse_member
from revurb.wire import auth, codes, frames
from revurb.wire.codes import ErrorCode
from revurb.wire.connection import Connection
from revurb.wire.errors import PusherError, SubscriptionError, auth_error
from revurb.wire.frames import ClientMessage

_INVALID = PusherError(ErrorCode.RECONNECT_NOW, codes.INVALID_MESSAGE)


async def handle(connection: Connection[App], manager: ChannelManager, message: ClientMessage) -> None:
    """Act on one `pusher:*` event; unknown ones are a `RECONNECT_NOW` error."""
    event = message["event"]
    if event == "pusher:ping":
        connection.send(frames.PONG)
    elif event == "pusher:pong":
        return
    elif event == "pusher:subscribe":
        await subscribe(connection, manager, message)
    elif event == "pusher:unsubscribe":
        name = frames.data_object(message).get("channel")
        if not isinstance(name, str):
            raise _INVALID
        await manager.unsubscribe(connection, name)
    elif event == "pusher:signin":
        await sign_in(connection, manager, message)
    else:
        raise _INVALID


async def subscribe(connection: Connection[App], manager: ChannelManager, message: ClientMessage) -> None:
    data = frames.data_object(message)
    name = data.get("channel")
    if not isinstance(name, str):
        raise _INVALID
    try:
        member = authorize(connection, name, data.get("auth"), data.get("channel_data"))
        await manager.subscribe(connection, name, member)
    except SubscriptionError as failure:
        connection.send(frames.subscription_error(name, failure.type, failure.error, failure.status))


def authorize(connection: Connection[App], name: str, token: object, channel_data: object) -> Member | None:
    """Check that a socket may join a channel; returns the presence member it joins as."""
    if len(name) > MAX_NAME_LENGTH:
        raise SubscriptionError(
            "LimitReached",
            f"The channel name is longer than the allowed {MAX_NAME_LENGTH} characters.",
            ErrorCode.UNAUTHORIZED,
        )
    if not is_valid_name(name):
        raise SubscriptionError("InvalidChannel", "The channel name is invalid.", ErrorCode.UNAUTHORIZED)
    kind = kind_of(name)
    if kind.server_to_user:
        if connection.user_id is None or name != server_to_user_channel(connection.user_id):
            raise auth_error()
        return None
    if not kind.needs_auth:
        return None
    app = connection.app
    if kind.presence:
        if not isinstance(channel_data, str):
            raise auth_error()
        string = auth.channel_auth_string(connection.socket_id, name, channel_data)
    else:
        string = auth.channel_auth_string(connection.socket_id, name)
    if not auth.verify_token(app.key, app.secret, string, token):
        raise auth_error()
    return parse_member(app, channel_data) if kind.presence else None


async def sign_in(connection: Connection[App], manager: ChannelManager, message: ClientMessage) -> None:
    """`pusher:signin`: bind the socket to a user; a bad signature or user closes the socket."""
    data = frames.data_object(message)
    user_data = data.get("user_data")
    app = connection.app
    if not isinstance(user_data, str) or not auth.verify_token(
        app.key,
        app.secret,
        auth.user_auth_string(connection.socket_id, user_data),
        data.get("auth"),
    ):
        raise PusherError(ErrorCode.UNAUTHORIZED, codes.UNAUTHORIZED, close=True)
    try:
        user = frames.loads(user_data)
    except frames.JSONDecodeError:
        user = None
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise PusherError(
            ErrorCode.UNAUTHORIZED,
            "The user data must be a JSON object with a string id",
            close=True,
        )
    await manager.sign_in(connection, user_id)
    connection.send(frames.signin_success(user_data))
