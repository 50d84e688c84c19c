"""The `apps.apps` entries of a merged configuration -> `App`s (and where clients reach them)."""

from __future__ import annotations

from typing import Any

from revurb.apps import CLIENT_EVENTS_FROM, WEBHOOK_KINDS, App, Webhook
from revurb.config import values as v
from revurb.config.reader import Reader, as_port, as_positive
from revurb.config.settings import SCHEMES, ConfigError, Scheme
from revurb.config.sources import APP, ConfigPath, dotted

_IGNORED_IN_APP = (("rate_limiting", "terminate_on_limit"), ("options", "host"))


def read_apps(read: Reader) -> tuple[tuple[App, ...], int | None, Scheme | None]:
    """The configured apps, and the first entry's client-facing port and scheme."""
    indices = sorted({p[2] for p in read.layer.values if p[:2] == ("apps", "apps") and len(p) > 3})
    apps: list[App] = []
    client_port: int | None = None
    client_scheme: Scheme | None = None
    for index in indices:
        assert isinstance(index, int)
        at: ConfigPath = ("apps", "apps", index)
        for ignored in _IGNORED_IN_APP:
            read.asked.add((*at, *ignored))
        app = _app(read, at)
        port = read.get((*at, "options", "port"), as_port, None)
        scheme = read.get((*at, "options", "scheme"), _scheme, None)
        use_tls = read.get((*at, "options", "useTLS"), v.as_bool, None)
        if index == 0:
            client_port = port
            client_scheme = scheme
            if scheme is None and use_tls is not None:
                client_scheme = "https" if use_tls else "http"
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


def _scheme(label: str, raw: object) -> Scheme:
    return v.as_choice(label, raw, SCHEMES)


def _app(read: Reader, at: ConfigPath) -> App | None:
    """One app, or None for an entry with options but no credentials (e.g. only REVERB_PORT set)."""
    key = read.get((*at, "key"), v.as_optional_str, None)
    secret = read.get((*at, "secret"), v.as_optional_str, None)
    app_id = read.get((*at, "app_id"), v.as_optional_str, None)
    d = App(id="", key="", secret="")
    options: dict[str, Any] = {
        "allowed_origins": read.get((*at, "allowed_origins"), _origins, d.allowed_origins),
        "ping_interval": read.get((*at, "ping_interval"), v.as_float, d.ping_interval),
        "activity_timeout": read.get((*at, "activity_timeout"), as_positive, d.activity_timeout),
        "max_connections": read.get((*at, "max_connections"), v.as_optional_int, d.max_connections),
        "max_message_size": read.get((*at, "max_message_size"), as_positive, d.max_message_size),
        "accept_client_events_from": read.get(
            (*at, "accept_client_events_from"),
            lambda label, raw: v.as_choice(label, raw, CLIENT_EVENTS_FROM),
            d.accept_client_events_from,
        ),
        "rate_limiting": read.get((*at, "rate_limiting", "enabled"), v.as_bool, d.rate_limiting),
        "rate_limit_max_attempts": read.get(
            (*at, "rate_limiting", "max_attempts"), as_positive, d.rate_limit_max_attempts
        ),
        "rate_limit_decay_seconds": read.get(
            (*at, "rate_limiting", "decay_seconds"), v.as_float, d.rate_limit_decay_seconds
        ),
        "subscription_count": read.get((*at, "subscription_count"), v.as_bool, d.subscription_count),
        "subscription_count_interval": read.get(
            (*at, "subscription_count_interval"), v.as_float, d.subscription_count_interval
        ),
        "max_presence_members": read.get((*at, "max_presence_members"), as_positive, d.max_presence_members),
        "max_presence_member_size": read.get(
            (*at, "max_presence_member_size"), as_positive, d.max_presence_member_size
        ),
        "max_event_data_size": read.get((*at, "max_event_data_size"), as_positive, d.max_event_data_size),
        "webhooks": read.get((*at, "webhooks"), _webhooks, d.webhooks),
        "max_backend_events_per_sec": read.get(
            (*at, "max_backend_events_per_sec"), v.as_optional_int, d.max_backend_events_per_sec
        ),
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


#: Keys a webhook table may have, and those of its `filter`.
_WEBHOOK_KEYS = {"url", "event_types", "filter", "headers"}
_FILTER_KEYS = ("channel_name_starts_with", "channel_name_ends_with")


def _webhooks(label: str, raw: object) -> tuple[Webhook, ...]:
    """A list of URLs (or a comma-separated string), or of `{url, event_types, filter, headers}` tables."""
    if isinstance(raw, str):
        return tuple(Webhook(url=_url(label, url)) for url in v.as_str_list(label, raw))
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"{label} must be a list of URLs or of {{url, event_types}} tables, got {raw!r}")
    hooks: list[Webhook] = []
    for index, item in enumerate(raw):
        where = f"{label}[{index}]"
        if isinstance(item, str):
            hooks.append(Webhook(url=_url(where, item)))
        elif isinstance(item, dict) and set(item) <= _WEBHOOK_KEYS and "url" in item:
            hooks.append(_webhook(where, item))
        else:
            raise ConfigError(
                f"{where} must be a URL or a table with url and optional event_types, filter, headers, "
                f"got {item!r}"
            )
    return tuple(hooks)


def _webhook(where: str, item: dict[str, object]) -> Webhook:
    types = v.as_str_list(f"{where}.event_types", item.get("event_types", []))
    for kind in types:
        if kind not in WEBHOOK_KINDS:
            raise ConfigError(f"{where}.event_types: {kind!r} is not one of {', '.join(WEBHOOK_KINDS)}")
    found = item.get("filter", {})
    if not isinstance(found, dict) or not set(found) <= set(_FILTER_KEYS):
        keys = " and/or ".join(_FILTER_KEYS)
        raise ConfigError(f"{where}.filter must be a table with {keys}, got {found!r}")
    starts, ends = (
        v.as_optional_str(f"{where}.filter.{key}", found[key]) if key in found else None
        for key in _FILTER_KEYS
    )
    headers = item.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(name, str) and name and isinstance(value, str) for name, value in headers.items()
    ):
        raise ConfigError(
            f"{where}.headers must be a table of header names to string values, got {headers!r}"
        )
    return Webhook(
        url=_url(f"{where}.url", item["url"]),
        event_types=types,
        channel_name_starts_with=starts,
        channel_name_ends_with=ends,
        headers=tuple(headers.items()),
    )


def _url(label: str, raw: object) -> str:
    url = v.as_str(label, raw, allow_empty=False)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{label} must be an http:// or https:// URL, got {url!r}")
    return url
