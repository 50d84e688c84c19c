"""This node's own share of the cluster state, kept in process so it can be re-asserted in Redis.

Every state change the node makes is applied here first. After Redis comes back (or after other
nodes wrongly declared this one dead), the node replaces its share in Redis with this exact copy.
While Redis is unreachable, reads fall back to it: the node answers for what it knows.
"""

from __future__ import annotations

import time
from typing import Any

from revurb.wire import frames

#: Expired cache payloads are dropped when the cache grows past this (then past twice its live size).
_PRUNE_MIN = 256


class Mirror:
    """Sockets, subscriptions, presence members and cache payloads this node contributed."""

    def __init__(self) -> None:
        self.connections: dict[str, int] = {}
        self.subscriptions: dict[str, dict[str, int]] = {}
        #: app -> channel -> user id -> [user info as JSON, sockets here]
        self.members: dict[str, dict[str, dict[str, list[Any]]]] = {}
        #: (app, channel) -> (frame, expiry as unix time in ms)
        self.cache: dict[tuple[str, str], tuple[str, int]] = {}
        self._prune_at = _PRUNE_MIN

    def add_connection(self, app_id: str, delta: int) -> int:
        count = max(0, self.connections.get(app_id, 0) + delta)
        if count:
            self.connections[app_id] = count
        else:
            self.connections.pop(app_id, None)
        return count

    def add_subscriber(self, app_id: str, channel: str, delta: int) -> int:
        counts = self.subscriptions.setdefault(app_id, {})
        count = max(0, counts.get(channel, 0) + delta)
        if count:
            counts[channel] = count
        else:
            counts.pop(channel, None)
            if not counts:
                del self.subscriptions[app_id]
        return count

    def add_member(self, app_id: str, channel: str, user_id: str, info_json: str) -> bool:
        """Count one socket of a user here; True if it is the user's first socket on this node."""
        roster = self.members.setdefault(app_id, {}).setdefault(channel, {})
        entry = roster.get(user_id)
        if entry is None:
            roster[user_id] = [info_json, 1]
            return True
        entry[0] = info_json
        entry[1] += 1
        return False

    def remove_member(self, app_id: str, channel: str, user_id: str) -> bool:
        """Uncount one socket of a user here; True if it was the user's last socket on this node."""
        channels = self.members.get(app_id, {})
        roster = channels.get(channel, {})
        entry = roster.get(user_id)
        if entry is None:
            return False
        entry[1] -= 1
        if entry[1] > 0:
            return False
        del roster[user_id]
        if not roster:
            del channels[channel]
            if not channels:
                del self.members[app_id]
        return True

    def roster(self, app_id: str, channel: str) -> dict[str, Any]:
        roster = self.members.get(app_id, {}).get(channel, {})
        return {user_id: frames.loads(entry[0]) for user_id, entry in roster.items()}

    def put_cache(self, app_id: str, channel: str, frame: str, ttl_ms: int) -> None:
        now = _now_ms()
        if len(self.cache) >= self._prune_at:
            self.cache = {key: value for key, value in self.cache.items() if value[1] > now}
            self._prune_at = max(_PRUNE_MIN, 2 * len(self.cache))
        self.cache[(app_id, channel)] = (frame, now + ttl_ms)

    def get_cache(self, app_id: str, channel: str) -> tuple[str, int] | None:
        """The frame and its remaining lifetime in ms, if this node cached one that is still live."""
        cached = self.cache.get((app_id, channel))
        if cached is None:
            return None
        left = cached[1] - _now_ms()
        return (cached[0], left) if left > 0 else None

    def to_json(self) -> str:
        """The share in the shape the REASSERT script reads."""
        cached = [[app, channel, frame, expiry] for (app, channel), (frame, expiry) in self.cache.items()]
        share = {"c": self.connections, "s": self.subscriptions, "p": self.members, "k": cached}
        return frames.dumps(share)


def _now_ms() -> int:
    return int(time.time() * 1000)
