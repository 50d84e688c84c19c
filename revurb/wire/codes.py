"""Pusher error codes (also the close codes of Pusher sockets) and the messages that go with them."""

from enum import IntEnum


class ErrorCode(IntEnum):
    """Codes carried by `pusher:error` frames and used as WebSocket close codes."""

    APP_NOT_FOUND = 4001
    APP_DISABLED = 4003
    OVER_QUOTA = 4004
    PATH_NOT_FOUND = 4005
    INVALID_VERSION_FORMAT = 4006
    UNSUPPORTED_PROTOCOL = 4007
    NO_PROTOCOL = 4008
    UNAUTHORIZED = 4009
    OVER_CAPACITY = 4100
    RECONNECT_NOW = 4200
    PONG_NOT_RECEIVED = 4201
    CLOSED_INACTIVE = 4202
    CLIENT_EVENT_REJECTED = 4301


# WebSocket close codes (1000-1015) are `revurb.transport.codec.CloseCode`.

APP_NOT_FOUND = "Application does not exist"
APP_OVER_QUOTA = "Application is over connection quota"
ORIGIN_NOT_ALLOWED = "Origin not allowed"
INVALID_MESSAGE = "Invalid message format"
UNAUTHORIZED = "Connection is unauthorized"
PONG_NOT_RECEIVED = "Pong reply not received in time"
SERVER_SHUTTING_DOWN = "Server is shutting down"
SLOW_CONSUMER = "Connection is not reading fast enough"
TOO_MANY_FROM_ADDRESS = "Too many connections from this address"
INVALID_VERSION_FORMAT = "Invalid version string format"
UNSUPPORTED_PROTOCOL = "Unsupported protocol version"
TERMINATED = "Connection terminated by the application"
CLIENT_EVENTS_DISABLED = "Client events are disabled for this application"
CLIENT_EVENT_RATE_LIMITED = "Client event rate limit reached"
CLIENT_EVENT_NOT_MEMBER = "Client event rejected: not subscribed to the channel"
CLIENT_EVENT_WRONG_CHANNEL = "Client event rejected: only supported on private and presence channels"
