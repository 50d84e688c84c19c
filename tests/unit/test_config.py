"""Configuration: precedence of the layers, file formats, every variable and every error message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from revurb.apps import App, AppProvider, ConfigAppProvider, Webhook, create_provider
from revurb.config import (
    ENV_PATHS,
    ConfigError,
    DashboardSettings,
    LimitSettings,
    MetricsSettings,
    ScalingSettings,
    Settings,
    TLSSettings,
    WebhookSettings,
    check,
    handoff,
    load_settings,
    read_environment,
    settings_from_config,
    settings_from_env,
    settings_from_handoff,
    settings_to_config,
)
from revurb.config.sources import SERVER, Layer
from revurb.server.app import create_app

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED = REPO / "config" / "reverb.py"
CREDENTIALS = {"REVERB_APP_ID": "1001", "REVERB_APP_KEY": "app-key", "REVERB_APP_SECRET": "app-secret"}

#: Every variable DESIGN.md names, with a valid value and what it must change.
DESIGN_VARIABLES: dict[str, tuple[str, Any]] = {
    "REVERB_APP_ID": ("42", lambda s: s.apps[0].id == "42"),
    "REVERB_APP_KEY": ("other-key", lambda s: s.apps[0].key == "other-key"),
    "REVERB_APP_SECRET": ("other-secret", lambda s: s.apps[0].secret == "other-secret"),
    "REVERB_ALLOWED_ORIGINS": ("a.com, *.b.com", lambda s: s.apps[0].allowed_origins == ("a.com", "*.b.com")),
    "REVERB_SERVER_HOST": ("127.0.0.1", lambda s: s.host == "127.0.0.1"),
    "REVERB_SERVER_PORT": ("9001", lambda s: s.port == 9001),
    "REVERB_SERVER_PATH": ("/realtime/", lambda s: s.path == "/realtime"),
    "REVERB_HOST": ("ws.example.com", lambda s: s.hostname == "ws.example.com"),
    "REVERB_PORT": ("443", lambda s: s.client_port == 443),
    "REVERB_SCHEME": ("https", lambda s: s.client_scheme == "https"),
    "REVERB_APP_PING_INTERVAL": ("2.5", lambda s: s.apps[0].ping_interval == 2.5),
    "REVERB_APP_ACTIVITY_TIMEOUT": ("12", lambda s: s.apps[0].activity_timeout == 12),
    "REVERB_APP_MAX_CONNECTIONS": ("3", lambda s: s.apps[0].max_connections == 3),
    "REVERB_APP_MAX_MESSAGE_SIZE": ("500", lambda s: s.apps[0].max_message_size == 500),
    "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": ("all", lambda s: s.apps[0].accept_client_events_from == "all"),
    "REVERB_MAX_REQUEST_SIZE": ("2048", lambda s: s.max_request_size == 2048),
    "REVERB_SCALING_ENABLED": ("true", lambda s: s.scaling.enabled is True),
    "REVERB_SCALING_CHANNEL": ("cluster-b", lambda s: s.scaling.channel == "cluster-b"),
    "REDIS_URL": ("redis://r:6380/2", lambda s: s.scaling.url() == "redis://r:6380/2"),
    "REDIS_HOST": ("10.0.0.5", lambda s: s.scaling.redis_host == "10.0.0.5"),
    "REDIS_PORT": ("6390", lambda s: s.scaling.redis_port == 6390),
    "REDIS_USERNAME": ("revurb", lambda s: s.scaling.redis_username == "revurb"),
    "REDIS_PASSWORD": ("hunter2", lambda s: s.scaling.redis_password == "hunter2"),
    "REDIS_DB": ("3", lambda s: s.scaling.redis_db == 3),
}

#: Revurb's own variables beyond DESIGN.md's list.
EXTRA_VARIABLES: dict[str, tuple[str, Any]] = {
    "REVERB_APP_RATE_LIMITING_ENABLED": ("false", lambda s: s.apps[0].rate_limiting is False),
    "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": ("60", lambda s: s.apps[0].rate_limit_max_attempts == 60),
    "REVERB_APP_RATE_LIMIT_DECAY_SECONDS": ("60", lambda s: s.apps[0].rate_limit_decay_seconds == 60.0),
    "REVERB_APP_SUBSCRIPTION_COUNT": ("yes", lambda s: s.apps[0].subscription_count is True),
    "REVERB_APP_SUBSCRIPTION_COUNT_INTERVAL": ("0.5", lambda s: s.apps[0].subscription_count_interval == 0.5),
    "REVERB_APP_MAX_PRESENCE_MEMBERS": ("7", lambda s: s.apps[0].max_presence_members == 7),
    "REVERB_APP_MAX_PRESENCE_MEMBER_SIZE": ("99", lambda s: s.apps[0].max_presence_member_size == 99),
    "REVERB_APP_MAX_EVENT_DATA_SIZE": ("77", lambda s: s.apps[0].max_event_data_size == 77),
    "REVERB_APP_WEBHOOKS": (
        "http://a/h, https://b/h",
        lambda s: s.apps[0].webhooks == (Webhook("http://a/h"), Webhook("https://b/h")),
    ),
    "REVERB_APPS_PROVIDER": (
        "tests.unit.test_config:DatabaseProvider",
        lambda s: s.app_provider == "tests.unit.test_config:DatabaseProvider",
    ),
    "REVERB_SCALING_HEARTBEAT_INTERVAL": ("0.5", lambda s: s.scaling.heartbeat_interval == 0.5),
    "REVERB_SCALING_QUEUE_SIZE": ("50", lambda s: s.scaling.queue_size == 50),
    "REVERB_SCALING_HISTORY_SECONDS": ("30", lambda s: s.scaling.history_seconds == 30.0),
    "REVERB_SCALING_HISTORY_SIZE": ("5000", lambda s: s.scaling.history_size == 5000),
    "REVERB_SCALING_TIMEOUT": ("1.5", lambda s: s.scaling.redis_timeout == 1.5),
    "REDIS_SENTINELS": (
        "10.0.0.7:26379, sentinel-b:26380",
        lambda s: s.scaling.redis_sentinels == (("10.0.0.7", 26379), ("sentinel-b", 26380)),
    ),
    "REDIS_SENTINEL_MASTER": ("cache-primary", lambda s: s.scaling.redis_sentinel_master == "cache-primary"),
    "REDIS_SENTINEL_PASSWORD": ("s3cret", lambda s: s.scaling.redis_sentinel_password == "s3cret"),
    "REVERB_TLS_CERT": (__file__, lambda s: s.tls.cert == __file__),
    "REVERB_TLS_KEY": (__file__, lambda s: s.tls.key == __file__),
    "REVERB_TLS_PASSPHRASE": ("pw", lambda s: s.tls.passphrase == "pw"),
    "REVERB_DEBUG": ("1", lambda s: s.debug is True),
    "REVERB_WORKERS": ("4", lambda s: s.workers == 4),
    "REVERB_PID_FILE": ("/run/revurb.pid", lambda s: s.pid_file == "/run/revurb.pid"),
    "REVERB_RESTART_CHECK_INTERVAL": ("0.2", lambda s: s.restart_check_interval == 0.2),
    "REVERB_MAX_PENDING_OUTPUT": ("4096", lambda s: s.max_pending_output == 4096),
    "REVERB_PER_MESSAGE_DEFLATE": ("true", lambda s: s.per_message_deflate is True),
    "REVERB_SWEEP_INTERVAL": ("0.1", lambda s: s.sweep_interval == 0.1),
    "REVURB_FAST_PATH": ("false", lambda s: s.fast_path is False),
    "REVURB_DRAIN_WINDOW": ("0", lambda s: s.drain_window == 0.0),
    "REVURB_GRACE_PERIOD": ("45", lambda s: s.grace_period == 45.0),
    "REVURB_LOG_FORMAT": ("json", lambda s: s.log_format == "json"),
    "REVURB_METRICS": ("true", lambda s: s.metrics.enabled is True),
    "REVURB_METRICS_HOST": ("127.0.0.1", lambda s: s.metrics.host == "127.0.0.1"),
    "REVURB_METRICS_PORT": ("9700", lambda s: s.metrics.port == 9700),
    "REVURB_METRICS_TOKEN": ("s3cret", lambda s: s.metrics.token == "s3cret"),
    "REVURB_REQUEST_HEAD_TIMEOUT": ("2.5", lambda s: s.limits.request_head_timeout == 2.5),
    "REVURB_KEEP_ALIVE_TIMEOUT": ("30", lambda s: s.limits.keep_alive_timeout == 30.0),
    "REVURB_MAX_HEADERS": ("40", lambda s: s.limits.max_headers == 40),
    "REVURB_MAX_CONNECTIONS_PER_IP": ("20", lambda s: s.limits.max_connections_per_ip == 20),
    "REVERB_APP_MAX_BACKEND_EVENTS_PER_SEC": ("500", lambda s: s.apps[0].max_backend_events_per_sec == 500),
    "REVURB_DASHBOARD": ("true", lambda s: s.dashboard.enabled is True),
    "REVURB_DASHBOARD_PATH": ("/admin/live/", lambda s: s.dashboard.path == "/admin/live"),
    "REVURB_DASHBOARD_SECRET": ("d-secret", lambda s: s.dashboard.secret == "d-secret"),
    "REVURB_DASHBOARD_SHARE_INTERVAL": ("2.5", lambda s: s.dashboard.share_interval == 2.5),
    "REVURB_DASHBOARD_CONSOLE_RATE": ("7", lambda s: s.dashboard.console_rate == 7),
    "REVURB_WEBHOOK_BATCH_WINDOW": ("0", lambda s: s.webhooks.batch_window == 0.0),
    "REVURB_WEBHOOK_RETRY_FOR": ("60", lambda s: s.webhooks.retry_for == 60.0),
    "REVURB_WEBHOOK_QUEUE_SIZE": ("50", lambda s: s.webhooks.queue_size == 50),
    "REVURB_WEBHOOK_TIMEOUT": ("2.5", lambda s: s.webhooks.timeout == 2.5),
    "REVURB_WEBHOOK_CLAIM_AFTER": ("5", lambda s: s.webhooks.claim_after == 5.0),
}

ALL_VARIABLES = {**DESIGN_VARIABLES, **EXTRA_VARIABLES}


class DatabaseProvider:
    """A custom provider, as a user would write one to load apps from a database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.apps = (App(id="db-1", key="db-key", secret="db-secret"),)

    async def all(self) -> Sequence[App]:
        return self.apps

    async def find_by_id(self, app_id: str) -> App | None:
        return next((app for app in self.apps if app.id == app_id), None)

    async def find_by_key(self, key: str) -> App | None:
        return next((app for app in self.apps if app.key == key), None)


