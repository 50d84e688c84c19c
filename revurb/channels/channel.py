"""A channel's local subscribers on this node."""

from __future__ import annotations

from typing import Any

from revurb.apps import App
from revurb.channels.names import ChannelKind
from revurb.channels.roster import RosterView
from revurb.scaling.base import Version
from revurb.wire.connection import Connection


class Channel:
    """The sockets subscribed to one channel name here, and the user each presence socket joined as."""

    __slots__ = ("name", "kind", "subscribers", "members", "roster")

    def __init__(self, name: str, kind: ChannelKind) -> None:
        self.name = name
        self.kind = kind
        self.subscribers: dict[str, Connection[App]] = {}
        #: socket id -> user id, for presence channels.
        self.members: dict[str, str] = {}
        #: What the presence sockets here were told (presence channels only).
        self.roster = RosterView() if kind.presence else None

    def send(self, frame: str, except_socket_id: str | None = None) -> int:
        """Write one encoded frame to every local subscriber but one; returns how many got it.

        The frame is prepared (for the fast path: framed as WebSocket bytes) once per connection
        class, so each subscriber costs a lookup and a write.
        """
        sent = 0
        prepared_for: type[Connection[App]] | None = None
        prepared: Any = None
        for socket_id, connection in self.subscribers.items():
            if socket_id != except_socket_id:
                cls = type(connection)
                if cls is not prepared_for:
                    prepared_for, prepared = cls, cls.prepare(frame)
                connection.send_prepared(prepared)
                sent += 1
        return sent

    def send_member_change(self, frame: str, except_socket_id: str | None, version: Version | None) -> None:
        """Write a membership change to the subscribers that do not hold it yet."""
        roster = self.roster
        for socket_id, connection in self.subscribers.items():
            if socket_id != except_socket_id and not (
                roster is not None and roster.spared(socket_id, version)
            ):
                connection.send(frame)
