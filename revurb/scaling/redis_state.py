"""Cluster state in Redis: counts, presence rosters and cache payloads, with this node's mirror.

Every change is applied to the `Mirror` first, under one lock, then to Redis by an atomic Lua
script (see `lua.py` for the keys). While Redis is unreachable, changes and reads are answered
from the mirror, and the backend re-asserts the mirror once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from revurb.scaling import bus, lua, lua_presence
from revurb.scaling.base import CACHE_TTL_SECONDS, NO_VERSION, Backend, CachedEvent, Roster
from revurb.scaling.connect import RedisOptions, connect, resolve
from revurb.scaling.mirror import Mirror
from revurb.wire import frames

logger = logging.getLogger("revurb.scaling")

#: What a lost, refused or silent Redis connection raises.
FAULTS = (RedisError, OSError, TimeoutError)


class RedisState(Backend):
    """The state half of the Redis backend; `RedisBackend` adds the bus and liveness."""

    def __init__(self, options: RedisOptions) -> None:
        super().__init__()
        options = resolve(options)
        self.options = options
        self.prefix = options.prefix
        self._cmd = connect(options, options.timeout, f"revurb-{self.node_id}")
        register = self._cmd.register_script
        self._connection = register(lua.CONNECTION)
        self._subscription = register(lua.SUBSCRIPTION)
        self._member_add = register(lua_presence.MEMBER_ADD)
        self._member_remove = register(lua_presence.MEMBER_REMOVE)
        self._mirror = Mirror()
        #: Serialises state changes with re-asserts, so none is counted twice or lost.
        self._state_lock = asyncio.Lock()
        self._healthy = False
        self._index = f"{self.prefix}:index:{self.node_id}"
        self._bus_max = options.history_size

    def _failed(self, where: str, error: BaseException) -> None:
        """Redis did not answer: serve from the mirror until the backend recovers."""
        if self._healthy:
            logger.warning(
                "Redis unreachable (%s: %s): delivering locally, queueing publishes", where, error or "lost"
            )
        self._healthy = False

    async def _state(self, call: Callable[[], Awaitable[Any]], fallback: int) -> int:
        """Apply a state change in Redis; while Redis is unreachable, answer from the mirror."""
        if not self._healthy:
            return fallback
        try:
            return int(await call())
        except FAULTS as error:
            self._failed("state", error)
            return fallback

    async def _announce_here(self, call: Callable[[], Awaitable[Any]], local: bool) -> bool:
        """Run a presence script (it announces any change on the bus itself); while Redis is
        unreachable, the change this node sees (`local`) is for the caller to announce here."""
        if not self._healthy:
            return local
        try:
            await call()
        except FAULTS as error:
            self._failed("state", error)
            return local
        return False

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _query(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run one command; None when Redis is unreachable (the caller answers from the mirror)."""
        if not self._healthy:
            return None
        try:
            return await call()
        except FAULTS as error:
            self._failed("read", error)
            return None

    async def add_connection(self, app_id: str) -> int:
        return await self._count_connection(app_id, 1)

    async def remove_connection(self, app_id: str) -> None:
        await self._count_connection(app_id, -1)

    async def _count_connection(self, app_id: str, delta: int) -> int:
        async with self._state_lock:
            local = self._mirror.add_connection(app_id, delta)
            keys = [self._key("conn", app_id), self._index]
            entry = frames.dumps(["c", app_id])
            return await self._state(
                lambda: self._connection(keys=keys, args=[self.node_id, entry, delta]), local
            )

    async def connection_count(self, app_id: str) -> int:
        counts = await self._query(lambda: self._cmd.hvals(self._key("conn", app_id)))
        if counts is None:
            return self._mirror.connections.get(app_id, 0)
        return sum(int(count) for count in counts)

    async def add_subscriber(self, app_id: str, channel: str) -> int:
        return await self._count_subscriber(app_id, channel, 1)

    async def remove_subscriber(self, app_id: str, channel: str) -> int:
        return await self._count_subscriber(app_id, channel, -1)

    async def _count_subscriber(self, app_id: str, channel: str, delta: int) -> int:
        async with self._state_lock:
            local = self._mirror.add_subscriber(app_id, channel, delta)
            keys = [self._key("subs", app_id, channel), self._key("channels", app_id), self._index]
            args: list[str | int] = [self.node_id, frames.dumps(["s", app_id, channel]), delta, channel]
            args += [self.prefix, app_id]
            return await self._state(lambda: self._subscription(keys=keys, args=args), local)

    async def subscription_count(self, app_id: str, channel: str) -> int:
        counts = await self._query(lambda: self._cmd.hvals(self._key("subs", app_id, channel)))
        if counts is None:
            return self._mirror.subscriptions.get(app_id, {}).get(channel, 0)
        return sum(int(count) for count in counts)

    async def occupied_channels(self, app_id: str) -> dict[str, int]:
        names = await self._query(lambda: self._cmd.smembers(self._key("channels", app_id)))
        if names is None:
            return dict(self._mirror.subscriptions.get(app_id, {}))
        names = sorted(names)
        try:
            async with self._cmd.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hvals(self._key("subs", app_id, name))
                counts = await pipe.execute()
        except FAULTS as error:
            self._failed("read", error)
            return dict(self._mirror.subscriptions.get(app_id, {}))
        totals = {name: sum(int(c) for c in values) for name, values in zip(names, counts, strict=True)}
        return {name: total for name, total in totals.items() if total > 0}

    def _presence_keys(self, app_id: str, channel: str) -> list[str]:
        base = self._key("presence", app_id, channel)
        return [f"{base}:users", f"{base}:totals", f"{base}:node:{self.node_id}", self._index]

    def _change(self, app_id: str, channel: str, user_id: str, socket_id: str | None, frame: str) -> str:
        """The bus payload of a membership change, for the script to append if it makes one."""
        header: dict[str, Any] = {"type": "member", "app": app_id, "channel": channel, "user_id": user_id}
        header["added"] = socket_id is not None
        if socket_id is not None:
            header["except_socket_id"] = socket_id  # the joining socket has itself in its roster
        return bus.encode(header, frame)

    async def add_member(
        self, app_id: str, channel: str, user_id: str, user_info: Any, socket_id: str
    ) -> bool:
        async with self._state_lock:
            # While Redis is down, a user new to this node is announced here only (see reconcile).
            local = self._mirror.add_member(app_id, channel, user_id, user_info)
            change = self._change(
                app_id, channel, user_id, socket_id, frames.member_added(channel, user_id, user_info)
            )
            args: list[str | int] = [frames.dumps(["p", app_id, channel]), user_id, frames.dumps(user_info)]
            args += [self.prefix, self._bus_max, app_id, channel, change]
            keys = self._presence_keys(app_id, channel)
            return await self._announce_here(lambda: self._member_add(keys=keys, args=args), local)

    async def remove_member(self, app_id: str, channel: str, user_id: str) -> bool:
        async with self._state_lock:
            local = self._mirror.remove_member(app_id, channel, user_id)
            change = self._change(app_id, channel, user_id, None, frames.member_removed(channel, user_id))
            args: list[str | int] = [frames.dumps(["p", app_id, channel]), user_id, self.prefix]
            args += [self._bus_max, app_id, channel, change]
            keys = self._presence_keys(app_id, channel)
            return await self._announce_here(lambda: self._member_remove(keys=keys, args=args), local)

    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        roster = await self._query(lambda: self._cmd.hgetall(self._key("presence", app_id, channel, "users")))
        if roster is None:
            return self._mirror.roster(app_id, channel)
        return {user_id: frames.loads(info) for user_id, info in roster.items()}

    async def roster(self, app_id: str, channel: str) -> Roster | None:
        base = self._key("presence", app_id, channel)

        async def read() -> list[Any]:
            async with self._cmd.pipeline(transaction=True) as pipe:
                pipe.hgetall(f"{base}:users")
                pipe.get(f"{base}:version")
                return await pipe.execute()

        found = await self._query(read)
        if found is None:
            return None
        users, version = found
        decoded = {user_id: frames.loads(info) for user_id, info in users.items()}
        return Roster(decoded, bus.parse_id(version) if version else NO_VERSION)

    async def cache_put(self, app_id: str, channel: str, frame: str) -> None:
        ttl_ms: int = CACHE_TTL_SECONDS * 1000
        self._mirror.put_cache(app_id, channel, frame, ttl_ms)
        await self._query(lambda: self._cmd.set(self._key("cache", app_id, channel), frame, px=ttl_ms))

    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None:
        key = self._key("cache", app_id, channel)
        found: tuple[str, int] | None = None
        if self._healthy:
            try:
                async with self._cmd.pipeline(transaction=False) as pipe:
                    pipe.get(key)
                    pipe.pttl(key)
                    frame, ttl_ms = await pipe.execute()
                found = (frame, int(ttl_ms)) if frame is not None else None
            except FAULTS as error:
                self._failed("read", error)
                found = self._mirror.get_cache(app_id, channel)
        else:
            found = self._mirror.get_cache(app_id, channel)
        if found is None:
            return None
        return {"frame": found[0], "ttl": max(0, found[1] // 1000)}
