"""Configuration layers: a config file (`.py`, `.toml`, `.json`) or the environment, each flattened
to `{path: value}` in Reverb's nested shape, with a label per path for error messages."""

from __future__ import annotations

import contextlib
import contextvars
import os
import runpy
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from revurb.config.settings import ConfigError
from revurb.wire import frames

Key = str | int
ConfigPath = tuple[Key, ...]

APP = ("apps", "apps", 0)
SERVER = ("servers", "reverb")
SCALING = (*SERVER, "scaling")
REDIS = (*SCALING, "server")
TLS = (*SERVER, "options", "tls")
METRICS = (*SERVER, "metrics")
LIMITS = (*SERVER, "limits")
DASHBOARD = (*SERVER, "dashboard")
WEBHOOKS = (*SERVER, "webhooks")

#: Environment variable -> where it lands in the nested configuration (Reverb's names first).
ENV_PATHS: dict[str, ConfigPath] = {
    "REVERB_APP_ID": (*APP, "app_id"),
    "REVERB_APP_KEY": (*APP, "key"),
    "REVERB_APP_SECRET": (*APP, "secret"),
    "REVERB_ALLOWED_ORIGINS": (*APP, "allowed_origins"),
    "REVERB_APP_PING_INTERVAL": (*APP, "ping_interval"),
    "REVERB_APP_ACTIVITY_TIMEOUT": (*APP, "activity_timeout"),
    "REVERB_APP_MAX_CONNECTIONS": (*APP, "max_connections"),
    "REVERB_APP_MAX_MESSAGE_SIZE": (*APP, "max_message_size"),
    "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": (*APP, "accept_client_events_from"),
    "REVERB_APP_RATE_LIMITING_ENABLED": (*APP, "rate_limiting", "enabled"),
    "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": (*APP, "rate_limiting", "max_attempts"),
    "REVERB_APP_RATE_LIMIT_DECAY_SECONDS": (*APP, "rate_limiting", "decay_seconds"),
    "REVERB_APP_SUBSCRIPTION_COUNT": (*APP, "subscription_count"),
    "REVERB_APP_SUBSCRIPTION_COUNT_INTERVAL": (*APP, "subscription_count_interval"),
    "REVERB_APP_MAX_PRESENCE_MEMBERS": (*APP, "max_presence_members"),
    "REVERB_APP_MAX_PRESENCE_MEMBER_SIZE": (*APP, "max_presence_member_size"),
    "REVERB_APP_MAX_EVENT_DATA_SIZE": (*APP, "max_event_data_size"),
    "REVERB_APP_WEBHOOKS": (*APP, "webhooks"),
    "REVERB_APP_MAX_BACKEND_EVENTS_PER_SEC": (*APP, "max_backend_events_per_sec"),
    "REVERB_APPS_PROVIDER": ("apps", "provider"),
    "REVERB_SERVER_HOST": (*SERVER, "host"),
    "REVERB_SERVER_PORT": (*SERVER, "port"),
    "REVERB_SERVER_PATH": (*SERVER, "path"),
    "REVERB_HOST": (*SERVER, "hostname"),
    "REVERB_PORT": (*APP, "options", "port"),
    "REVERB_SCHEME": (*APP, "options", "scheme"),
    "REVERB_MAX_REQUEST_SIZE": (*SERVER, "max_request_size"),
    "REVERB_SCALING_ENABLED": (*SCALING, "enabled"),
    "REVERB_SCALING_CHANNEL": (*SCALING, "channel"),
    "REVERB_SCALING_HEARTBEAT_INTERVAL": (*SCALING, "heartbeat_interval"),
    "REVERB_SCALING_QUEUE_SIZE": (*SCALING, "queue_size"),
    "REVERB_SCALING_HISTORY_SECONDS": (*SCALING, "history_seconds"),
    "REVERB_SCALING_HISTORY_SIZE": (*SCALING, "history_size"),
    "REVERB_SCALING_TIMEOUT": (*SCALING, "timeout"),
    "REDIS_URL": (*REDIS, "url"),
    "REDIS_HOST": (*REDIS, "host"),
    "REDIS_PORT": (*REDIS, "port"),
    "REDIS_USERNAME": (*REDIS, "username"),
    "REDIS_PASSWORD": (*REDIS, "password"),
    "REDIS_DB": (*REDIS, "database"),
    "REDIS_SENTINELS": (*REDIS, "sentinels"),
    "REDIS_SENTINEL_MASTER": (*REDIS, "sentinel_master"),
    "REDIS_SENTINEL_PASSWORD": (*REDIS, "sentinel_password"),
    "REVERB_TLS_CERT": (*TLS, "local_cert"),
    "REVERB_TLS_KEY": (*TLS, "local_pk"),
    "REVERB_TLS_PASSPHRASE": (*TLS, "passphrase"),
    "REVERB_DEBUG": (*SERVER, "debug"),
    "REVERB_WORKERS": (*SERVER, "workers"),
    "REVERB_PID_FILE": (*SERVER, "pid_file"),
    "REVERB_RESTART_CHECK_INTERVAL": (*SERVER, "restart_check_interval"),
    "REVERB_MAX_PENDING_OUTPUT": (*SERVER, "max_pending_output"),
    "REVERB_PER_MESSAGE_DEFLATE": (*SERVER, "per_message_deflate"),
    "REVERB_SWEEP_INTERVAL": (*SERVER, "sweep_interval"),
    "REVURB_FAST_PATH": (*SERVER, "fast_path"),
    "REVURB_DRAIN_WINDOW": (*SERVER, "drain_window"),
    "REVURB_GRACE_PERIOD": (*SERVER, "grace_period"),
    "REVURB_LOG_FORMAT": (*SERVER, "log_format"),
    "REVURB_METRICS": (*METRICS, "enabled"),
    "REVURB_METRICS_HOST": (*METRICS, "host"),
    "REVURB_METRICS_PORT": (*METRICS, "port"),
    "REVURB_METRICS_TOKEN": (*METRICS, "token"),
    "REVURB_REQUEST_HEAD_TIMEOUT": (*LIMITS, "request_head_timeout"),
    "REVURB_KEEP_ALIVE_TIMEOUT": (*LIMITS, "keep_alive_timeout"),
    "REVURB_MAX_HEADERS": (*LIMITS, "max_headers"),
    "REVURB_MAX_CONNECTIONS_PER_IP": (*LIMITS, "max_connections_per_ip"),
    "REVURB_DASHBOARD": (*DASHBOARD, "enabled"),
    "REVURB_DASHBOARD_PATH": (*DASHBOARD, "path"),
    "REVURB_DASHBOARD_SECRET": (*DASHBOARD, "secret"),
    "REVURB_DASHBOARD_SHARE_INTERVAL": (*DASHBOARD, "share_interval"),
    "REVURB_DASHBOARD_CONSOLE_RATE": (*DASHBOARD, "console_rate"),
    "REVURB_WEBHOOK_BATCH_WINDOW": (*WEBHOOKS, "batch_window"),
    "REVURB_WEBHOOK_RETRY_FOR": (*WEBHOOKS, "retry_for"),
    "REVURB_WEBHOOK_QUEUE_SIZE": (*WEBHOOKS, "queue_size"),
    "REVURB_WEBHOOK_TIMEOUT": (*WEBHOOKS, "timeout"),
    "REVURB_WEBHOOK_CLAIM_AFTER": (*WEBHOOKS, "claim_after"),
}