class NotAProvider:
    def __init__(self) -> None:
        self.apps: list[App] = []


def _env_with(name: str, value: str) -> dict[str, str]:
    env = dict(CREDENTIALS)
    env[name] = value
    if name == "REVERB_TLS_KEY" or name == "REVERB_TLS_PASSPHRASE":
        env["REVERB_TLS_CERT"] = __file__
    if name == "REVURB_DASHBOARD":
        env["REVURB_DASHBOARD_SECRET"] = "d-secret"
    return env


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# Defaults and the documented config


def test_nothing_configured_gives_the_defaults() -> None:
    assert settings_from_env({}) == Settings()


def test_documented_config_with_an_empty_environment_gives_the_defaults(tmp_path: Path) -> None:
    assert load_settings(env={}, config_file=DOCUMENTED, cwd=tmp_path) == Settings()


def test_the_tables_cover_every_variable_the_loader_reads() -> None:
    assert set(ALL_VARIABLES) == set(ENV_PATHS)
    assert set(DESIGN_VARIABLES) <= set(ENV_PATHS)


@pytest.mark.parametrize("name", sorted(ALL_VARIABLES))
def test_each_variable_sets_its_key(name: str) -> None:
    value, holds = ALL_VARIABLES[name]
    env = _env_with(name, value)
    assert holds(settings_from_env(env))
    without = {k: v for k, v in env.items() if k != name}
    if name not in CREDENTIALS:  # without its variable the key keeps its default
        assert not holds(settings_from_env(without))


