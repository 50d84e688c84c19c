"""Merged configuration layers -> `Settings`, checking every value and rejecting unknown keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from revurb.apps import CLIENT_EVENTS_FROM, App, Webhook, import_provider
from revurb.configuration import values as v
from revurb.configuration.settings import SCHEMES, ConfigError, ScalingSettings, Settings, TLSSettings
from revurb.configuration.sources import (
    APP,
    ENV_PATHS,
    REDIS,
    SCALING,
    SERVER,
    TLS,
    ConfigPath,
    Layer,
    dotted,
)

T = TypeVar("T")

#: Keys of Reverb's config that Revurb accepts and has no use for.
IGNORED: tuple[ConfigPath, ...] = (
    ("default",),
    (*SERVER, "pulse_ingest_interval"),
    (*SERVER, "telescope_ingest_interval"),
    (*REDIS, "timeout"),
    (*TLS, "verify_peer"),
)
#: Keys whose values never appear in messages.
SECRET_KEYS = ("secret", "password", "passphrase", "url")
_IGNORED_IN_APP = (("rate_limiting", "terminate_on_limit"), ("options", "host"))


class Reader:
    """Reads values off a merged layer, remembering what was asked for to spot unknown keys."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.asked: set[ConfigPath] = set(IGNORED)

    def label(self, path: ConfigPath) -> str:
        if path in self.layer.labels:
            return self.layer.labels[path]
        names = [name for name, env_path in ENV_PATHS.items() if env_path == path]
        return f"{dotted(path)} ({names[0]})" if names else dotted(path)

    def raw(self, path: ConfigPath) -> object:
        self.asked.add(path)
        return self.layer.values.get(path)

    def get(self, path: ConfigPath, convert: Callable[[str, object], T], default: T) -> T:
        raw = self.raw(path)
        if raw is None:
            return default
        try:
            return convert(self.label(path), raw)
        except ConfigError:
            if path[-1] in SECRET_KEYS:  # say what is wrong, never the value
                raise ConfigError(f"{self.label(path)} must be a string") from None
            raise

    def check_unknown(self) -> None:
        for path in sorted(self.layer.values, key=str):
            if path in self.asked or any(path[: len(known)] == known for known in IGNORED):
                continue
            parent = path[:-1]
            label = self.layer.labels.get(path, dotted(path))
            if any(known[: len(path)] == path for known in self.asked):
                raise ConfigError(f"{label} must be a table of options, got {self.layer.values[path]!r}")
            for end in range(len(path) - 1, 0, -1):
                if path[:end] in self.asked:
                    raise ConfigError(f"{dotted(path[:end])} must be a single value, not a table ({label})")
            siblings = sorted({str(p[len(parent)]) for p in self.asked if p[: len(parent)] == parent})
            raise ConfigError(f"unknown key {label}; the keys accepted here are {', '.join(siblings)}")


def build_settings(layer: Layer) -> Settings:
    """The settings a merged layer describes; raises ConfigError naming the first bad key."""
    read = Reader(layer)
    defaults = Settings()
    scaling_defaults = ScalingSettings()
    scaling = ScalingSettings(
        enabled=read.get((*SCALING, "enabled"), v.as_bool, False),
        channel=read.get((*SCALING, "channel"), _name, scaling_defaults.channel),
        redis_url=read.get((*REDIS, "url"), v.as_optional_str, None),
        redis_host=read.get((*REDIS, "host"), _name, scaling_defaults.redis_host),
        redis_port=read.get((*REDIS, "port"), _port, scaling_defaults.redis_port),
        redis_username=read.get((*REDIS, "username"), v.as_optional_str, None),
        redis_password=read.get((*REDIS, "password"), v.as_optional_str, None),
        redis_db=read.get((*REDIS, "database"), v.as_int, 0),
        heartbeat_interval=read.get(
            (*SCALING, "heartbeat_interval"), v.as_float, scaling_defaults.heartbeat_interval
        ),
        queue_size=read.get((*SCALING, "queue_size"), _positive, scaling_defaults.queue_size),
    )
    apps, client_port, client_scheme = _apps(read)
    provider = read.get(("apps", "provider"), v.as_optional_str, None)
    if provider == "config":
        provider = None
    if provider is not None:
        try:
            import_provider(provider)
        except (ImportError, AttributeError, ValueError) as error:
            raise ConfigError(
                f"{read.label(('apps', 'provider'))}: cannot import {provider!r}: {error}"
            ) from None
    settings = Settings(
        apps=apps,
        host=read.get((*SERVER, "host"), _name, defaults.host),
        port=read.get((*SERVER, "port"), _port, defaults.port),
        path=read.get((*SERVER, "path"), _path, defaults.path),
        hostname=read.get((*SERVER, "hostname"), v.as_optional_str, None),
        max_request_size=read.get((*SERVER, "max_request_size"), _positive, defaults.max_request_size),
        scaling=scaling,
        tls=_tls(read),
        app_provider=provider,
        debug=read.get((*SERVER, "debug"), v.as_bool, False),
        client_port=client_port,
        client_scheme=client_scheme,
        workers=read.get((*SERVER, "workers"), _positive, 1),
        pid_file=read.get((*SERVER, "pid_file"), v.as_optional_str, None),
        restart_check_interval=read.get(
            (*SERVER, "restart_check_interval"), v.as_float, defaults.restart_check_interval
        ),
        signal_pid=read.get((*SERVER, "signal_pid"), _positive, None),
        max_pending_output=read.get((*SERVER, "max_pending_output"), _positive, defaults.max_pending_output),
        sweep_interval=read.get((*SERVER, "sweep_interval"), v.as_float, defaults.sweep_interval),
    )
    read.check_unknown()
    return settings


