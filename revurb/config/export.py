"""`Settings` back to Reverb's nested shape, so a resolved configuration can be handed to worker
processes (`revurb start --workers N`) and read back with the same loader."""

from __future__ import annotations

from typing import Any

from revurb.apps import App, Webhook
from revurb.config.settings import Settings


def settings_to_config(settings: Settings) -> dict[str, Any]:
    """The nested configuration that builds exactly `settings` (secrets included: keep it private)."""
    scaling = settings.scaling
    server: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "path": settings.path,
        "hostname": settings.hostname,
        "max_request_size": settings.max_request_size,
        "options": {
            "tls": {
                "local_cert": settings.tls.cert,
                "local_pk": settings.tls.key,
                "passphrase": settings.tls.passphrase,
            }
        },
        "scaling": {
            "enabled": scaling.enabled,
            "channel": scaling.channel,
            "heartbeat_interval": scaling.heartbeat_interval,
            "queue_size": scaling.queue_size,
            "history_seconds": scaling.history_seconds,
            "history_size": scaling.history_size,
            "timeout": scaling.redis_timeout,
            "server": {
                "url": scaling.redis_url,
                "host": scaling.redis_host,
                "port": scaling.redis_port,
                "username": scaling.redis_username,
                "password": scaling.redis_password,
                "database": scaling.redis_db,
                "sentinels": [f"{host}:{port}" for host, port in scaling.redis_sentinels] or None,
                "sentinel_master": scaling.redis_sentinel_master,
                "sentinel_password": scaling.redis_sentinel_password,
            },
        },
        "debug": settings.debug,
        "workers": settings.workers,
        "pid_file": settings.pid_file,
        "restart_check_interval": settings.restart_check_interval,
        "signal_pid": settings.signal_pid,
        "max_pending_output": settings.max_pending_output,
        "per_message_deflate": settings.per_message_deflate,
        "sweep_interval": settings.sweep_interval or None,
        "fast_path": settings.fast_path,
        "drain_window": settings.drain_window,
        "grace_period": settings.grace_period,
        "log_format": settings.log_format,
        "metrics": {
            "enabled": settings.metrics.enabled,
            "host": settings.metrics.host,
            "port": settings.metrics.port,
            "token": settings.metrics.token,
            "directory": settings.metrics.directory,
        },
        "limits": {
            "request_head_timeout": settings.limits.request_head_timeout,
            "keep_alive_timeout": settings.limits.keep_alive_timeout,
            "max_headers": settings.limits.max_headers,
            "max_connections_per_ip": settings.limits.max_connections_per_ip,
        },
        "dashboard": {
            "enabled": settings.dashboard.enabled,
            "path": settings.dashboard.path,
            "secret": settings.dashboard.secret,
            "share_interval": settings.dashboard.share_interval,
            "console_rate": settings.dashboard.console_rate,
        },
        "webhooks": {
            "batch_window": settings.webhooks.batch_window,
            "retry_for": settings.webhooks.retry_for,
            "queue_size": settings.webhooks.queue_size,
            "timeout": settings.webhooks.timeout,
            "claim_after": settings.webhooks.claim_after,
        },
    }
    apps = [_app(app) for app in settings.apps]
    client = {"port": settings.client_port, "scheme": settings.client_scheme}
    if apps:
        apps[0]["options"] = client
    elif settings.client_port is not None or settings.client_scheme is not None:
        apps.append({"options": client})
    return {"servers": {"reverb": server}, "apps": {"provider": settings.app_provider, "apps": apps}}


def _app(app: App) -> dict[str, Any]:
    return {
        "app_id": app.id,
        "key": app.key,
        "secret": app.secret,
        "allowed_origins": list(app.allowed_origins),
        "ping_interval": app.ping_interval,
        "activity_timeout": app.activity_timeout,
        "max_connections": app.max_connections,
        "max_message_size": app.max_message_size,
        "accept_client_events_from": app.accept_client_events_from,
        "rate_limiting": {
            "enabled": app.rate_limiting,
            "max_attempts": app.rate_limit_max_attempts,
            "decay_seconds": app.rate_limit_decay_seconds,
        },
        "subscription_count": app.subscription_count,
        "subscription_count_interval": app.subscription_count_interval,
        "max_presence_members": app.max_presence_members,
        "max_presence_member_size": app.max_presence_member_size,
        "max_event_data_size": app.max_event_data_size,
        "webhooks": [_webhook(hook) for hook in app.webhooks],
        "max_backend_events_per_sec": app.max_backend_events_per_sec,
    }


def _webhook(hook: Webhook) -> dict[str, Any]:
    exported: dict[str, Any] = {"url": hook.url, "event_types": list(hook.event_types)}
    found = {
        "channel_name_starts_with": hook.channel_name_starts_with,
        "channel_name_ends_with": hook.channel_name_ends_with,
    }
    if any(value is not None for value in found.values()):
        exported["filter"] = {key: value for key, value in found.items() if value is not None}
    if hook.headers:
        exported["headers"] = dict(hook.headers)
    return exported