#: Short names accepted in files, stored under the full name so layers override each other.
_ALIASES: dict[ConfigPath, ConfigPath] = {
    (*TLS, "cert"): (*TLS, "local_cert"),
    (*TLS, "key"): (*TLS, "local_pk"),
}

#: The file `revurb start` also reads, below the environment, when it exists.
LOCAL_CONFIG = "reverb.config.py"
SUPPORTED_SUFFIXES = (".py", ".toml", ".json")


@dataclass
class Layer:
    """One source of configuration: flat values and, per path, the name to show in errors."""

    values: dict[ConfigPath, object] = field(default_factory=dict)
    labels: dict[ConfigPath, str] = field(default_factory=dict)

    def override(self, other: Layer) -> Layer:
        """This layer with `other`'s values on top."""
        return Layer({**self.values, **other.values}, {**self.labels, **other.labels})


def dotted(path: ConfigPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def env_layer(env: Mapping[str, str]) -> Layer:
    """The environment's Reverb variables; empty values count as unset (as Laravel's `env()`)."""
    layer = Layer()
    for name, path in ENV_PATHS.items():
        raw = env.get(name)
        if raw is not None and raw.strip():
            layer.values[path] = raw
            layer.labels[path] = name
    return layer


def mapping_layer(config: Mapping[str, object], source: str) -> Layer:
    """A nested configuration (Reverb's shape) flattened; lists are values except `apps.apps`."""
    layer = Layer()
    _flatten(config, (), layer, source)
    return layer


def _flatten(node: Mapping[str, object], prefix: ConfigPath, layer: Layer, source: str) -> None:
    for key, value in node.items():
        if not isinstance(key, str):
            raise ConfigError(f"{dotted(prefix) or 'the top level'} in {source}: keys must be strings")
        written: ConfigPath = (*prefix, key)
        path = _ALIASES.get(written, written)
        if len(prefix) == 3 and prefix[:2] == ("apps", "apps") and key == "id":
            path = (*prefix, "app_id")
        if value is None:
            continue  # unset, as `env('X')` without a default: the layers below decide
        if path == ("apps", "apps"):
            if not isinstance(value, list | tuple):
                raise ConfigError(f"apps.apps in {source} must be a list of apps, got {value!r}")
            for index, app in enumerate(value):
                if not isinstance(app, Mapping):
                    raise ConfigError(f"apps.apps[{index}] in {source} must be a table of options")
                _flatten(app, (*path, index), layer, source)
        elif isinstance(value, Mapping):
            _flatten(value, path, layer, source)
        else:
            layer.values[path] = value
            layer.labels[path] = f"{dotted(written)} (in {source})"


_loading_env: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "revurb_config_env", default=None
)