def check(settings: Settings, workers_label: str = "servers.reverb.workers (REVERB_WORKERS)") -> Settings:
    """Rules across keys, checked once every layer and flag is in."""
    if settings.workers > 1 and not settings.scaling.enabled:
        raise ConfigError(
            f"{workers_label} is {settings.workers}, but several workers need scaling: "
            "set REVERB_SCALING_ENABLED=true (servers.reverb.scaling.enabled) and point it at Redis"
        )
    return settings


def _name(label: str, raw: object) -> str:
    return v.as_str(label, raw, allow_empty=False).strip()


def _port(label: str, raw: object) -> int:
    return v.as_int(label, raw, 1, 65535)


def _positive(label: str, raw: object) -> int:
    return v.as_int(label, raw, 1)


def _path(label: str, raw: object) -> str:
    from revurb.configuration.settings import normalise_path

    return normalise_path(v.as_str(label, raw))


def _tls(read: Reader) -> TLSSettings:
    cert = read.get((*TLS, "cert"), v.as_optional_str, None) or read.get(
        (*TLS, "local_cert"), v.as_optional_str, None
    )
    key = read.get((*TLS, "key"), v.as_optional_str, None) or read.get(
        (*TLS, "local_pk"), v.as_optional_str, None
    )
    passphrase = read.get((*TLS, "passphrase"), v.as_optional_str, None)
    for name, file in (("local_cert", cert), ("local_pk", key)):
        if file is not None and not Path(file).is_file():
            raise ConfigError(f"{read.label((*TLS, name))}: the file {file} does not exist")
    if cert is None and (key is not None or passphrase is not None):
        raise ConfigError(f"{dotted(TLS)}: a key or passphrase was given without a certificate (local_cert)")
    return TLSSettings(cert=cert, key=key, passphrase=passphrase)


def _apps(read: Reader) -> tuple[tuple[App, ...], int | None, Any]:
    indices = sorted({p[2] for p in read.layer.values if p[:2] == ("apps", "apps") and len(p) > 3})
    apps: list[App] = []
    client_port: int | None = None
    client_scheme = None
    for index in indices:
        assert isinstance(index, int)
        at: ConfigPath = ("apps", "apps", index)
        for ignored in _IGNORED_IN_APP:
            read.asked.add((*at, *ignored))
        app = _app(read, at)
        port = read.get((*at, "options", "port"), _port, None)
        scheme = read.get((*at, "options", "scheme"), _scheme, None)
        use_tls = read.get((*at, "options", "useTLS"), v.as_bool, None)
        if index == 0:
            client_port = port
            client_scheme = scheme or (None if use_tls is None else ("https" if use_tls else "http"))
        if app is not None:
            apps.append(app)
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    for app in apps:
        if app.id in seen_ids or app.key in seen_keys:
            which = f"id {app.id!r}" if app.id in seen_ids else f"key {app.key!r}"
            raise ConfigError(f"apps.apps: two apps have the {which}; ids and keys must be unique")
        seen_ids.add(app.id)
        seen_keys.add(app.key)
    return tuple(apps), client_port, client_scheme


