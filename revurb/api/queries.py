"""Read-only queries: channels, one channel, a presence channel's users, the connection count."""

from __future__ import annotations

from typing import Any

from revurb.api.errors import bad_request
from revurb.api.events import parse_info
from revurb.channels.manager import ChannelManager
from revurb.channels.names import kind_of
from revurb.wire import frames


async def channels(manager: ChannelManager, prefix: str, info_param: str | None) -> dict[str, Any]:
    """`GET /channels`: occupied channels, optionally filtered by prefix, with their info."""
    info = parse_info(info_param)
    if "user_count" in info and not prefix.startswith("presence-"):
        raise bad_request(
            "user_count may only be requested with filter_by_prefix=presence- (presence channels)"
        )
    app_id = manager.app.id
    backend = manager.backend
    result: dict[str, dict[str, int]] = {}
    for name, count in sorted((await backend.occupied_channels(app_id)).items()):
        if not name.startswith(prefix):
            continue
        attributes: dict[str, int] = {}
        if "user_count" in info:
            attributes["user_count"] = len(await backend.members(app_id, name))
        if "subscription_count" in info:
            attributes["subscription_count"] = count
        result[name] = attributes
    return {"channels": result}


async def channel(manager: ChannelManager, name: str, info_param: str | None) -> dict[str, Any]:
    """`GET /channels/{name}`: occupied, plus `user_count`, `subscription_count`, `cache`."""
    requested = {part.strip() for part in (info_param or "").split(",") if part.strip()}
    unknown = requested - {"user_count", "subscription_count", "cache"}
    if unknown:
        raise bad_request(f"Unknown info attribute: {sorted(unknown)[0]}")
    app_id = manager.app.id
    backend = manager.backend
    kind = kind_of(name)
    count = await backend.subscription_count(app_id, name)
    result: dict[str, Any] = {"occupied": count > 0}
    if "user_count" in requested:
        if not kind.presence:
            raise bad_request("user_count is only available for presence channels")
        result["user_count"] = len(await backend.members(app_id, name))
    if "subscription_count" in requested:
        result["subscription_count"] = count
    if "cache" in requested and kind.cache:
        cached = await backend.cache_get(app_id, name)
        if cached is not None:
            event = frames.loads(cached["frame"])
            result["cache"] = {"event": event["event"], "data": event["data"], "ttl": cached["ttl"]}
    return result


async def users(manager: ChannelManager, name: str) -> dict[str, Any]:
    """`GET /channels/{name}/users`: each user of a presence channel once."""
    if not kind_of(name).presence:
        raise bad_request("Users can only be retrieved for presence channels")
    members = await manager.backend.members(manager.app.id, name)
    return {"users": [{"id": user_id} for user_id in members]}


async def connections(manager: ChannelManager) -> dict[str, Any]:
    """`GET /connections`: the app's open sockets across the cluster."""
    return {"connections": await manager.backend.connection_count(manager.app.id)}