@pytest.mark.parametrize("name", sorted(ALL_VARIABLES))
def test_documented_config_reads_each_variable_like_the_environment(name: str, tmp_path: Path) -> None:
    assert f'env("{name}"' in DOCUMENTED.read_text()
    env = _env_with(name, ALL_VARIABLES[name][0])
    assert load_settings(env=env, config_file=DOCUMENTED, cwd=tmp_path) == settings_from_env(env)


def test_empty_variables_count_as_unset() -> None:
    assert settings_from_env({"REVERB_SERVER_PORT": "", "REVERB_APP_MAX_CONNECTIONS": " "}) == Settings()


# Precedence


def test_each_layer_overrides_the_next_key_by_key(tmp_path: Path) -> None:
    write(
        tmp_path / "reverb.config.py",
        'config = {"servers": {"reverb": {"port": 1111, "host": "10.0.0.1", "path": "local",'
        ' "hostname": "local.example", "max_request_size": 1234}}}\n',
    )
    env = {"REVERB_SERVER_PORT": "2222", "REVERB_SERVER_HOST": "10.0.0.2", "REVERB_SERVER_PATH": "env"}
    config = write(tmp_path / "top.toml", '[servers.reverb]\nport = 3333\nhost = "10.0.0.3"\n')
    flags = Layer({(*SERVER, "port"): 4444}, {(*SERVER, "port"): "--port"})

    only_local = load_settings(env={}, cwd=tmp_path)
    assert (only_local.port, only_local.host, only_local.path) == (1111, "10.0.0.1", "/local")
    with_env = load_settings(env=env, cwd=tmp_path)
    assert (with_env.port, with_env.host, with_env.path, with_env.hostname) == (
        2222,
        "10.0.0.2",
        "/env",
        "local.example",
    )
    with_file = load_settings(env=env, cwd=tmp_path, config_file="top.toml")
    assert (with_file.port, with_file.host, with_file.path, with_file.max_request_size) == (
        3333,
        "10.0.0.3",
        "/env",
        1234,
    )
    with_flags = load_settings(env=env, cwd=tmp_path, config_file=config, flags=flags)
    assert (with_flags.port, with_flags.host) == (4444, "10.0.0.3")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_settings(env={}, cwd=empty) == Settings()


