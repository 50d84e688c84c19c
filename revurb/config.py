"""Settings: built once at the edge (CLI, asgi module or create_app) and passed down, immutable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from revurb.apps import CLIENT_EVENTS_FROM, App, ClientEventsFrom


class ConfigError(ValueError):
    """Invalid configuration; the message names the key and what it accepts."""


@dataclass(frozen=True, slots=True)
class ScalingSettings:
    """Redis scaling: off by default (one process, in-memory)."""

    enabled: bool = False
    channel: str = "reverb"
    redis_url: str | None = None
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_username: str | None = None
    redis_password: str | None = field(default=None, repr=False)
    redis_db: int = 0


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
    app_provider: str | None = None
    debug: bool = False
    #: Unsent bytes a socket may hold before it is closed as a slow consumer (4100).
    max_pending_output: int = 1_048_576
    #: How often the ping / prune sweep runs, in seconds (0 derives it from the apps' ping_interval).
    sweep_interval: float = 0.0


def _bool(key: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


def _int(key: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    return value


def _float(key: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    if value <= minimum:
        raise ConfigError(f"{key} must be greater than {minimum:g}, got {raw!r}")
    return value


def _client_events_from(key: str, raw: str) -> ClientEventsFrom:
    for choice in CLIENT_EVENTS_FROM:
        if raw == choice:
            return choice
    allowed = ", ".join(CLIENT_EVENTS_FROM)
    raise ConfigError(f"{key} must be one of {allowed}, got {raw!r}")


def normalise_path(path: str) -> str:
    """`/ws/` and `ws` both become `/ws`; empty stays empty."""
    stripped = path.strip().strip("/")
    return f"/{stripped}" if stripped else ""


def app_from_env(env: Mapping[str, str]) -> App | None:
    """The single app described by `REVERB_APP_*` variables, if `REVERB_APP_KEY` is set."""
    key = env.get("REVERB_APP_KEY")
    if not key:
        return None
    secret = env.get("REVERB_APP_SECRET")
    if not secret:
        raise ConfigError("REVERB_APP_SECRET must be set when REVERB_APP_KEY is set")
    app_id = env.get("REVERB_APP_ID") or key
    origins = tuple(
        origin.strip() for origin in env.get("REVERB_ALLOWED_ORIGINS", "*").split(",") if origin.strip()
    )
    options: dict[str, object] = {}
    if "REVERB_APP_PING_INTERVAL" in env:
        options["ping_interval"] = _float("REVERB_APP_PING_INTERVAL", env["REVERB_APP_PING_INTERVAL"])
    if "REVERB_APP_ACTIVITY_TIMEOUT" in env:
        options["activity_timeout"] = _int(
            "REVERB_APP_ACTIVITY_TIMEOUT", env["REVERB_APP_ACTIVITY_TIMEOUT"], 1
        )
    if env.get("REVERB_APP_MAX_CONNECTIONS"):
        options["max_connections"] = _int("REVERB_APP_MAX_CONNECTIONS", env["REVERB_APP_MAX_CONNECTIONS"], 1)
    if "REVERB_APP_MAX_MESSAGE_SIZE" in env:
        options["max_message_size"] = _int(
            "REVERB_APP_MAX_MESSAGE_SIZE", env["REVERB_APP_MAX_MESSAGE_SIZE"], 1
        )
    if "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM" in env:
        options["accept_client_events_from"] = _client_events_from(
            "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", env["REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM"]
        )
    if "REVERB_APP_SUBSCRIPTION_COUNT" in env:
        options["subscription_count"] = _bool(
            "REVERB_APP_SUBSCRIPTION_COUNT", env["REVERB_APP_SUBSCRIPTION_COUNT"]
        )
    if "REVERB_APP_RATE_LIMITING_ENABLED" in env:
        options["rate_limiting"] = _bool(
            "REVERB_APP_RATE_LIMITING_ENABLED", env["REVERB_APP_RATE_LIMITING_ENABLED"]
        )
    return App(
        id=app_id,
        key=key,
        secret=secret,
        allowed_origins=origins or ("*",),
        **options,  # type: ignore[arg-type]
    )


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings from Reverb's environment variables, over the built-in defaults."""
    app = app_from_env(env)
    scaling = ScalingSettings(
        enabled=_bool("REVERB_SCALING_ENABLED", env.get("REVERB_SCALING_ENABLED", "false")),
        channel=env.get("REVERB_SCALING_CHANNEL", "reverb"),
        redis_url=env.get("REDIS_URL") or None,
        redis_host=env.get("REDIS_HOST", "127.0.0.1"),
        redis_port=_int("REDIS_PORT", env.get("REDIS_PORT", "6379"), 1),
        redis_username=env.get("REDIS_USERNAME") or None,
        redis_password=env.get("REDIS_PASSWORD") or None,
        redis_db=_int("REDIS_DB", env.get("REDIS_DB", "0")),
    )
    return Settings(
        apps=(app,) if app else (),
        host=env.get("REVERB_SERVER_HOST", "0.0.0.0"),
        port=_int("REVERB_SERVER_PORT", env.get("REVERB_SERVER_PORT", "8080"), 1),
        path=normalise_path(env.get("REVERB_SERVER_PATH", "")),
        hostname=env.get("REVERB_HOST") or None,
        max_request_size=_int("REVERB_MAX_REQUEST_SIZE", env.get("REVERB_MAX_REQUEST_SIZE", "10000"), 1),
        scaling=scaling,
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for `revurb start` and `revurb.asgi`: `.env` in the working directory, then the
    process environment (which wins), then defaults."""
    if env is None:
        import os

        from dotenv import dotenv_values

        merged = {k: v for k, v in dotenv_values(".env").items() if v is not None}
        merged.update(os.environ)
        env = merged
    return settings_from_env(env)
