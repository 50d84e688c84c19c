"""The immutable settings objects the server runs on; built once at the edge and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from revurb.apps import App

Scheme = Literal["http", "https"]
SCHEMES: tuple[Scheme, ...] = ("http", "https")
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
#: Soketi's metrics port, the default of `REVURB_METRICS_PORT`; 0 serves `{path}/metrics` on the main port.
METRICS_PORT = 9601
#: Where the dashboard is served below the server's `path`, unless configured otherwise.
DASHBOARD_PATH = "/dashboard"


class ConfigError(ValueError):
    """Invalid configuration; the message names the key and what it accepts."""


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """A certificate for `wss://`, served by uvicorn (Reverb's `options.tls`)."""

    cert: str | None = None
    key: str | None = None
    passphrase: str | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.cert is not None


@dataclass(frozen=True, slots=True)
class ScalingSettings:
    """Redis scaling: off by default (one process, in-memory)."""

    enabled: bool = False
    channel: str = "reverb"
    redis_url: str | None = field(default=None, repr=False)
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_username: str | None = None
    redis_password: str | None = field(default=None, repr=False)
    redis_db: int = 0
    #: Seconds between node heartbeats; a dead node's users are removed within two of them.
    heartbeat_interval: float = 10.0
    #: Bus messages kept while Redis is unreachable; beyond this the oldest are dropped.
    queue_size: int = 10_000
    #: Redis Sentinel: (host, port) of each sentinel; when set, the primary named
    #: `redis_sentinel_master` is used and followed through failovers.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: str | None = field(default=None, repr=False)
    #: How far back the bus keeps history for a node whose link dropped: seconds, and entries.
    history_seconds: float = 60.0
    history_size: int = 100_000
    #: Seconds Redis may leave a command unanswered before the link counts as down.
    redis_timeout: float = 3.0

    def url(self) -> str:
        """The Redis URL: `redis_url` if given, else one built from the host, port and database."""
        if self.redis_url:
            return self.redis_url
        return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}"


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus metrics: off by default; on their own port, or on the main port behind a token."""

    enabled: bool = False
    #: Interface of the metrics port; None means the server's own `host`.
    host: str | None = None
    #: 0 serves `{path}/metrics` on the main port, which then needs `token`.
    port: int = METRICS_PORT
    #: Bearer token a scrape must send (`Authorization: Bearer ...`); None asks for none.
    token: str | None = field(default=None, repr=False)
    #: Where `--workers` processes leave their counts for the supervisor (set by `revurb start`).
    directory: str | None = None

    @property
    def on_main_port(self) -> bool:
        return self.enabled and self.port == 0


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """What Revurb refuses at its own edge, and how long it waits (docs/security.md)."""

    #: Seconds a connection may take to send a whole request head, a WebSocket handshake included
    #: (nginx's `client_header_timeout` is 60); then 408, or a silent close if nothing came.
    request_head_timeout: float = 20.0
    #: Seconds an HTTP keep-alive connection may sit idle between requests (uvicorn's default).
    keep_alive_timeout: float = 5.0
    #: Header lines per request head; more is answered 431.
    max_headers: int = 100
    #: Open WebSocket connections from one client address, per server process; None: no cap.
    max_connections_per_ip: int | None = None


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """The live dashboard and debug console (docs/dashboard.md): off by default, always behind a login."""

    enabled: bool = False
    #: Served at `{path}{dashboard path}`.
    path: str = DASHBOARD_PATH
    #: Logs in to every app's view; an app's key and secret log in to that app's alone.
    secret: str | None = field(default=None, repr=False)
    #: Seconds between the summaries each node shares through Redis (with scaling on).
    share_interval: float = 1.0
    #: Debug console entries per second and app at most; beyond it entries are counted, not shown.
    console_rate: int = 100


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """How webhooks are sent (docs/webhooks.md); which URLs get them is per app."""

    #: Seconds events wait to be sent together in one request (Pusher batches them too).
    batch_window: float = 0.05
    #: Seconds a failing request is retried, with exponential backoff, before its events are dropped.
    retry_for: float = 300.0
    #: Events waiting per app and URL at most; beyond it new ones are dropped (counted and logged).
    queue_size: int = 10_000
    #: Seconds one request may take (connect, send, answer) before it counts as failed.
    timeout: float = 10.0
    #: With scaling: seconds after which another node takes over from a node that stopped
    #: delivering (died): its lease to deliver, and the events it had not delivered. A live node
    #: renews both well within this.
    claim_after: float = 10.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs, resolved from config files, environment and defaults."""

    apps: tuple[App, ...] = ()
    host: str = "0.0.0.0"
    port: int = 8080
    path: str = ""
    hostname: str | None = None
    max_request_size: int = 10_000
    scaling: ScalingSettings = ScalingSettings()
    tls: TLSSettings = TLSSettings()
    #: Import path of the app provider (`module:attribute`); None means the apps listed here.
    app_provider: str | None = None
    debug: bool = False
    #: Where clients reach the server when it differs (a proxy): REVERB_HOST, REVERB_PORT, REVERB_SCHEME.
    client_port: int | None = None
    client_scheme: Scheme | None = None
    #: uvicorn worker processes for `revurb start`; more than one needs scaling.
    workers: int = 1
    #: The file `revurb restart` reads the pid to signal from; None writes none.
    pid_file: str | None = None
    #: How often a server with scaling on checks Redis for a `revurb restart`, in seconds.
    restart_check_interval: float = 5.0
    #: The process a restart signals (the `--workers` supervisor); None means this process.
    signal_pid: int | None = None
    #: Unsent bytes a socket may hold before it is closed as a slow consumer (`ErrorCode.OVER_CAPACITY`).
    max_pending_output: int = 1_048_576
    #: Accept permessage-deflate offers. Off: compression costs every socket its own zlib contexts
    #: (~45 KB) and every broadcast one compression per subscriber (see docs/configuration.md).
    per_message_deflate: bool = False
    #: How often the ping / prune sweep runs, in seconds (0 derives it from the apps' ping_interval).
    sweep_interval: float = 0.0
    #: `revurb start` serves with Revurb's own HTTP and WebSocket protocols (lean sockets, frames
    #: encoded once per broadcast); off, uvicorn's own layers serve plain ASGI messages.
    fast_path: bool = True
    #: Seconds over which a draining server closes its sockets (4200), so clients do not all
    #: reconnect in the same millisecond.
    drain_window: float = 5.0
    #: Seconds a draining server may take in all before it exits, sockets still open or not.
    grace_period: float = 20.0
    #: `text` (for people) or `json` (one object a line, for log shippers).
    log_format: LogFormat = "text"
    metrics: MetricsSettings = MetricsSettings()
    limits: LimitSettings = LimitSettings()
    dashboard: DashboardSettings = DashboardSettings()
    webhooks: WebhookSettings = WebhookSettings()


def normalise_path(path: str) -> str:
    """`/ws/` and `ws` both become `/ws`; empty stays empty."""
    stripped = path.strip().strip("/")
    return f"/{stripped}" if stripped else ""
