"""Wire shapes and the one place that encodes and decodes JSON (orjson)."""

from typing import Any, NotRequired, TypedDict

import orjson

from revurb.wire.codes import INVALID_MESSAGE, ErrorCode
from revurb.wire.errors import PusherError

JSONDecodeError = orjson.JSONDecodeError


class ClientMessage(TypedDict):
    """A decoded frame from a client: `data` is whatever JSON value the client sent."""

    event: str
    channel: NotRequired[str]
    data: NotRequired[Any]


def dumps(value: Any) -> str:
    """Encode a value as compact JSON text."""
    return orjson.dumps(value).decode()


def dumps_bytes(value: Any) -> bytes:
    """Encode a value as compact JSON bytes."""
    return orjson.dumps(value)


def loads(raw: str | bytes) -> Any:
    """Decode JSON text or bytes; raises `JSONDecodeError` on bad input."""
    return orjson.loads(raw)


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """Decode a client frame, or raise the `RECONNECT_NOW` `pusher:error` for anything malformed."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PusherError(ErrorCode.RECONNECT_NOW, INVALID_MESSAGE) from None
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise PusherError(ErrorCode.RECONNECT_NOW, INVALID_MESSAGE)
    channel = message.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise PusherError(ErrorCode.RECONNECT_NOW, INVALID_MESSAGE)
    return message  # type: ignore[return-value]


def data_object(message: ClientMessage) -> dict[str, Any]:
    """The `data` of a `pusher:*` frame as an object; clients send an object or a JSON string of one."""
    data: Any = message.get("data", {})
    if isinstance(data, str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise PusherError(ErrorCode.RECONNECT_NOW, INVALID_MESSAGE) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PusherError(ErrorCode.RECONNECT_NOW, INVALID_MESSAGE)
    return data


# Frames sent by the server. `data` of pusher:* frames is a JSON string, as Reverb and Pusher send it.

PING = '{"event":"pusher:ping"}'
PONG = '{"event":"pusher:pong"}'


def connection_established(socket_id: str, activity_timeout: int) -> str:
    data = dumps({"socket_id": socket_id, "activity_timeout": activity_timeout})
    return dumps({"event": "pusher:connection_established", "data": data})


def error(code: int, message: str) -> str:
    return dumps({"event": "pusher:error", "data": dumps({"code": code, "message": message})})


def subscription_succeeded(channel: str, data: dict[str, Any] | None = None) -> str:
    payload = dumps(data) if data else "{}"
    return dumps({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": payload})


def subscription_error(channel: str, type_: str, error: str, status: int) -> str:
    data = {"type": type_, "error": error, "status": status}
    return dumps({"event": "pusher:subscription_error", "channel": channel, "data": data})


def member_added(channel: str, user_id: str, user_info: Any) -> str:
    data = dumps({"user_id": user_id, "user_info": user_info})
    return dumps({"event": "pusher_internal:member_added", "channel": channel, "data": data})


def member_removed(channel: str, user_id: str) -> str:
    data = dumps({"user_id": user_id})
    return dumps({"event": "pusher_internal:member_removed", "channel": channel, "data": data})


def subscription_count(channel: str, count: int) -> str:
    data = dumps({"subscription_count": count})
    return dumps({"event": "pusher_internal:subscription_count", "channel": channel, "data": data})


def cache_miss(channel: str) -> str:
    return dumps({"event": "pusher:cache_miss", "channel": channel})


def signin_success(user_data: str) -> str:
    return dumps({"event": "pusher:signin_success", "data": dumps({"user_data": user_data})})


def event(name: str, channel: str | None, data: Any, user_id: str | None = None) -> str:
    """An application event: from the HTTP API (`data` a string) or a client (`data` any JSON)."""
    frame: dict[str, Any] = {"event": name}
    if channel is not None:
        frame["channel"] = channel
    frame["data"] = data
    if user_id is not None:
        frame["user_id"] = user_id
    return dumps(frame)