def test_apps_merge_by_position_and_env_describes_the_first(tmp_path: Path) -> None:
    write(
        tmp_path / "reverb.config.py",
        "config = {'apps': {'apps': ["
        "{'app_id': '1', 'key': 'k1', 'secret': 's1', 'ping_interval': 5},"
        "{'app_id': '2', 'key': 'k2', 'secret': 's2'}]}}\n",
    )
    settings = load_settings(
        env={"REVERB_APP_SECRET": "from-env", "REVERB_APP_PING_INTERVAL": "9"}, cwd=tmp_path
    )
    assert [(a.id, a.key, a.secret, a.ping_interval) for a in settings.apps] == [
        ("1", "k1", "from-env", 9.0),
        ("2", "k2", "s2", 60.0),
    ]


def test_dot_env_is_read_and_the_process_environment_wins(tmp_path: Path) -> None:
    write(tmp_path / ".env", "REVERB_SERVER_PORT=7000\nREVERB_SERVER_HOST=10.1.1.1\nREVERB_APP_KEY=dotenv\n")
    environment = read_environment(tmp_path, {"REVERB_SERVER_PORT": "7001", "REVERB_APP_KEY": ""})
    assert environment["REVERB_SERVER_PORT"] == "7001"
    assert environment["REVERB_SERVER_HOST"] == "10.1.1.1"
    assert environment["REVERB_APP_KEY"] == "dotenv"  # an empty process variable does not hide .env


# File formats

PY_CONFIG = """
from revurb.config import env

config = {
    "servers": {"reverb": {"port": 9100, "path": "/ws", "scaling": {"enabled": env("SCALE", False)}}},
    "apps": {"apps": [{"app_id": "7", "key": "k7", "secret": "s7", "allowed_origins": ["a.com"],
                       "rate_limiting": {"enabled": False, "max_attempts": 5, "decay_seconds": 2},
                       "webhooks": [{"url": "https://hooks/x", "event_types": ["channel_occupied"]}]}]},
}
"""
TOML_CONFIG = """
[servers.reverb]
port = 9100
path = "/ws"

[[apps.apps]]
app_id = "7"
key = "k7"
secret = "s7"
allowed_origins = ["a.com"]
rate_limiting = { enabled = false, max_attempts = 5, decay_seconds = 2 }
webhooks = [{ url = "https://hooks/x", event_types = ["channel_occupied"] }]
"""
JSON_CONFIG = {
    "servers": {"reverb": {"port": 9100, "path": "/ws"}},
    "apps": {
        "apps": [
            {
                "app_id": "7",
                "key": "k7",
                "secret": "s7",
                "allowed_origins": ["a.com"],
                "rate_limiting": {"enabled": False, "max_attempts": 5, "decay_seconds": 2},
                "webhooks": [{"url": "https://hooks/x", "event_types": ["channel_occupied"]}],
            }
        ]
    },
}
EXPECTED_FROM_FILES = Settings(
    port=9100,
    path="/ws",
    apps=(
        App(
            id="7",
            key="k7",
            secret="s7",
            allowed_origins=("a.com",),
            rate_limiting=False,
            rate_limit_max_attempts=5,
            rate_limit_decay_seconds=2.0,
            webhooks=(Webhook("https://hooks/x", ("channel_occupied",)),),
        ),
    ),
)


@pytest.mark.parametrize(
    ("name", "text"),
    [("c.py", PY_CONFIG), ("c.toml", TOML_CONFIG), ("c.json", json.dumps(JSON_CONFIG))],
)
def test_each_file_format_gives_the_same_settings(name: str, text: str, tmp_path: Path) -> None:
    path = write(tmp_path / name, text)
    assert load_settings(env={}, config_file=path, cwd=tmp_path) == EXPECTED_FROM_FILES


