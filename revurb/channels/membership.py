"""Presence as this node's sockets see it: the roster a subscriber gets, membership changes from
the bus or found here, and the reconcile after an outage (see `roster.RosterView`)."""

from __future__ import annotations

from typing import Any

from revurb.channels.channel import Channel
from revurb.channels.roster import PENDING, RosterView
from revurb.scaling.base import Backend, BusMessage, Roster, Version
from revurb.wire import frames

#: Roster reads a subscriber or a reconcile makes at most while this node is ahead of Redis's answer.
ROSTER_READS = 3


async def _read(backend: Backend, app_id: str, channel: Channel, view: RosterView) -> Roster | None:
    """Redis's roster, re-read while it is older than what this node has announced meanwhile."""
    roster = None
    for _ in range(ROSTER_READS):
        roster = await backend.roster(app_id, channel.name)
        if roster is None or roster.version is None or roster.version >= view.version:
            break
    return roster


async def roster_for(backend: Backend, app_id: str, socket_id: str, channel: Channel) -> dict[str, Any]:
    """The roster a presence subscriber gets: Redis's, no older than what this node announced;
    while Redis is down, what this node announced."""
    view = channel.roster
    if view is None:
        return await backend.members(app_id, channel.name)
    view.ahead[socket_id] = PENDING  # no membership change reaches it before its roster
    roster = await _read(backend, app_id, channel, view)
    if roster is None:
        view.given(socket_id, view.users, None)
        return dict(view.users)
    view.given(socket_id, roster.users, roster.version)
    return roster.users


def changed(
    channel: Channel,
    user_id: str,
    added: bool,
    info: Any,
    version: Version | None,
    except_socket_id: str | None,
    frame: str | None = None,
) -> None:
    """A membership change (from the bus at `version`, or found here): told to the sockets here
    that do not know it yet."""
    view = channel.roster
    if view is None:
        return
    if view.apply(user_id, added, info, version):
        if frame is None:
            name = channel.name
            frame = (
                frames.member_added(name, user_id, info) if added else frames.member_removed(name, user_id)
            )
        channel.send_member_change(frame, except_socket_id, version)
    view.caught_up()


def from_bus(channel: Channel, message: BusMessage) -> None:
    added = message.get("added", False)
    frame = message["frame"]
    info = frames.loads(frames.loads(frame)["data"]).get("user_info") if added else None
    version = message.get("version")
    changed(channel, message["user_id"], added, info, version, message.get("except_socket_id"), frame)


async def reconcile(backend: Backend, app_id: str, channel: Channel) -> bool:
    """Compare what the sockets here were told with Redis's roster and announce the difference;
    False when it must wait (a subscriber is still reading its roster, or Redis is away)."""
    view = channel.roster
    if view is None:
        return True
    if PENDING in view.ahead.values():
        return False
    roster = await _read(backend, app_id, channel, view)
    if roster is None or roster.version is None:
        return roster is not None
    if PENDING in view.ahead.values():
        return False
    view.ahead.clear()
    added, removed = view.reset(roster.users, roster.version)
    name = channel.name
    for user_id, info in added.items():
        channel.send_member_change(frames.member_added(name, user_id, info), None, None)
    for user_id in removed:
        channel.send_member_change(frames.member_removed(name, user_id), None, None)
    return True
