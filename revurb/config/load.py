"""Where settings come from, highest first: `--config FILE`, the environment (with `.env`),
`./reverb.config.py`, built-in defaults. Each layer overrides the next key by key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from revurb.config.build import build_settings
from revurb.config.export import settings_to_config
from revurb.config.settings import ConfigError, Settings
from revurb.config.sources import LOCAL_CONFIG, Layer, env_layer, file_layer, mapping_layer
from revurb.wire import frames

#: Resolved settings as JSON, handed by `revurb start --workers N` to its worker processes.
HANDOFF_VARIABLE = "REVURB_SETTINGS"


def read_environment(cwd: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`.env` in `cwd` under the process environment (which wins, as with Laravel)."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(cwd / ".env").items() if v is not None}
    # An empty variable counts as unset everywhere, so it does not hide a value in `.env`.
    merged.update({k: v for k, v in (os.environ if environ is None else environ).items() if v})
    return merged


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    flags: Layer | None = None,
) -> Settings:
    """Settings for `revurb start` and `revurb.asgi`; `env` defaults to `.env` plus the process's.
    `flags` (command-line options) go on top of everything."""
    directory = Path(cwd) if cwd is not None else Path.cwd()
    environment = read_environment(directory) if env is None else env
    layer = Layer()
    local = directory / LOCAL_CONFIG
    if local.is_file():
        layer = file_layer(local, environment)
    layer = layer.override(env_layer(environment))
    if config_file is not None:
        path = Path(config_file)
        layer = layer.override(file_layer(path if path.is_absolute() else directory / path, environment))
    if flags is not None:
        layer = layer.override(flags)
    return build_settings(layer)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings from Reverb's environment variables alone, over the built-in defaults."""
    return build_settings(env_layer(env))


def settings_from_config(config: Mapping[str, Any], source: str = "config") -> Settings:
    """Settings from a nested configuration in Reverb's shape (as a `.py` config file's `config`)."""
    return build_settings(mapping_layer(config, source))


def handoff(settings: Settings) -> str:
    """The value of `REVURB_SETTINGS` that makes a worker build exactly `settings`."""
    return frames.dumps(settings_to_config(settings))


def settings_from_handoff(raw: str) -> Settings:
    try:
        config = frames.loads(raw)
    except frames.JSONDecodeError as error:
        raise ConfigError(f"{HANDOFF_VARIABLE} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{HANDOFF_VARIABLE} must hold a JSON object")
    return settings_from_config(config, HANDOFF_VARIABLE)
