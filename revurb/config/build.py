"""Merged configuration layers -> `Settings`, checking every value and rejecting unknown keys."""

from __future__ import annotations

from pathlib import Path

from revurb.apps import import_provider
from revurb.config import values as v
from revurb.config.app_options import read_apps
from revurb.config.reader import Reader, as_name, as_path, as_port, as_positive, as_sentinels
from revurb.config.settings import (
    LOG_FORMATS,
    ConfigError,
    DashboardSettings,
    LimitSettings,
    LogFormat,
    MetricsSettings,
    ScalingSettings,
    Settings,
    TLSSettings,
    WebhookSettings,
)
from revurb.config.sources import (
    DASHBOARD,
    LIMITS,
    METRICS,
    REDIS,
    SCALING,
    SERVER,
    TLS,
    WEBHOOKS,
    Layer,
    dotted,
)


def build_settings(layer: Layer) -> Settings:
    """The settings a merged layer describes; raises ConfigError naming the first bad key."""
    read = Reader(layer)
    defaults = Settings()
    scaling_defaults = ScalingSettings()
    scaling = ScalingSettings(
        enabled=read.get((*SCALING, "enabled"), v.as_bool, False),
        channel=read.get((*SCALING, "channel"), as_name, scaling_defaults.channel),
        redis_url=read.get((*REDIS, "url"), v.as_optional_str, None),
        redis_host=read.get((*REDIS, "host"), as_name, scaling_defaults.redis_host),
        redis_port=read.get((*REDIS, "port"), as_port, scaling_defaults.redis_port),
        redis_username=read.get((*REDIS, "username"), v.as_optional_str, None),
        redis_password=read.get((*REDIS, "password"), v.as_optional_str, None),
        redis_db=read.get((*REDIS, "database"), v.as_int, 0),
        heartbeat_interval=read.get(
            (*SCALING, "heartbeat_interval"), v.as_float, scaling_defaults.heartbeat_interval
        ),
        queue_size=read.get((*SCALING, "queue_size"), as_positive, scaling_defaults.queue_size),
        redis_sentinels=read.get((*REDIS, "sentinels"), as_sentinels, ()),
        redis_sentinel_master=read.get(
            (*REDIS, "sentinel_master"), as_name, scaling_defaults.redis_sentinel_master
        ),
        redis_sentinel_password=read.get((*REDIS, "sentinel_password"), v.as_optional_str, None),
        history_seconds=read.get((*SCALING, "history_seconds"), v.as_float, scaling_defaults.history_seconds),
        history_size=read.get((*SCALING, "history_size"), as_positive, scaling_defaults.history_size),
        redis_timeout=read.get((*SCALING, "timeout"), v.as_float, scaling_defaults.redis_timeout),
    )
    apps, client_port, client_scheme = read_apps(read)
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
        host=read.get((*SERVER, "host"), as_name, defaults.host),
        port=read.get((*SERVER, "port"), as_port, defaults.port),
        path=read.get((*SERVER, "path"), as_path, defaults.path),
        hostname=read.get((*SERVER, "hostname"), v.as_optional_str, None),
        max_request_size=read.get((*SERVER, "max_request_size"), as_positive, defaults.max_request_size),
        scaling=scaling,
        tls=_tls(read),
        app_provider=provider,
        debug=read.get((*SERVER, "debug"), v.as_bool, False),
        client_port=client_port,
        client_scheme=client_scheme,
        workers=read.get((*SERVER, "workers"), as_positive, 1),
        pid_file=read.get((*SERVER, "pid_file"), v.as_optional_str, None),
        restart_check_interval=read.get(
            (*SERVER, "restart_check_interval"), v.as_float, defaults.restart_check_interval
        ),
        signal_pid=read.get((*SERVER, "signal_pid"), as_positive, None),
        max_pending_output=read.get(
            (*SERVER, "max_pending_output"), as_positive, defaults.max_pending_output
        ),
        sweep_interval=read.get((*SERVER, "sweep_interval"), v.as_float, defaults.sweep_interval),
        per_message_deflate=read.get((*SERVER, "per_message_deflate"), v.as_bool, False),
        fast_path=read.get((*SERVER, "fast_path"), v.as_bool, defaults.fast_path),
        drain_window=read.get((*SERVER, "drain_window"), v.as_seconds, defaults.drain_window),
        grace_period=read.get((*SERVER, "grace_period"), v.as_float, defaults.grace_period),
        log_format=read.get((*SERVER, "log_format"), _log_format, defaults.log_format),
        metrics=_metrics(read),
        limits=_limits(read),
        dashboard=_dashboard(read),
        webhooks=_webhooks(read),
    )
    read.check_unknown()
    if settings.drain_window >= settings.grace_period:
        raise ConfigError(
            f"{read.label((*SERVER, 'drain_window'))} is {settings.drain_window:g} s, which must be shorter "
            f"than {read.label((*SERVER, 'grace_period'))} ({settings.grace_period:g} s)"
        )
    return settings


