"""The channels and sockets of one app on this node, and the backend that makes them cluster-wide."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from revurb.apps import App
from revurb.channels import membership
from revurb.channels.channel import Channel
from revurb.channels.console import ConsoleTap
from revurb.channels.names import ChannelKind, kind_of, server_to_user_channel
from revurb.channels.presence import Member, presence_data
from revurb.channels.roster import PENDING
from revurb.channels.tally import AppTally
from revurb.scaling.base import Backend, BusMessage, Receipt, WebhookEvent
from revurb.wire import codes, frames
from revurb.wire.codes import ErrorCode
from revurb.wire.connection import Connection
from revurb.wire.errors import SubscriptionError

logger = logging.getLogger("revurb.channels")


class ChannelManager:
    """Subscribes sockets, delivers events locally and over the bus, keeps backend state current."""

    def __init__(self, app: App, backend: Backend) -> None:
        self.app = app
        self.backend = backend
        self.connections: dict[str, Connection[App]] = {}
        self.channels: dict[str, Channel] = {}
        #: Signed-in user id -> that user's sockets on this node.
        self.users: dict[str, set[Connection[App]]] = {}
        self._count_dirty: set[str] = set()
        self._count_flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.tally = AppTally()
        #: Set while a debug console watches this app (`server/dashboard/`); None costs nothing.
        self.console: ConsoleTap | None = None

    # Connections

    async def add(self, connection: Connection[App]) -> bool:
        """Admit a socket; False when the app is over its connection quota (cluster-wide)."""
        count = await self.backend.add_connection(self.app.id)
        limit = self.app.max_connections
        if limit is not None and count > limit:
            await self.backend.remove_connection(self.app.id)
            return False
        self.connections[connection.socket_id] = connection
        return True

    async def remove(self, connection: Connection[App]) -> None:
        """Forget a socket that has gone: leave its channels, uncount it."""
        if self.connections.pop(connection.socket_id, None) is None:
            return
        for name in list(connection.channels):
            await self.unsubscribe(connection, name)
        if connection.user_id is not None:
            sockets = self.users.get(connection.user_id)
            if sockets is not None:
                sockets.discard(connection)
                if not sockets:
                    del self.users[connection.user_id]
        await self.backend.remove_connection(self.app.id)

    def compact(self) -> None:
        """Rebuild the tables that grew with many sockets at the size they need now (they never shrink)."""
        self.connections = dict(self.connections)
        self.channels = dict(self.channels)
        self.users = dict(self.users)

    # Subscriptions

    async def subscribe(self, connection: Connection[App], name: str, member: Member | None) -> None:
        """Subscribe an authorised socket and answer it; presence and cache extras included."""
        kind = kind_of(name)
        channel = self.channels.get(name)
        if channel is not None and connection.socket_id in channel.subscribers:
            await self._succeeded(connection, channel, kind)
            return
        if member is not None:
            await self._check_presence_room(name, member)
            # Another socket may have created the channel while the roster was read.
            channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(name, kind)
        channel.subscribers[connection.socket_id] = connection
        connection.channels.add(name)
        if self.console is not None:
            self.console.subscribed(connection.socket_id, name)
        if kind.server_to_user:
            connection.send(frames.subscription_succeeded(name))
            return
        count = await self.backend.add_subscriber(self.app.id, name)
        if member is not None:
            socket_id = connection.socket_id
            channel.members[socket_id] = member.user_id
            if channel.roster is not None:
                channel.roster.ahead[socket_id] = PENDING  # no member event before its roster
            user_id, info = member.user_id, member.user_info
            if await self.backend.add_member(self.app.id, name, user_id, info, socket_id):
                membership.changed(channel, user_id, True, info, None, socket_id)
        await self._succeeded(connection, channel, kind)
        if member is None:
            # Both are off unless an app asks: checked here, as no call is cheaper than one per subscribe.
            if self.app.subscription_count:
                self._count_changed(channel)
            if self.app.webhooks:
                self._count_webhook(name, count)

    async def _check_presence_room(self, name: str, member: Member) -> None:
        members = await self.backend.members(self.app.id, name)
        if member.user_id not in members and len(members) >= self.app.max_presence_members:
            raise SubscriptionError(
                "LimitReached",
                "The maximum members per presence channel limit was reached",
                ErrorCode.OVER_CAPACITY,
            )

    async def _succeeded(self, connection: Connection[App], channel: Channel, kind: ChannelKind) -> None:
        data: dict[str, Any] | None = None
        if kind.presence:
            data = presence_data(
                await membership.roster_for(self.backend, self.app.id, connection.socket_id, channel)
            )
        connection.send(frames.subscription_succeeded(channel.name, data))
        if kind.cache:
            cached = await self.backend.cache_get(self.app.id, channel.name)
            connection.send(cached["frame"] if cached else frames.cache_miss(channel.name))
            if cached is None:
                self.webhook({"name": "cache_miss", "channel": channel.name})

    async def unsubscribe(self, connection: Connection[App], name: str) -> None:
        """Remove a socket from a channel; tells the others when a presence user has left."""
        channel = self.channels.get(name)
        connection.channels.discard(name)
        if channel is None or channel.subscribers.pop(connection.socket_id, None) is None:
            return
        if not channel.subscribers:
            del self.channels[name]
        if self.console is not None:
            self.console.unsubscribed(connection.socket_id, name)
        if channel.kind.server_to_user:
            return
        user_id = channel.members.pop(connection.socket_id, None)
        if user_id is not None:
            if channel.roster is not None:
                channel.roster.ahead.pop(connection.socket_id, None)
            if await self.backend.remove_member(self.app.id, name, user_id):
                membership.changed(channel, user_id, False, None, None, None)
        # After the member: a receiver hears `member_removed` before `channel_vacated`, as from Pusher.
        count = await self.backend.remove_subscriber(self.app.id, name)
        if user_id is None:
            if self.app.subscription_count:
                self._count_changed(channel)
            if self.app.webhooks:
                self._count_webhook(name, count)

    # Webhooks: the events this node alone sees (the backend records occupancy and membership)

    def webhook(self, event: WebhookEvent) -> None:
        """Record an event for the app's webhooks, if one of them wants it."""
        if any(hook.wants(event["name"], event["channel"]) for hook in self.app.webhooks):
            self.backend.webhook(self.app.id, event)

    def _count_webhook(self, name: str, count: int) -> None:
        """Called only when the app has webhooks: no event is built for nobody."""
        self.webhook({"name": "subscription_count", "channel": name, "subscription_count": count})

    # Users

    async def sign_in(self, connection: Connection[App], user_id: str) -> None:
        """Bind a socket to a user and to the user's `#server-to-user-` channel."""
        if connection.user_id is not None and connection.user_id != user_id:
            await self.unsubscribe(connection, server_to_user_channel(connection.user_id))
            self.users.get(connection.user_id, set()).discard(connection)
        connection.user_id = user_id
        self.users.setdefault(user_id, set()).add(connection)
        name = server_to_user_channel(user_id)
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(name, kind_of(name))
        channel.subscribers[connection.socket_id] = connection
        connection.channels.add(name)

    def terminate_user(self, user_id: str, publish: bool = True) -> None:
        """Close every socket of a signed-in user, on every node."""
        for connection in list(self.users.get(user_id, ())):
            connection.send(frames.error(ErrorCode.UNAUTHORIZED, codes.TERMINATED))
            connection.close(ErrorCode.UNAUTHORIZED, codes.TERMINATED)
        if publish:
            self.backend.publish({"type": "terminate", "app": self.app.id, "user_id": user_id})

    # Delivery

    def broadcast(self, name: str, frame: str, except_socket_id: str | None = None) -> Receipt:
        """Deliver an encoded frame to a channel's subscribers on every node, in the cluster's order.

        With a bus, this node's own subscribers get it from the bus too (see `Backend.publish`)."""
        message: BusMessage = {"type": "event", "app": self.app.id, "channel": name, "frame": frame}
        if except_socket_id is not None:
            message["except_socket_id"] = except_socket_id
        receipt = self.backend.publish(message)
        if receipt is None:
            channel = self.channels.get(name)
            if channel is not None:
                self._tally_sent(channel.send(frame, except_socket_id), len(frame), self.backend.node_id)
        return receipt

    def broadcast_event(
        self, name: str, event: str, data: str, except_socket_id: str | None = None
    ) -> Receipt:
        """`broadcast` an event's frame, encoded only if anyone may receive it: without a bus, only
        this node's subscribers can, and a channel nobody is subscribed to costs no JSON."""
        if not self.backend.has_bus and name not in self.channels:
            return None
        return self.broadcast(name, frames.event(event, name, data), except_socket_id)

    def deliver_local(self, message: BusMessage) -> None:
        """Apply a message from the bus to this node's sockets."""
        kind = message["type"]
        if kind == "terminate":
            self.terminate_user(message["user_id"], publish=False)
            return
        channel = self.channels.get(message["channel"])
        if channel is None:
            return
        if kind == "event":
            frame = message["frame"]
            sent = channel.send(frame, message.get("except_socket_id"))
            self._tally_sent(sent, len(frame), message.get("node", self.backend.node_id))
        elif kind == "count":
            if self.app.subscription_count:
                self._count_changed(channel, publish=False)
        elif kind == "member":
            membership.from_bus(channel, message)

    def _tally_sent(self, sent: int, size: int, origin: str) -> None:
        """Count deliveries by where the frame was published (this node, or another over the bus)."""
        tally = self.tally
        if origin == self.backend.node_id:
            tally.sent_local += sent
            tally.bytes_local += sent * size
        else:
            tally.sent_remote += sent
            tally.bytes_remote += sent * size

    async def reconcile(self) -> bool:
        """After an outage: tell this node's presence sockets what changed meanwhile (see
        `membership.reconcile`). False if some channel must be tried again later."""
        done = True
        for channel in list(self.channels.values()):
            if channel.roster is not None and channel.members:
                done = await membership.reconcile(self.backend, self.app.id, channel) and done
        return done

    # subscription_count, coalesced per channel

    def _count_changed(self, channel: Channel, publish: bool = True) -> None:
        """Called only when the app wants subscription counts (callers check: one per subscribe)."""
        if publish:  # the other nodes' subscribers of this channel need the new count too
            self.backend.publish({"type": "count", "app": self.app.id, "channel": channel.name})
        self._count_dirty.add(channel.name)
        if self._count_flush is None:
            loop = asyncio.get_running_loop()
            self._count_flush = loop.call_later(self.app.subscription_count_interval, self._flush_counts_soon)

    def _flush_counts_soon(self) -> None:
        task = asyncio.ensure_future(self._flush_counts())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        _log_failure(task)

    async def _flush_counts(self) -> None:
        self._count_flush = None
        dirty, self._count_dirty = self._count_dirty, set()
        for name in dirty:
            channel = self.channels.get(name)
            if channel is None:
                continue
            count = await self.backend.subscription_count(self.app.id, name)
            channel.send(frames.subscription_count(name, count))

    # Liveness

    def sweep(self, now: float | None = None) -> None:
        """Ping sockets that have been quiet for `ping_interval`; close those that never answered."""
        now = time.monotonic() if now is None else now
        interval = self.app.ping_interval
        for connection in list(self.connections.values()):
            if connection.pinged_at is not None:
                if now - connection.pinged_at >= interval:
                    connection.send(frames.error(ErrorCode.PONG_NOT_RECEIVED, codes.PONG_NOT_RECEIVED))
                    connection.close(ErrorCode.PONG_NOT_RECEIVED, codes.PONG_NOT_RECEIVED)
            elif now - connection.last_seen >= interval:
                connection.pinged_at = now
                connection.send(frames.PING)

    async def stop(self) -> None:
        """Cancel this manager's background work (pending subscription_count updates)."""
        if self._count_flush is not None:
            self._count_flush.cancel()
            self._count_flush = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def close_all(self, code: int, reason: str) -> None:
        """Tell every socket to reconnect (server shutdown)."""
        for connection in list(self.connections.values()):
            connection.send(frames.error(code, reason))
            connection.close(code, reason)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("subscription_count update failed", exc_info=task.exception())
