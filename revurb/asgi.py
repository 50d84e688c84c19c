"""`uvicorn revurb.asgi:app`: the app built from the same configuration as `revurb start`.

`REVURB_CONFIG` may name a config file (as `--config` does); `revurb start --workers N` hands its
resolved settings to each worker in `REVURB_SETTINGS`.
"""

from __future__ import annotations

import logging
import os
import sys

from revurb.config import HANDOFF_VARIABLE, ConfigError, Settings, load_settings, settings_from_handoff
from revurb.server.app import Revurb, create_app

CONFIG_VARIABLE = "REVURB_CONFIG"


def settings_for_process() -> Settings:
    handed = os.environ.get(HANDOFF_VARIABLE)
    if handed:
        return settings_from_handoff(handed)
    return load_settings(config_file=os.environ.get(CONFIG_VARIABLE) or None)


def _show_frames(settings: Settings) -> None:
    """Under a bare `uvicorn`, nothing shows `revurb.*` logs; with debug on, make frames visible."""
    revurb_logger = logging.getLogger("revurb")
    if settings.debug and not revurb_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        revurb_logger.addHandler(handler)
        revurb_logger.setLevel(logging.DEBUG)


def _build() -> Revurb:
    try:
        settings = settings_for_process()
        _show_frames(settings)
        # Served by uvicorn's own server (a plain `uvicorn`, or a `--workers` worker): the app
        # starts its drain from the signals itself.
        return create_app(settings, drain_on_signals=True)
    except ConfigError as error:
        print(f"Invalid configuration: {error}", file=sys.stderr)
        raise SystemExit(2) from None


app = _build()