def check(settings: Settings, workers_label: str = "servers.reverb.workers (REVERB_WORKERS)") -> Settings:
    """Rules across keys, checked once every layer and flag is in."""
    if settings.workers > 1 and not settings.scaling.enabled:
        raise ConfigError(
            f"{workers_label} is {settings.workers}, but several workers need scaling: "
            "set REVERB_SCALING_ENABLED=true (servers.reverb.scaling.enabled) and point it at Redis"
        )
    return settings


def _log_format(label: str, raw: object) -> LogFormat:
    return v.as_choice(label, raw, LOG_FORMATS)


def _metrics(read: Reader) -> MetricsSettings:
    defaults = MetricsSettings()
    metrics = MetricsSettings(
        enabled=read.get((*METRICS, "enabled"), v.as_bool, False),
        host=read.get((*METRICS, "host"), v.as_optional_str, None),
        port=read.get((*METRICS, "port"), lambda label, raw: v.as_int(label, raw, 0, 65535), defaults.port),
        token=read.get((*METRICS, "token"), v.as_optional_str, None),
        directory=read.get((*METRICS, "directory"), v.as_optional_str, None),
    )
    if metrics.on_main_port and metrics.token is None:
        raise ConfigError(
            f"{read.label((*METRICS, 'port'))} is 0 (metrics on the main port), which needs a token: "
            "set REVURB_METRICS_TOKEN (servers.reverb.metrics.token)"
        )
    return metrics


def _limits(read: Reader) -> LimitSettings:
    defaults = LimitSettings()
    return LimitSettings(
        request_head_timeout=read.get(
            (*LIMITS, "request_head_timeout"), v.as_float, defaults.request_head_timeout
        ),
        keep_alive_timeout=read.get((*LIMITS, "keep_alive_timeout"), v.as_float, defaults.keep_alive_timeout),
        max_headers=read.get((*LIMITS, "max_headers"), as_positive, defaults.max_headers),
        max_connections_per_ip=read.get((*LIMITS, "max_connections_per_ip"), v.as_optional_int, None),
    )


#: Paths the server answers itself: a dashboard there would hide them, or they the dashboard.
_TAKEN_PATHS = ("/app", "/apps", "/users", "/up", "/ready", "/metrics")


def _dashboard(read: Reader) -> DashboardSettings:
    defaults = DashboardSettings()
    dashboard = DashboardSettings(
        enabled=read.get((*DASHBOARD, "enabled"), v.as_bool, False),
        path=read.get((*DASHBOARD, "path"), as_path, defaults.path),
        secret=read.get((*DASHBOARD, "secret"), v.as_optional_str, None),
        share_interval=read.get((*DASHBOARD, "share_interval"), v.as_float, defaults.share_interval),
        console_rate=read.get((*DASHBOARD, "console_rate"), as_positive, defaults.console_rate),
    )
    path_label = read.label((*DASHBOARD, "path"))
    if not dashboard.path or dashboard.path.split("/")[1] in [taken[1:] for taken in _TAKEN_PATHS]:
        raise ConfigError(
            f"{path_label} is {dashboard.path or '/'!r}, which the server needs for itself: "
            f"choose another path than /, {', '.join(_TAKEN_PATHS)}"
        )
    if dashboard.enabled and dashboard.secret is None:
        raise ConfigError(
            f"{read.label((*DASHBOARD, 'enabled'))} is true, which needs a secret to log in with: "
            "set REVURB_DASHBOARD_SECRET (servers.reverb.dashboard.secret)"
        )
    return dashboard


def _webhooks(read: Reader) -> WebhookSettings:
    defaults = WebhookSettings()
    return WebhookSettings(
        batch_window=read.get((*WEBHOOKS, "batch_window"), v.as_seconds, defaults.batch_window),
        retry_for=read.get((*WEBHOOKS, "retry_for"), v.as_seconds, defaults.retry_for),
        queue_size=read.get((*WEBHOOKS, "queue_size"), as_positive, defaults.queue_size),
        timeout=read.get((*WEBHOOKS, "timeout"), v.as_float, defaults.timeout),
        claim_after=read.get((*WEBHOOKS, "claim_after"), v.as_float, defaults.claim_after),
    )


def _tls(read: Reader) -> TLSSettings:
    cert = read.get((*TLS, "local_cert"), v.as_optional_str, None)
    key = read.get((*TLS, "local_pk"), v.as_optional_str, None)
    passphrase = read.get((*TLS, "passphrase"), v.as_optional_str, None)
    for name, file in (("local_cert", cert), ("local_pk", key)):
        if file is not None and not Path(file).is_file():
            raise ConfigError(f"{read.label((*TLS, name))}: the file {file} does not exist")
    if cert is None and (key is not None or passphrase is not None):
        raise ConfigError(f"{dotted(TLS)}: a key or passphrase was given without a certificate (local_cert)")
    return TLSSettings(cert=cert, key=key, passphrase=passphrase)
