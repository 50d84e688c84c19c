"""Where Redis is, and the clients that reach it: one URL, host and port, or Redis Sentinel.

Clients never retry on their own (the backend's loops reconnect with backoff) and never wait
longer than `timeout` for an answer, so a link that went silent is an outage within seconds.
With Sentinel, every new connection asks the sentinels for the current primary, so a failover is
followed by the backend's next reconnect.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.sentinel
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from revurb.config.settings import ScalingSettings

CONNECT_TIMEOUT = 2.0
SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_MASTER = "mymaster"


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Where Redis is and how this node behaves in the cluster."""

    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 6379
    username: str | None = None
    password: str | None = None
    db: int = 0
    #: Sentinels as (host, port); when given, the primary named `sentinel_master` is used.
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = DEFAULT_MASTER
    sentinel_password: str | None = None
    #: Bus stream and key prefix; clusters sharing one Redis use different ones.
    prefix: str = "reverb"
    #: Seconds between heartbeats; a dead node is swept within two of them.
    heartbeat_interval: float = 10.0
    #: Publishes kept while Redis is unreachable; the oldest are dropped beyond this.
    queue_size: int = 10_000
    #: How far back the bus keeps history, for a node that lost its link: seconds and entries.
    history_seconds: float = 60.0
    history_size: int = 100_000
    #: Seconds Redis may stay silent before the link counts as down.
    timeout: float = 3.0


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` (port 26379 when left out) as (host, port) pairs."""
    found = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
        if port and not port.isdigit():
            raise ValueError(f"{part!r} is not host:port")
        found.append((host or "127.0.0.1", int(port) if port else DEFAULT_SENTINEL_PORT))
    return tuple(found)


def from_sentinel_url(url: str, options: RedisOptions) -> RedisOptions:
    """`redis+sentinel://[user:password@]host:port[,host:port...]/master[/db]` applied to `options`."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    user, _, password = credentials.partition(":")
    path = [unquote(piece) for piece in parts.path.split("/") if piece]
    return dataclasses.replace(
        options,
        url=None,
        sentinels=parse_sentinels(hosts),
        sentinel_master=path[0] if path else options.sentinel_master,
        db=int(path[1]) if len(path) > 1 else options.db,
        username=unquote(user) or options.username,
        password=unquote(password) or options.password,
    )


def options_from(scaling: ScalingSettings) -> RedisOptions:
    """The options `scaling` settings describe (the backend's and `revurb restart`'s)."""
    return resolve(
        RedisOptions(
            url=scaling.redis_url,
            host=scaling.redis_host,
            port=scaling.redis_port,
            username=scaling.redis_username,
            password=scaling.redis_password,
            db=scaling.redis_db,
            sentinels=scaling.redis_sentinels,
            sentinel_master=scaling.redis_sentinel_master,
            sentinel_password=scaling.redis_sentinel_password,
            prefix=scaling.channel,
            heartbeat_interval=scaling.heartbeat_interval,
            queue_size=scaling.queue_size,
            history_seconds=scaling.history_seconds,
            history_size=scaling.history_size,
            timeout=scaling.redis_timeout,
        )
    )


def connect_sync(options: RedisOptions) -> redis.Redis:
    """A blocking client for one-off commands (`revurb restart`): the primary, however it is named."""
    if options.sentinels:
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(options.sentinels),
            sentinel_kwargs={"password": options.sentinel_password, "socket_timeout": CONNECT_TIMEOUT},
            socket_timeout=options.timeout,
        )
        primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            options.sentinel_master, username=options.username, password=options.password, db=options.db
        )
        return primary
    if options.url:
        return redis.Redis.from_url(options.url, socket_timeout=options.timeout)
    return redis.Redis(
        host=options.host,
        port=options.port,
        username=options.username,
        password=options.password,
        db=options.db,
        socket_timeout=options.timeout,
    )


def resolve(options: RedisOptions) -> RedisOptions:
    """Options with a `redis+sentinel://` URL turned into sentinels, master and database."""
    if options.url and options.url.startswith(SENTINEL_SCHEME + "://"):
        return from_sentinel_url(options.url, options)
    return options


def connect(options: RedisOptions, socket_timeout: float | None, name: str) -> Redis:
    """A client for `options`; failures surface at once (the backend reconnects with backoff)."""
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": socket_timeout,
        "socket_keepalive": True,
        # Our own loops reconnect with backoff; redis-py's retries would only hide a fault.
        "retry": Retry(NoBackoff(), 0),
        "client_name": name,
    }
    if options.sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(options.sentinels),
            sentinel_kwargs={
                "password": options.sentinel_password,
                "socket_connect_timeout": CONNECT_TIMEOUT,
                "socket_timeout": CONNECT_TIMEOUT,
            },
        )
        client: Redis = sentinel.master_for(
            options.sentinel_master,
            username=options.username,
            password=options.password,
            db=options.db,
            **common,
        )
        return client
    if options.url:
        return Redis.from_url(options.url, **common)
    return Redis(
        host=options.host,
        port=options.port,
        username=options.username,
        password=options.password,
        db=options.db,
        **common,
    )
