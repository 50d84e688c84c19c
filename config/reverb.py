"""Revurb's configuration, documented: every key, the environment variable that sets it, its default.

This is the shape of Laravel Reverb's `config/reverb.php`. Copy it to `./reverb.config.py` (read
automatically, below the environment) or pass it with `revurb start --config config/reverb.py`.
`.toml` and `.json` files with the same nesting work too (without `env()`).

Precedence, highest first: command-line flags, `--config FILE`, environment variables (a `.env` in
the working directory included), `./reverb.config.py`, built-in defaults. Layers merge key by key;
the entries of `apps.apps` merge by position, and the `REVERB_APP_*` variables describe the first.
A value of `None` (an unset variable) leaves the key to the layers below. An empty variable counts
as unset.
"""

from revurb.config import env

config = {
    "servers": {
        "reverb": {
            # Interface to listen on. --host
            "host": env("REVERB_SERVER_HOST", "0.0.0.0"),
            # Port to listen on. --port
            "port": env("REVERB_SERVER_PORT", 8080),
            # Prefix for every route: `/ws` serves `/ws/app/{key}` and `/ws/apps/{id}/...`. --path
            "path": env("REVERB_SERVER_PATH", ""),
            # Host name clients use (banner, snippets); defaults to the interface, or localhost. --hostname
            "hostname": env("REVERB_HOST"),
            # Largest HTTP API request body, in bytes (413 above it).
            "max_request_size": env("REVERB_MAX_REQUEST_SIZE", 10_000),
            "options": {
                # Serve wss:// and https:// (uvicorn's ssl_certfile / ssl_keyfile / ssl_keyfile_password).
                # `cert` and `key` are accepted as aliases of `local_cert` and `local_pk`.
                "tls": {
                    "local_cert": env("REVERB_TLS_CERT"),  # --tls-cert
                    "local_pk": env("REVERB_TLS_KEY"),  # --tls-key; omit if the key is in local_cert
                    "passphrase": env("REVERB_TLS_PASSPHRASE"),  # --tls-passphrase
                },
            },
            "scaling": {
                # Share channels, presence and counts between processes through Redis.
                "enabled": env("REVERB_SCALING_ENABLED", False),
                # Bus stream and key prefix; clusters sharing one Redis use different ones.
                "channel": env("REVERB_SCALING_CHANNEL", "reverb"),
                # Seconds between node heartbeats; a dead node is swept within two of them.
                "heartbeat_interval": env("REVERB_SCALING_HEARTBEAT_INTERVAL", 10.0),
                # Publishes kept while Redis is unreachable; the oldest are dropped beyond this.
                "queue_size": env("REVERB_SCALING_QUEUE_SIZE", 10_000),
                # Bus history a node reads back after its link to Redis dropped: seconds and entries.
                "history_seconds": env("REVERB_SCALING_HISTORY_SECONDS", 60.0),
                "history_size": env("REVERB_SCALING_HISTORY_SIZE", 100_000),
                # Seconds Redis may leave a command unanswered before the link counts as down.
                "timeout": env("REVERB_SCALING_TIMEOUT", 3.0),
                "server": {
                    # `redis://` or `rediss://` URL; when set, it wins over host, port and database.
                    # `redis+sentinel://[user:password@]host:port,host:port/master[/db]` uses Sentinel.
                    "url": env("REDIS_URL"),
                    "host": env("REDIS_HOST", "127.0.0.1"),
                    "port": env("REDIS_PORT", 6379),
                    "username": env("REDIS_USERNAME"),
                    "password": env("REDIS_PASSWORD"),
                    "database": env("REDIS_DB", 0),
                    # Redis Sentinel: `host:port,host:port` of the sentinels, and the primary's name.
                    "sentinels": env("REDIS_SENTINELS"),
                    "sentinel_master": env("REDIS_SENTINEL_MASTER", "mymaster"),
                    "sentinel_password": env("REDIS_SENTINEL_PASSWORD"),
                },
            },
            # Log every frame in and out, with socket ids, on the `revurb.frames` logger. --debug
            "debug": env("REVERB_DEBUG", False),
            # Worker processes for `revurb start` on one port; more than one needs scaling. --workers
            "workers": env("REVERB_WORKERS", 1),
            # The pid file `revurb restart` signals (without scaling); default: <tmp>/revurb-<port>.pid.
            "pid_file": env("REVERB_PID_FILE"),
            # Seconds between a server's checks of Redis for `revurb restart` (with scaling).
            "restart_check_interval": env("REVERB_RESTART_CHECK_INTERVAL", 5.0),
            # Unsent bytes one socket may hold before it is closed as a slow consumer (code 4100).
            "max_pending_output": env("REVERB_MAX_PENDING_OUTPUT", 1_048_576),
            # Accept permessage-deflate from clients that offer it. Off by default: each socket then
            # costs ~45 KB more and each broadcast one compression per subscriber.
            "per_message_deflate": env("REVERB_PER_MESSAGE_DEFLATE", False),
            # Seconds between ping / prune sweeps; unset derives it from the apps' ping_interval.
            "sweep_interval": env("REVERB_SWEEP_INTERVAL"),
            # Serve with Revurb's own HTTP and WebSocket protocols (lean sockets, each broadcast
            # framed once); false serves through uvicorn's own layers and plain ASGI messages.
            "fast_path": env("REVURB_FAST_PATH", True),
            # Graceful drain on SIGTERM / SIGINT / `revurb restart`: readiness goes 503, listeners
            # close, every socket gets pusher:error 4200 and is closed, spread over `drain_window`
            # seconds; the process exits within `grace_period` seconds whatever is left.
            "drain_window": env("REVURB_DRAIN_WINDOW", 5.0),
            "grace_period": env("REVURB_GRACE_PERIOD", 20.0),
            # `text` for people, `json` (one object a line) for log shippers. --log-format
            "log_format": env("REVURB_LOG_FORMAT", "text"),
            # Prometheus metrics (docs/deploy.md): off unless enabled; on their own port (Soketi's
            # 9601) or, with port 0, at {path}/metrics on the main port behind the bearer token.
            "metrics": {
                "enabled": env("REVURB_METRICS", False),
                "host": env("REVURB_METRICS_HOST"),  # default: the server's host
                "port": env("REVURB_METRICS_PORT", 9601),
                "token": env("REVURB_METRICS_TOKEN"),  # `Authorization: Bearer <token>` if set
            },
            # What Revurb refuses at its own edge, and how long it waits (docs/security.md).
            "limits": {
                # Seconds to send a whole request head, a WebSocket handshake included; then 408
                # (or a silent close when nothing came). nginx's client_header_timeout is 60.
                "request_head_timeout": env("REVURB_REQUEST_HEAD_TIMEOUT", 20.0),
                # Seconds an HTTP keep-alive connection may sit idle between requests.
                "keep_alive_timeout": env("REVURB_KEEP_ALIVE_TIMEOUT", 5.0),
                # Header lines per request; more is answered 431.
                "max_headers": env("REVURB_MAX_HEADERS", 100),
                # Open WebSocket connections from one client address, per process (pusher:error
                # 4100, then close, above it); None for no cap. Behind a proxy, cap at the proxy.
                "max_connections_per_ip": env("REVURB_MAX_CONNECTIONS_PER_IP"),
            },
            # The live dashboard and debug console (docs/dashboard.md): off unless enabled, served
            # at {path}{dashboard path}. The secret logs in to every app; an app's key and secret
            # log in to that app alone. Enabling it without a secret stops startup.
            "dashboard": {
                "enabled": env("REVURB_DASHBOARD", False),
                "path": env("REVURB_DASHBOARD_PATH", "/dashboard"),
                "secret": env("REVURB_DASHBOARD_SECRET"),
                # Seconds between the figures each node shares through Redis (scaling on).
                "share_interval": env("REVURB_DASHBOARD_SHARE_INTERVAL", 1.0),
                # Debug console entries per second and app at most (the rest are counted, not shown).
                "console_rate": env("REVURB_DASHBOARD_CONSOLE_RATE", 100),
            },
            # How webhooks are sent (docs/webhooks.md); each app lists its own URLs (`webhooks`).
            "webhooks": {
                # Seconds events wait to go out together in one request.
                "batch_window": env("REVURB_WEBHOOK_BATCH_WINDOW", 0.05),
                # Seconds a failing request is retried (exponential backoff, jitter); then dropped.
                "retry_for": env("REVURB_WEBHOOK_RETRY_FOR", 300.0),
                # Events waiting per app and URL at most; newer ones are dropped (counted, logged).
                "queue_size": env("REVURB_WEBHOOK_QUEUE_SIZE", 10_000),
                # Seconds one request may take before it counts as failed.
                "timeout": env("REVURB_WEBHOOK_TIMEOUT", 10.0),
                # With scaling: seconds before another node takes over from a node that died while
                # delivering (one node delivers at a time, in the cluster's order).
                "claim_after": env("REVURB_WEBHOOK_CLAIM_AFTER", 10.0),
            },
        },
    },
    "apps": {
        # `config` serves the apps below. Any other value is an import path (`package.module:Name`)
        # of an AppProvider (async all / find_by_id / find_by_key): an instance, or a class or
        # function called with the Settings (or with nothing) that returns one.
        "provider": env("REVERB_APPS_PROVIDER", "config"),
        "apps": [
            {
                # Credentials; an app needs a key and a secret. The id defaults to the key here.
                # The Python `pusher` SDK only accepts numeric ids.
                "app_id": env("REVERB_APP_ID"),
                "key": env("REVERB_APP_KEY"),
                "secret": env("REVERB_APP_SECRET"),
                # Where clients reach the server when it differs (a proxy): banner and snippets only.
                # Reverb's `host` and `useTLS` are accepted too.
                "options": {
                    "port": env("REVERB_PORT"),
                    "scheme": env("REVERB_SCHEME"),  # http or https
                },
                # Origin host patterns allowed to connect (`*`, `example.com`, `*.example.com`);
                # in the environment, comma-separated.
                "allowed_origins": env("REVERB_ALLOWED_ORIGINS", ["*"]),
                # Seconds of client silence before the server pings (then prunes) a socket.
                "ping_interval": env("REVERB_APP_PING_INTERVAL", 60),
                # Seconds a client waits before pinging; sent in pusher:connection_established.
                "activity_timeout": env("REVERB_APP_ACTIVITY_TIMEOUT", 30),
                # Sockets allowed for the app (cluster-wide with scaling); None for no limit.
                "max_connections": env("REVERB_APP_MAX_CONNECTIONS"),
                # Largest frame a client may send, in bytes.
                "max_message_size": env("REVERB_APP_MAX_MESSAGE_SIZE", 10_000),
                # Who may send client-* events: members (subscribed sockets), all, or none.
                "accept_client_events_from": env("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", "members"),
                # Client events per socket: at most max_attempts per decay_seconds, else error 4301.
                "rate_limiting": {
                    "enabled": env("REVERB_APP_RATE_LIMITING_ENABLED", True),
                    "max_attempts": env("REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS", 10),
                    "decay_seconds": env("REVERB_APP_RATE_LIMIT_DECAY_SECONDS", 1.0),
                },
                # Send pusher_internal:subscription_count, at most once per interval per channel.
                "subscription_count": env("REVERB_APP_SUBSCRIPTION_COUNT", False),
                "subscription_count_interval": env("REVERB_APP_SUBSCRIPTION_COUNT_INTERVAL", 1.0),
                # Presence limits: members per channel, and bytes of one member's channel_data.
                "max_presence_members": env("REVERB_APP_MAX_PRESENCE_MEMBERS", 100),
                "max_presence_member_size": env("REVERB_APP_MAX_PRESENCE_MEMBER_SIZE", 2_048),
                # Largest `data` of an event sent through the HTTP API, in bytes (413 above it).
                "max_event_data_size": env("REVERB_APP_MAX_EVENT_DATA_SIZE", 10_240),
                # Webhook URLs (comma-separated in the environment), or tables (docs/webhooks.md):
                # {"url": "https://...", "event_types": ["channel_occupied", ...],
                #  "filter": {"channel_name_starts_with": "presence-", "channel_name_ends_with": "-chat"},
                #  "headers": {"Authorization": "Bearer ..."}}. URLs must be http:// or https://.
                "webhooks": env("REVERB_APP_WEBHOOKS", []),
                # Events the HTTP API accepts per second for this app (an event counts once per
                # channel; Soketi's max_backend_events_per_sec); over it, 429. Counted cluster-wide
                # with scaling. None for no limit.
                "max_backend_events_per_sec": env("REVERB_APP_MAX_BACKEND_EVENTS_PER_SEC"),
            },
        ],
    },
}
