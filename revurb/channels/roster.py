"""What this node's sockets on one presence channel have been told: a roster, at a version.

Membership changes reach a node in the order the cluster made them, each with its version (its
position on the bus). A change at or below the view's version is already known and skipped; a
change that does not alter what the sockets were told (a user announced who is already listed)
is skipped too. A socket whose own roster, read from Redis when it subscribed, is newer than the
view (`ahead`) is spared the changes its roster already holds; one still waiting for its roster
is spared every change, until it has one.
"""

from __future__ import annotations

from typing import Any

from revurb.scaling.base import NO_VERSION, Version

#: `ahead` value of a socket whose roster is still being read.
PENDING: Version = (2**63, 0)


class RosterView:
    """A presence channel's members as this node announced them."""

    __slots__ = ("users", "version", "ahead", "known")

    def __init__(self) -> None:
        self.users: dict[str, Any] = {}
        self.version: Version = NO_VERSION
        #: socket id -> version of the roster it was given, while newer than `version`
        self.ahead: dict[str, Version] = {}
        #: False until the view was set from a roster read (or while Redis was down from the start).
        self.known = False

    def apply(self, user_id: str, added: bool, info: Any, version: Version | None) -> bool:
        """Take in one change; True if the sockets must hear of it."""
        if version is not None:
            if version <= self.version:
                return False
            self.version = version
        if added:
            if user_id in self.users:
                self.users[user_id] = info
                return False
            self.users[user_id] = info
            return True
        if user_id not in self.users:
            return False
        del self.users[user_id]
        return True

    def caught_up(self) -> None:
        """Forget sockets whose roster this view has reached (call after a change went out)."""
        if self.ahead:
            self.ahead = {sid: v for sid, v in self.ahead.items() if v > self.version}

    def spared(self, socket_id: str, version: Version | None) -> bool:
        """True if this socket already holds a change at `version` (or holds no roster yet)."""
        mine = self.ahead.get(socket_id) if self.ahead else None
        if mine is None:
            return False
        return mine == PENDING or (version is not None and mine >= version)

    def given(self, socket_id: str, users: dict[str, Any], version: Version | None) -> None:
        """A socket got its roster: from Redis at `version`, or this view (None: Redis is down)."""
        if version is None:
            self.ahead.pop(socket_id, None)
            return
        if not self.known and version >= self.version:
            self.users, self.version, self.known = dict(users), version, True
        if version > self.version:
            self.ahead[socket_id] = version
        else:
            self.ahead.pop(socket_id, None)

    def reset(self, users: dict[str, Any], version: Version) -> tuple[dict[str, Any], list[str]]:
        """Adopt Redis's roster after an outage; returns who must be announced added and removed."""
        added = {user: info for user, info in users.items() if user not in self.users}
        removed = [user for user in self.users if user not in users]
        self.users, self.version, self.known = dict(users), max(version, self.version), True
        return added, removed
