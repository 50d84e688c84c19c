"""Settings: built once at the edge (CLI, asgi module or create_app) and passed down, immutable.

The machinery lives in the modules of this package; this module is its public face. Precedence, highest
first: `--config FILE`, the environment (`.env` included), `./reverb.config.py`, defaults.
"""

from __future__ import annotations

from revurb.apps import App, AppProvider, ConfigAppProvider, create_provider
from revurb.config.build import check
from revurb.config.export import settings_to_config
from revurb.config.load import (
    HANDOFF_VARIABLE,
    handoff,
    load_settings,
    read_environment,
    settings_from_config,
    settings_from_env,
    settings_from_handoff,
)
from revurb.config.settings import (
    ConfigError,
    DashboardSettings,
    LimitSettings,
    MetricsSettings,
    ScalingSettings,
    Settings,
    TLSSettings,
    WebhookSettings,
    normalise_path,
)
from revurb.config.sources import ENV_PATHS, LOCAL_CONFIG, env

__all__ = [
    "ENV_PATHS",
    "HANDOFF_VARIABLE",
    "LOCAL_CONFIG",
    "LimitSettings",
    "App",
    "AppProvider",
    "ConfigAppProvider",
    "ConfigError",
    "DashboardSettings",
    "MetricsSettings",
    "ScalingSettings",
    "Settings",
    "TLSSettings",
    "WebhookSettings",
    "check",
    "create_provider",
    "env",
    "handoff",
    "load_settings",
    "normalise_path",
    "read_environment",
    "settings_from_config",
    "settings_from_env",
    "settings_from_handoff",
    "settings_to_config",
]