def _scheme(label: str, raw: object) -> Any:
    return v.as_choice(label, raw, SCHEMES)


def _app(read: Reader, at: ConfigPath) -> App | None:
    """One app, or None for an entry with options but no credentials (e.g. only REVERB_PORT set)."""
    key = read.get((*at, "key"), v.as_optional_str, None)
    secret = read.get((*at, "secret"), v.as_optional_str, None)
    alias = read.get((*at, "id"), v.as_optional_str, None)
    app_id = read.get((*at, "app_id"), v.as_optional_str, None) or alias
    d = App(id="", key="", secret="")
    options: dict[str, Any] = {
        "allowed_origins": read.get((*at, "allowed_origins"), _origins, d.allowed_origins),
        "ping_interval": read.get((*at, "ping_interval"), v.as_float, d.ping_interval),
        "activity_timeout": read.get((*at, "activity_timeout"), _positive, d.activity_timeout),
        "max_connections": read.get((*at, "max_connections"), v.as_optional_int, d.max_connections),
        "max_message_size": read.get((*at, "max_message_size"), _positive, d.max_message_size),
        "accept_client_events_from": read.get(
            (*at, "accept_client_events_from"),
            lambda label, raw: v.as_choice(label, raw, CLIENT_EVENTS_FROM),
            d.accept_client_events_from,
        ),
        "rate_limiting": read.get((*at, "rate_limiting", "enabled"), v.as_bool, d.rate_limiting),
        "rate_limit_max_attempts": read.get(
            (*at, "rate_limiting", "max_attempts"), _positive, d.rate_limit_max_attempts
        ),
        "rate_limit_decay_seconds": read.get(
            (*at, "rate_limiting", "decay_seconds"), v.as_float, d.rate_limit_decay_seconds
        ),
        "subscription_count": read.get((*at, "subscription_count"), v.as_bool, d.subscription_count),
        "subscription_count_interval": read.get(
            (*at, "subscription_count_interval"), v.as_float, d.subscription_count_interval
        ),
        "max_presence_members": read.get((*at, "max_presence_members"), _positive, d.max_presence_members),
        "max_presence_member_size": read.get(
            (*at, "max_presence_member_size"), _positive, d.max_presence_member_size
        ),
        "max_event_data_size": read.get((*at, "max_event_data_size"), _positive, d.max_event_data_size),
        "webhooks": read.get((*at, "webhooks"), _webhooks, d.webhooks),
    }
    if key is None and secret is None and app_id is None:
        return None
    for name, value in (("key", key), ("secret", secret)):
        if value is None:
            raise ConfigError(
                f"{read.label((*at, name))} is required when an app is configured ({dotted(at)})"
            )
    assert key is not None and secret is not None
    if at == APP and app_id is None:
        app_id = key
    if app_id is None:
        raise ConfigError(f"{read.label((*at, 'app_id'))} is required ({dotted(at)})")
    return App(id=app_id, key=key, secret=secret, **options)


def _origins(label: str, raw: object) -> tuple[str, ...]:
    return v.as_str_list(label, raw) or ("*",)


def _webhooks(label: str, raw: object) -> tuple[Webhook, ...]:
    """A list of URLs (or a comma-separated string), or of `{url, event_types}` tables."""
    if isinstance(raw, str):
        return tuple(Webhook(url=_url(label, url)) for url in v.as_str_list(label, raw))
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"{label} must be a list of URLs or of {{url, event_types}} tables, got {raw!r}")
    hooks: list[Webhook] = []
    for index, item in enumerate(raw):
        where = f"{label}[{index}]"
        if isinstance(item, str):
            hooks.append(Webhook(url=_url(where, item)))
        elif isinstance(item, dict) and set(item) <= {"url", "event_types"} and "url" in item:
            types = v.as_str_list(f"{where}.event_types", item.get("event_types", []))
            hooks.append(Webhook(url=_url(f"{where}.url", item["url"]), event_types=types))
        else:
            raise ConfigError(
                f"{where} must be a URL or a table with url and optional event_types, got {item!r}"
            )
    return tuple(hooks)


def _url(label: str, raw: object) -> str:
    url = v.as_str(label, raw, allow_empty=False)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{label} must be an http:// or https:// URL, got {url!r}")
    return url


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """Settings with command-line flags applied (None means the flag was not given)."""
    given = {name: value for name, value in overrides.items() if value is not None}
    return replace(settings, **given)