def test_aliases_override_by_layer_like_the_full_names(tmp_path: Path) -> None:
    other = str(tmp_path / "other.pem")
    write(tmp_path / "other.pem", "")
    config = write(
        tmp_path / "c.json",
        json.dumps(
            {
                "servers": {"reverb": {"options": {"tls": {"cert": __file__, "key": __file__}}}},
                "apps": {"apps": [{"id": "9", "key": "k", "secret": "s"}]},
            }
        ),
    )
    from_file = load_settings(env={"REVERB_TLS_CERT": other}, config_file=config, cwd=tmp_path)
    assert (from_file.tls.cert, from_file.tls.key, from_file.apps[0].id) == (__file__, __file__, "9")
    flags = Layer({("servers", "reverb", "options", "tls", "local_cert"): other})
    assert load_settings(env={}, config_file=config, cwd=tmp_path, flags=flags).tls.cert == other


def test_env_in_a_py_config_reads_the_loaders_environment(tmp_path: Path) -> None:
    path = write(tmp_path / "c.py", PY_CONFIG)
    assert load_settings(env={"SCALE": "true"}, config_file=path, cwd=tmp_path).scaling.enabled is True


def test_reverb_keys_without_a_use_are_accepted(tmp_path: Path) -> None:
    config = {
        "default": "reverb",
        "servers": {"reverb": {"pulse_ingest_interval": 15, "telescope_ingest_interval": 15}},
        "apps": {
            "provider": "config",
            "apps": [
                {
                    "key": "k",
                    "secret": "s",
                    "app_id": "1",
                    "options": {"host": "x", "port": 443, "scheme": "https", "useTLS": True},
                    "rate_limiting": {"terminate_on_limit": False},
                }
            ],
        },
    }
    settings = settings_from_config(config)
    assert settings.apps[0].id == "1"
    assert (settings.client_port, settings.client_scheme) == (443, "https")


# Invalid values: one message naming the key and what it accepts

