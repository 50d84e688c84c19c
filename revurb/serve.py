"""Running the app under uvicorn for `revurb start`: logging, TLS, workers and the banner."""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
import uvicorn

from revurb import __version__
from revurb.config import HANDOFF_VARIABLE, ConfigError, Settings, handoff
from revurb.install import client_endpoint
from revurb.server.serving import Server, uvicorn_options

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def log_config(debug: bool) -> dict[str, Any]:
    """uvicorn's `log_config`: it is applied again in every worker process, so frames logged on
    `revurb.frames` with `--debug` reach the output from each of them."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    quiet = "INFO" if debug else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"default": handler},
        "loggers": {
            "revurb": {"handlers": ["default"], "level": "DEBUG" if debug else "INFO", "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": quiet, "propagate": False},
            "uvicorn.error": {"level": quiet},
            "uvicorn.access": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        },
    }


def default_pid_file(settings: Settings) -> str:
    """Per port, so several servers on one machine keep their own; `revurb restart` finds it the same way."""
    return settings.pid_file or str(Path(tempfile.gettempdir()) / f"revurb-{settings.port}.pid")


def check_tls(settings: Settings) -> None:
    """Load the certificate once here, so a bad file or passphrase is one clear message."""
    tls = settings.tls
    if tls.cert is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # Without a passphrase, OpenSSL would prompt on the terminal for an encrypted key: fail instead.
        context.load_cert_chain(tls.cert, tls.key, tls.passphrase if tls.passphrase is not None else "")
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(
            f"servers.reverb.options.tls: cannot load the certificate {tls.cert} "
            f"with key {tls.key or '(in the certificate file)'} ({error}); check that they are PEM files "
            "that match and that the passphrase (REVERB_TLS_PASSPHRASE, --tls-passphrase) is right"
        ) from None


def banner(settings: Settings) -> str:
    host, port, tls = client_endpoint(settings)
    scheme = "wss" if tls else "ws"
    lines = [
        f"Revurb {__version__} listening on {settings.host}:{settings.port}"
        + (f" ({settings.workers} workers)" if settings.workers > 1 else ""),
        f"  clients connect to {scheme}://{host}:{port}{settings.path}/app/{{key}}",
        f"  HTTP API at {'https' if tls else 'http'}://{host}:{port}{settings.path}/apps/{{app_id}}",
    ]
    if settings.app_provider:
        lines.append(f"  apps from {settings.app_provider}")
    lines += [f"  app {app.id} (key {app.key})" for app in settings.apps]
    if settings.scaling.enabled:
        lines.append(f"  scaling on Redis, channel {settings.scaling.channel!r}")
    return "\n".join(lines)


def serve(settings: Settings) -> None:
    """Run until stopped: one process, or `settings.workers` processes sharing the port."""
    from revurb.server.app import create_app

    check_tls(settings)
    settings = replace(settings, pid_file=default_pid_file(settings))
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        # REVURB_FAST_PATH=0 serves through uvicorn's own WebSocket layer (plain ASGI messages).
        **uvicorn_options(settings, fast_path=os.environ.get("REVURB_FAST_PATH", "1") != "0"),
        "log_config": log_config(settings.debug),
        "log_level": "info" if settings.debug else "warning",
        "ssl_certfile": settings.tls.cert,
        "ssl_keyfile": settings.tls.key,
        "ssl_keyfile_password": settings.tls.passphrase,
    }
    if settings.workers > 1:
        # Workers are spawned fresh and import `revurb.asgi`, which reads the resolved settings here.
        settings = replace(settings, signal_pid=os.getpid())
        os.environ[HANDOFF_VARIABLE] = handoff(settings)
        typer.echo(banner(settings))
        uvicorn.run("revurb.asgi:app", workers=settings.workers, **options)
        return
    app = create_app(settings)
    typer.echo(banner(settings))
    Server(uvicorn.Config(app, **options), app).run()
