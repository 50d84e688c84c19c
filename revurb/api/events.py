"""Publishing: `POST /events` and `POST /batch_events`, validated before anything is delivered."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from revurb.api.errors import ApiError, bad_request, too_large
from revurb.apps import App
from revurb.channels.manager import ChannelManager
from revurb.channels.names import MAX_NAME_LENGTH, is_valid_name, kind_of, may_cache
from revurb.scaling.base import Receipt
from revurb.wire import frames

MAX_CHANNELS_PER_EVENT = 100
MAX_BATCH_SIZE = 10
MAX_EVENT_NAME_LENGTH = 200
_SOCKET_ID = re.compile(r"[0-9]+\.[0-9]+")
_INFO_ATTRIBUTES = frozenset({"user_count", "subscription_count"})
_NO_INFO: frozenset[str] = frozenset()


@dataclass(slots=True)
class Event:
    """A validated event to publish on one or more channels (not frozen: one is made per trigger,
    and a frozen dataclass sets each field through `object.__setattr__`, four times slower)."""

    name: str
    data: str
    channels: tuple[str, ...]
    socket_id: str | None
    info: frozenset[str]


def parse_body(body: bytes) -> Any:
    if not body:
        raise bad_request("The request body is empty: expected a JSON object")
    try:
        return frames.loads(body)
    except frames.JSONDecodeError:
        raise bad_request("The request body is not valid JSON") from None


def parse_event(app: App, payload: Any, batch: bool = False) -> Event:
    """Validate one event object; raises `ApiError` naming the first problem."""
    if not isinstance(payload, dict):
        what = "Each event" if batch else "The request body"
        raise bad_request(f"{what} must be a JSON object")
    name = payload.get("name")
    if name is None:
        raise bad_request("Missing required field: name")
    if not isinstance(name, str) or not name:
        raise bad_request("The field name must be a non-empty string")
    if len(name) > MAX_EVENT_NAME_LENGTH:
        raise bad_request(f"The event name is longer than {MAX_EVENT_NAME_LENGTH} characters")
    data = payload.get("data")
    if data is None:
        raise bad_request("Missing required field: data")
    if not isinstance(data, str):
        raise bad_request("The field data must be a string (JSON-encode it first)")
    if len(data.encode()) > app.max_event_data_size:
        raise too_large(f"The event data is larger than {app.max_event_data_size} bytes")
    channels = _channels(payload, batch)
    socket_id = payload.get("socket_id")
    if socket_id is not None and (not isinstance(socket_id, str) or _SOCKET_ID.fullmatch(socket_id) is None):
        raise bad_request("The field socket_id is not a valid socket id")
    return Event(name, data, channels, socket_id, parse_info(payload.get("info")))


def _channels(payload: dict[str, Any], batch: bool) -> tuple[str, ...]:
    if batch:
        channel = payload.get("channel")
        if channel is None:
            raise bad_request("Missing required field: channel")
        names: Any = [channel]
    elif "channels" in payload:
        names = payload["channels"]
        if not isinstance(names, list):
            raise bad_request("The field channels must be an array of channel names")
    elif "channel" in payload:
        names = [payload["channel"]]
    else:
        raise bad_request("Missing required field: channels")
    if not names:
        raise bad_request("The field channels must name at least one channel")
    if len(names) > MAX_CHANNELS_PER_EVENT:
        raise bad_request(f"An event can be sent to at most {MAX_CHANNELS_PER_EVENT} channels")
    for name in names:
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not is_valid_name(name):
            raise bad_request(f"Invalid channel name: {str(name)[:MAX_NAME_LENGTH]!r}")
    return tuple(dict.fromkeys(names))


def parse_info(info: object) -> frozenset[str]:
    if info is None or info == "":
        return _NO_INFO
    if not isinstance(info, str):
        raise bad_request("The field info must be a comma-separated string")
    attributes = frozenset(part.strip() for part in info.split(",") if part.strip())
    unknown = attributes - _INFO_ATTRIBUTES
    if unknown:
        raise bad_request(f"Unknown info attribute: {sorted(unknown)[0]}")
    return attributes


def parse_batch(app: App, payload: Any) -> list[Event]:
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise bad_request("Missing required field: batch (an array of events)")
    batch = payload["batch"]
    if not batch:
        raise bad_request("The field batch must hold at least one event")
    if len(batch) > MAX_BATCH_SIZE:
        raise bad_request(f"A batch can hold at most {MAX_BATCH_SIZE} events")
    events = []
    for index, item in enumerate(batch):
        try:
            events.append(parse_event(app, item, batch=True))
        except ApiError as error:
            # Name the offending event: SDK users build batches in loops.
            raise ApiError(error.status, f"batch[{index}]: {error.message}") from None
    return events


def publish(manager: ChannelManager, event: Event) -> Receipt:
    """Hand the event to every node, encoded once per channel that anyone may receive it on; the
    receipt of the last channel (messages are placed in order, so it is the last to be placed)."""
    receipt: Receipt = None
    console = manager.console
    for channel in event.channels:
        receipt = manager.broadcast_event(channel, event.name, event.data, event.socket_id)
        if console is not None:
            console.api_event(channel, event.name, event.data, event.socket_id)
    return receipt


def publish_all(manager: ChannelManager, events: list[Event]) -> Awaitable[None] | None:
    """Publish events in order; what to await before answering, or None if nothing.

    With scaling on, the answer waits until Redis accepted them, or, while Redis is known to be
    down, until they are queued to follow once it is back: a 2xx answer means exactly this
    (docs/scaling.md). Cache channels keep the event as their last one.
    """
    receipt: Receipt = None
    for event in events:
        receipt = publish(manager, event) or receipt
    cached = [(event, channel) for event in events for channel in event.channels if may_cache(channel)]
    if receipt is None and not cached:
        return None
    return _placed(manager, receipt, cached)


async def _placed(manager: ChannelManager, receipt: Receipt, cached: list[tuple[Event, str]]) -> None:
    if receipt is not None:
        await receipt
    for event, channel in cached:
        frame = frames.event(event.name, channel, event.data)
        await manager.backend.cache_put(manager.app.id, channel, frame)


async def channel_info(manager: ChannelManager, channel: str, info: frozenset[str]) -> dict[str, int]:
    """The `info` attributes of one channel, as the events endpoint returns them."""
    result: dict[str, int] = {}
    backend = manager.backend
    if "user_count" in info and kind_of(channel).presence:
        result["user_count"] = len(await backend.members(manager.app.id, channel))
    if "subscription_count" in info:
        result["subscription_count"] = await backend.subscription_count(manager.app.id, channel)
    return result