ENV_ERRORS: list[tuple[dict[str, str], str | None]] = [
    ({"REVERB_SERVER_PORT": "http"}, "REVERB_SERVER_PORT must be a whole number from 1 to 65535, got 'http'"),
    (
        {"REVERB_SERVER_PORT": "70000"},
        "REVERB_SERVER_PORT must be a whole number from 1 to 65535, got '70000'",
    ),
    ({"REVERB_SERVER_HOST": " "}, None),  # empty counts as unset: no error
    (
        {"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "everyone"},
        "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM must be one of members, all, none, got 'everyone'",
    ),
    (
        {"REVERB_APP_PING_INTERVAL": "soon"},
        "REVERB_APP_PING_INTERVAL must be a number greater than 0, got 'soon'",
    ),
    ({"REVERB_APP_PING_INTERVAL": "0"}, "REVERB_APP_PING_INTERVAL must be a number greater than 0, got '0'"),
    (
        {"REVERB_APP_ACTIVITY_TIMEOUT": "0"},
        "REVERB_APP_ACTIVITY_TIMEOUT must be a whole number of at least 1, got '0'",
    ),
    (
        {"REVERB_APP_MAX_CONNECTIONS": "many"},
        "REVERB_APP_MAX_CONNECTIONS must be a whole number of at least 1, got 'many'",
    ),
    (
        {"REVERB_APP_MAX_MESSAGE_SIZE": "-5"},
        "REVERB_APP_MAX_MESSAGE_SIZE must be a whole number of at least 1, got '-5'",
    ),
    (
        {"REVERB_MAX_REQUEST_SIZE": "1e4"},
        "REVERB_MAX_REQUEST_SIZE must be a whole number of at least 1, got '1e4'",
    ),
    ({"REVERB_SCALING_ENABLED": "maybe"}, "REVERB_SCALING_ENABLED must be true or false, got 'maybe'"),
    ({"REVERB_APP_SUBSCRIPTION_COUNT": "2"}, "REVERB_APP_SUBSCRIPTION_COUNT must be true or false, got '2'"),
    ({"REVERB_DEBUG": "loud"}, "REVERB_DEBUG must be true or false, got 'loud'"),
    ({"REDIS_PORT": "0"}, "REDIS_PORT must be a whole number from 1 to 65535, got '0'"),
    ({"REDIS_DB": "x"}, "REDIS_DB must be a whole number of at least 0, got 'x'"),
    ({"REVERB_SCHEME": "wss"}, "REVERB_SCHEME must be one of http, https, got 'wss'"),
    ({"REVERB_PORT": "0"}, "REVERB_PORT must be a whole number from 1 to 65535, got '0'"),
    ({"REVERB_WORKERS": "0"}, "REVERB_WORKERS must be a whole number of at least 1, got '0'"),
    (
        {"REVERB_APP_WEBHOOKS": "ftp://x"},
        "REVERB_APP_WEBHOOKS must be an http:// or https:// URL, got 'ftp://x'",
    ),
    (
        {"REVERB_APP_KEY": "k"},
        "apps.apps[0].secret (REVERB_APP_SECRET) is required when an app is configured",
    ),
    ({"REVERB_APP_SECRET": "s"}, "apps.apps[0].key (REVERB_APP_KEY) is required when an app is configured"),
    ({"REVERB_TLS_CERT": "/no/such.pem"}, "REVERB_TLS_CERT: the file /no/such.pem does not exist"),
    (
        {"REVERB_TLS_KEY": __file__},
        "servers.reverb.options.tls: a key or passphrase was given without a certificate (local_cert)",
    ),
    (
        {"REVERB_APPS_PROVIDER": "no_such_module:Provider"},
        "REVERB_APPS_PROVIDER: cannot import 'no_such_module:Provider': No module named 'no_such_module'",
    ),
    (
        {"REVERB_APPS_PROVIDER": "tests.unit.test_config:Missing"},
        "REVERB_APPS_PROVIDER: cannot import 'tests.unit.test_config:Missing': module "
        "'tests.unit.test_config' has no attribute 'Missing'",
    ),
    (
        {"REVERB_APPS_PROVIDER": "justaname"},
        "REVERB_APPS_PROVIDER: cannot import 'justaname': expected an import path like "
        "package.module:ClassName",
    ),
]


@pytest.mark.parametrize(("env", "message"), ENV_ERRORS)
def test_invalid_environment_values_name_the_variable(env: dict[str, str], message: str | None) -> None:
    if message is None:
        settings_from_env(env)
        return
    with pytest.raises(ConfigError) as raised:
        settings_from_env(env)
    assert str(raised.value).startswith(message), str(raised.value)


FILE_ERRORS: list[tuple[object, str | None]] = [
    (
        {"servers": {"reverb": {"prot": 1}}},
        "unknown key servers.reverb.prot (in c.json); the keys accepted here are",
    ),
    (
        {"servers": {"reverb": {"port": "x"}}},
        "servers.reverb.port (in c.json) must be a whole number from 1 to 65535",
    ),
    ({"servers": {"reverb": {"port": True}}}, "servers.reverb.port (in c.json) must be a whole number"),
    ({"servers": {"reverb": {"host": 5.5}}}, None),
    ({"apps": {"apps": {"key": "k"}}}, "apps.apps in c.json must be a list of apps"),
    ({"apps": {"apps": ["k"]}}, "apps.apps[0] in c.json must be a table of options"),
    (
        {"apps": {"apps": [{"key": "k", "secret": "s", "app_id": "1", "ping_intervl": 3}]}},
        "unknown key apps.apps[0].ping_intervl (in c.json); the keys accepted here are "
        "accept_client_events_from, activity_timeout, allowed_origins, app_id, key,",
    ),
    (
        {"apps": {"apps": [{"key": "k", "secret": "s"}, {"key": "k2", "secret": "s2"}]}},
        "apps.apps[1].app_id is required (apps.apps[1])",
    ),
    (
        {
            "apps": {
                "apps": [
                    {"key": "k", "secret": "s", "app_id": "1"},
                    {"key": "k", "secret": "t", "app_id": "2"},
                ]
            }
        },
        "apps.apps: two apps have the key 'k'; ids and keys must be unique",
    ),
    (
        {"apps": {"apps": [{"key": "k", "secret": "s", "allowed_origins": [1]}]}},
        "apps.apps[0].allowed_origins (in c.json) must be a list of strings or a comma-separated string",
    ),
    (
        {"apps": {"apps": [{"key": "k", "secret": "s", "webhooks": ["ftp://x"]}]}},
        "apps.apps[0].webhooks (in c.json)[0] must be an http:// or https:// URL, got 'ftp://x'",
    ),
    (
        {"apps": {"apps": [{"key": "k", "secret": "s", "webhooks": [{"uri": "http://x"}]}]}},
        "apps.apps[0].webhooks (in c.json)[0] must be a URL or a table with url and optional event_types",
    ),
    (
        {
            "apps": {
                "apps": [{"key": "k", "secret": "s", "webhooks": [{"url": "http://x", "event_types": ["y"]}]}]
            }
        },
        "apps.apps[0].webhooks (in c.json)[0].event_types: 'y' is not one of channel_occupied",
    ),
    (
        {
            "apps": {
                "apps": [{"key": "k", "secret": "s", "webhooks": [{"url": "http://x", "filter": {"a": 1}}]}]
            }
        },
        "apps.apps[0].webhooks (in c.json)[0].filter must be a table with channel_name_starts_with and/or",
    ),
    (
        {
            "apps": {
                "apps": [{"key": "k", "secret": "s", "webhooks": [{"url": "http://x", "headers": {"a": 1}}]}]
            }
        },
        "apps.apps[0].webhooks (in c.json)[0].headers must be a table of header names to string values",
    ),
    (
        {"apps": {"apps": [{"key": "k", "secret": "s", "webhooks": [{"url": "ws://x"}]}]}},
        "apps.apps[0].webhooks (in c.json)[0].url must be an http:// or https:// URL, got 'ws://x'",
    ),
    ([1, 2], "must hold an object at the top level"),
    (
        {"apps": {"apps": [{"key": "k", "secret": ["hidden-value"]}]}},
        "apps.apps[0].secret (in c.json) must be a string",
    ),
    (
        {"servers": {"reverb": {"scaling": {"server": {"password": {"x": "hidden-value"}}}}}},
        "password must be a",
    ),
    ({"servers": 5}, "servers (in c.json) must be a table of options, got 5"),
    ({"servers": {"reverb": {"port": {"a": 1}}}}, "servers.reverb.port must be a single value, not a table"),
]


@pytest.mark.parametrize(("config", "message"), FILE_ERRORS)
def test_invalid_file_values_name_the_key(config: object, message: str | None, tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", json.dumps(config))
    if message is None:
        load_settings(env={}, config_file=path, cwd=tmp_path)
        return
    with pytest.raises(ConfigError) as raised:
        load_settings(env={}, config_file=path, cwd=tmp_path)
    assert message in str(raised.value), str(raised.value)
    assert "hidden-value" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.yaml", "a: 1", "must end in one of .py, .toml, .json"),
        ("c.toml", "servers = [", "cannot be read: "),
        ("c.json", "{", "cannot be read: "),
        ("c.py", "settings = {}", "must define a dict named `config`"),
        ("c.py", "config = {'servers': 1/0}", "failed: ZeroDivisionError: division by zero"),
        ("c.py", "config = {", "cannot be read: "),
    ],
)
def test_unreadable_files_are_one_message(name: str, text: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as raised:
        load_settings(env={}, config_file=path, cwd=tmp_path)
    assert str(raised.value).startswith(f"config file {path}")
    assert message in str(raised.value)


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist"):
        load_settings(env={}, config_file="nope.toml", cwd=tmp_path)


def test_several_workers_need_scaling() -> None:
    with pytest.raises(ConfigError) as raised:
        check(Settings(workers=2), "--workers")
    assert str(raised.value).startswith(
        "--workers is 2, but several workers need scaling: set REVERB_SCALING"
    )
    assert check(Settings(workers=2, scaling=ScalingSettings(enabled=True))).workers == 2


# Secrets, hand-off, providers


def test_secrets_never_show_in_reprs() -> None:
    settings = settings_from_env(
        {**CREDENTIALS, "REDIS_PASSWORD": "redis-pw", "REDIS_URL": "redis://:url-pw@h/0"}
    )
    settings = replace(settings, tls=TLSSettings(cert="c", key="k", passphrase="tls-pw"))
    text = repr(settings)
    for secret in ("app-secret", "redis-pw", "url-pw", "tls-pw"):
        assert secret not in text


EVERY_APP_OPTION = App(
    id="1",
    key="k",
    secret="s",
    allowed_origins=("a.com",),
    ping_interval=7.5,
    activity_timeout=9,
    max_connections=5,
    max_message_size=999,
    accept_client_events_from="none",
    rate_limiting=False,
    rate_limit_max_attempts=3,
    rate_limit_decay_seconds=4.0,
    subscription_count=True,
    subscription_count_interval=2.0,
    max_presence_members=11,
    max_presence_member_size=111,
    max_event_data_size=1111,
    webhooks=(
        Webhook("http://h", ("member_added",)),
        Webhook(
            "https://h2/x",
            ("subscription_count",),
            channel_name_starts_with="presence-",
            channel_name_ends_with="-chat",
            headers=(("Authorization", "Bearer t"),),
        ),
    ),
    max_backend_events_per_sec=50,
)
EVERY_SETTING = Settings(
    apps=(EVERY_APP_OPTION, App(id="2", key="k2", secret="s2")),
    host="127.0.0.1",
    port=9200,
    path="/ws",
    hostname="h.example",
    max_request_size=5000,
    scaling=ScalingSettings(
        enabled=True,
        channel="c",
        redis_url="redis://x/1",
        redis_host="10.0.0.9",
        redis_port=6390,
        redis_username="u",
        redis_password="pw",
        redis_db=4,
        heartbeat_interval=0.5,
        queue_size=20,
        redis_sentinels=(("10.0.0.8", 26379), ("s2", 26380)),
        redis_sentinel_master="m",
        redis_sentinel_password="spw",
        history_seconds=12.0,
        history_size=300,
        redis_timeout=1.5,
    ),
    tls=TLSSettings(cert=__file__, key=__file__, passphrase="pp"),
    app_provider="tests.unit.test_config:DatabaseProvider",
    debug=True,
    client_port=443,
    client_scheme="https",
    workers=3,
    pid_file="/tmp/x.pid",
    restart_check_interval=0.5,
    signal_pid=12,
    max_pending_output=4096,
    sweep_interval=0.25,
    per_message_deflate=True,
    fast_path=False,
    drain_window=1.5,
    grace_period=9.0,
    log_format="json",
    metrics=MetricsSettings(enabled=True, host="127.0.0.2", port=9700, token="t", directory="/tmp/m"),
    limits=LimitSettings(
        request_head_timeout=3.0, keep_alive_timeout=7.0, max_headers=50, max_connections_per_ip=9
    ),
    dashboard=DashboardSettings(enabled=True, path="/live", secret="d", share_interval=0.5, console_rate=9),
    webhooks=WebhookSettings(batch_window=0.2, retry_for=30.0, queue_size=7, timeout=1.5, claim_after=4.0),
)


@pytest.mark.parametrize(
    ("value", "default"),
    [
        (EVERY_SETTING, Settings()),
        (EVERY_SETTING.scaling, ScalingSettings()),
        (EVERY_SETTING.tls, TLSSettings()),
        (EVERY_SETTING.metrics, MetricsSettings()),
        (EVERY_SETTING.limits, LimitSettings()),
        (EVERY_SETTING.dashboard, DashboardSettings()),
        (EVERY_SETTING.webhooks, WebhookSettings()),
        (EVERY_APP_OPTION.webhooks[1], Webhook("")),
        (EVERY_APP_OPTION, App(id="", key="", secret="")),
    ],
)
def test_the_handoff_fixture_sets_every_field(value: Any, default: Any) -> None:
    """A field added to Settings or App fails here until it is configurable (and set below)."""
    same = [f.name for f in fields(value) if getattr(value, f.name) == getattr(default, f.name)]
    assert same == [], f"not exercised (and maybe not configurable): {same}"


def test_handoff_rebuilds_exactly_the_same_settings() -> None:
    assert settings_from_handoff(handoff(EVERY_SETTING)) == EVERY_SETTING
    assert settings_from_handoff(handoff(Settings())) == Settings()


def test_every_app_option_is_read_from_a_file(tmp_path: Path) -> None:
    config = settings_to_config(EVERY_SETTING)
    path = write(tmp_path / "all.json", json.dumps(config))
    assert load_settings(env={}, config_file=path, cwd=tmp_path) == EVERY_SETTING


def test_handoff_must_be_a_json_object() -> None:
    with pytest.raises(ConfigError, match="REVURB_SETTINGS is not valid JSON"):
        settings_from_handoff("{")


async def test_provider_chosen_by_import_path_serves_the_app() -> None:
    settings = settings_from_env({"REVERB_APPS_PROVIDER": "tests.unit.test_config:DatabaseProvider"})
    app = create_app(settings)
    assert isinstance(app.provider, DatabaseProvider)
    assert app.provider.settings is settings
    assert isinstance(app.provider, AppProvider)
    assert (await app.provider.find_by_key("db-key")) == App(id="db-1", key="db-key", secret="db-secret")
    assert await app.provider.find_by_id("nope") is None


def test_config_provider_is_the_default() -> None:
    provider = create_provider(None, [App(id="1", key="k", secret="s")], Settings())
    assert isinstance(provider, ConfigAppProvider)
    assert isinstance(create_provider("config", [], Settings()), ConfigAppProvider)


def test_a_provider_that_is_not_one_is_refused() -> None:
    with pytest.raises(TypeError, match="lacks all / find_by_id / find_by_key"):
        create_provider("tests.unit.test_config:NotAProvider", [], Settings())


def test_the_dashboard_needs_a_secret() -> None:
    with pytest.raises(ConfigError) as failure:
        settings_from_env({**CREDENTIALS, "REVURB_DASHBOARD": "true"})
    assert str(failure.value) == (
        "REVURB_DASHBOARD is true, which needs a secret to log in with: "
        "set REVURB_DASHBOARD_SECRET (servers.reverb.dashboard.secret)"
    )


@pytest.mark.parametrize("path", ["/", "/apps", "/app/x", "/up", "/metrics/live"])
def test_the_dashboard_keeps_off_the_servers_own_paths(path: str) -> None:
    with pytest.raises(ConfigError, match="^REVURB_DASHBOARD_PATH is .* which the server needs for itself"):
        settings_from_env({**CREDENTIALS, "REVURB_DASHBOARD_PATH": path})


def test_a_dashboard_secret_is_never_shown() -> None:
    settings = settings_from_env({**CREDENTIALS, "REVURB_DASHBOARD_SECRET": "hidden-one"})
    assert "hidden-one" not in repr(settings)
