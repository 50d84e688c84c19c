"""The protocol's entry points for a socket: open, each message, close. Errors become frames here."""

from __future__ import annotations

import logging

from revurb.apps import App
from revurb.channels.registry import Registry
from revurb.protocol import client_events, pusher_events
from revurb.wire import codes, frames
from revurb.wire.codes import ErrorCode
from revurb.wire.connection import Connection
from revurb.wire.errors import PusherError

logger = logging.getLogger("revurb.protocol")


class Dispatcher:
    """Turns client frames into actions on the app's channel manager."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def open(self, connection: Connection[App]) -> bool:
        """Admit a socket and greet it; refuses it (`OVER_QUOTA`, closed) when the app is over quota."""
        manager = self.registry.manager(connection.app)
        if not await manager.add(connection):
            self.fail(connection, PusherError(ErrorCode.OVER_QUOTA, codes.APP_OVER_QUOTA, True))
            return False
        manager.tally.opened += 1
        connection.send(frames.connection_established(connection.socket_id, connection.app.activity_timeout))
        return True

    async def message(self, connection: Connection[App], raw: str | bytes) -> None:
        """Handle one frame from a client. Nothing a client sends can raise out of here."""
        connection.touch()
        manager = self.registry.manager(connection.app)
        tally = manager.tally
        tally.frames_in += 1
        tally.bytes_in += len(raw)
        try:
            message = frames.parse_client_message(raw)
            event = message["event"]
            if event.startswith("pusher:"):
                await pusher_events.handle(connection, manager, message)
            elif event.startswith("client-"):
                client_events.relay(connection, manager, message)
                tally.client_events_in += 1
            else:
                raise PusherError(ErrorCode.RECONNECT_NOW, codes.INVALID_MESSAGE)
        except PusherError as failure:
            self.fail(connection, failure)
        except Exception:
            logger.exception("error handling a message from socket %s", connection.socket_id)
            self.fail(connection, PusherError(ErrorCode.RECONNECT_NOW, codes.INVALID_MESSAGE))

    async def close(self, connection: Connection[App]) -> None:
        """The socket is gone: leave its channels and uncount it."""
        connection.closed = True
        manager = self.registry.manager(connection.app)
        if connection.socket_id in manager.connections:
            manager.tally.count_close(connection.close_code)
        await manager.remove(connection)

    @staticmethod
    def fail(connection: Connection[App], failure: PusherError) -> None:
        connection.send(frames.error(failure.code, failure.message))
        if failure.close:
            connection.close(failure.code, failure.message)
