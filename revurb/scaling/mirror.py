"""One node's counts, rosters and cache payloads, kept in process.

The memory backend is this and nothing more. The Redis backend applies every change here first:
after Redis comes back (or after other nodes wrongly declared this one dead) it replaces its share
in Redis with this exact copy, and while Redis is unreachable it answers from it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from revurb.wire import frames

#: Expired cache payloads are dropped when the cache grows past this (then past twice its live size).
_PRUNE_MIN = 256


class Mirror:
    """Sockets, subscriptions, presence members and cache payloads of one node."""

    def __init__(self) -> None:
        self.connections: dict[str, int] = {}
        self.subscriptions: dict[str, dict[str, int]] = {}
        #: app -> channel -> user id -> [user info, sockets here]
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
        counts = self.subscriptions.get(app_id)
        if counts is None:
            counts = self.subscriptions[app_id] = {}
        count = max(0, counts.get(channel, 0) + delta)
        if count:
            counts[channel] = count
        else:
            counts.pop(channel, None)
            if not counts:
                del self.subscriptions[app_id]
        return count

    def subscription_count(self, app_id: str, channel: str) -> int:
        return self.subscriptions.get(app_id, {}).get(channel, 0)

    def occupied(self, app_id: str) -> dict[str, int]:
        return dict(self.subscriptions.get(app_id, {}))

    def add_member(self, app_id: str, channel: str, user_id: str, user_info: Any) -> bool:
        """Count one socket of a user here; True if it is the user's first socket on this node."""
        roster = self.members.setdefault(app_id, {}).setdefault(channel, {})
        entry = roster.get(user_id)
        if entry is None:
            roster[user_id] = [user_info, 1]
            return True
        entry[0] = user_info
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
        return {user_id: entry[0] for user_id, entry in roster.items()}

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
        if left > 0:
            return cached[0], left
        del self.cache[(app_id, channel)]
        return None

    # The share, in the shapes the re-assert scripts read (see lua_share.py)

    def index_entries(self) -> set[str]:
        """The index entries Redis should hold for this node after a re-assert."""
        entries = {_entry("c", app) for app in self.connections}
        entries.update(_entry("s", app, ch) for app, counts in self.subscriptions.items() for ch in counts)
        entries.update(_entry("p", app, ch) for app, channels in self.members.items() for ch in channels)
        return entries

    def count_chunks(self, size: int) -> Iterator[str]:
        """Socket and subscription counts, `size` at a time."""
        rows: list[list[Any]] = [[_entry("c", app), app, False, n] for app, n in self.connections.items()]
        for app, counts in self.subscriptions.items():
            rows.extend([_entry("s", app, channel), app, channel, n] for channel, n in counts.items())
        for start in range(0, len(rows), size):
            yield frames.dumps(rows[start : start + size])

    def presence_chunks(self, size: int) -> Iterator[str]:
        """Presence sockets per channel, about `size` users at a time (a channel is never split)."""
        chunk: list[list[Any]] = []
        users = 0
        for app, channels in self.members.items():
            for channel, roster in channels.items():
                encoded = {user: [frames.dumps(entry[0]), entry[1]] for user, entry in roster.items()}
                chunk.append([_entry("p", app, channel), app, channel, encoded])
                users += len(roster)
                if users >= size:
                    yield frames.dumps(chunk)
                    chunk, users = [], 0
        if chunk:
            yield frames.dumps(chunk)

    def cache_chunks(self, size: int) -> Iterator[str]:
        rows = [[app, channel, frame, expiry] for (app, channel), (frame, expiry) in self.cache.items()]
        for start in range(0, len(rows), size):
            yield frames.dumps(rows[start : start + size])


def _entry(*parts: str) -> str:
    return frames.dumps(list(parts))


def _now_ms() -> int:
    return int(time.time() * 1000)