def env(name: str, default: object = None) -> object:
    """For `.py` config files, like Laravel's `env()`: the variable (from `.env` and the process
    environment, as the loader sees them), or `default` when it is unset or empty."""
    source = _loading_env.get()
    raw = (source if source is not None else os.environ).get(name)
    return raw if raw is not None and raw != "" else default


@contextlib.contextmanager
def _env_for_files(environment: Mapping[str, str]) -> Iterator[None]:
    token = _loading_env.set(environment)
    try:
        yield
    finally:
        _loading_env.reset(token)


def read_file(path: Path, environment: Mapping[str, str]) -> Mapping[str, object]:
    """The nested configuration a file holds: `config` of a `.py` file, or a `.toml` / `.json` document."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ConfigError(f"config file {path} must end in one of {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        if suffix == ".py":
            with _env_for_files(environment):
                namespace = runpy.run_path(str(path), run_name="revurb_config")
            config = namespace.get("config")
        elif suffix == ".toml":
            with path.open("rb") as handle:
                config = tomllib.load(handle)
        else:
            config = frames.loads(path.read_bytes())
    except ConfigError:
        raise
    except (OSError, SyntaxError, tomllib.TOMLDecodeError, frames.JSONDecodeError) as error:
        raise ConfigError(f"config file {path} cannot be read: {error}") from None
    except Exception as error:  # a `.py` config raised: report it as a config problem, not a crash
        raise ConfigError(f"config file {path} failed: {type(error).__name__}: {error}") from None
    if not isinstance(config, Mapping):
        what = "define a dict named `config`" if suffix == ".py" else "hold an object at the top level"
        raise ConfigError(f"config file {path} must {what}")
    return config


def file_layer(path: Path, environment: Mapping[str, str]) -> Layer:
    return mapping_layer(read_file(path, environment), path.name)
