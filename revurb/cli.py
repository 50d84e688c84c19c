"""The `revurb` command line."""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from typing import Annotated

import typer
import uvicorn

from revurb import __version__
from revurb.apps import App
from revurb.config import ConfigError, Settings, load_settings
from revurb.server.app import create_app

cli = typer.Typer(help="Revurb: a Pusher-protocol WebSocket server (a Python port of Laravel Reverb).")
logger = logging.getLogger("revurb")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"revurb {__version__}")
        raise typer.Exit()


@cli.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Run and manage Revurb servers."""


@cli.command()
def start(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    debug: Annotated[bool, typer.Option(help="Log every frame in and out.")] = False,
) -> None:
    """Start the server."""
    try:
        settings = load_settings()
    except ConfigError as error:
        typer.echo(f"Invalid configuration: {error}", err=True)
        raise typer.Exit(2) from None
    overrides: dict[str, object] = {"debug": debug}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = replace(settings, **overrides)  # type: ignore[arg-type]
    if not settings.apps:
        settings = replace(settings, apps=(_development_app(),))
    serve(settings)


def _development_app() -> App:
    app = App(id="app-id", key=secrets.token_hex(10), secret=secrets.token_hex(16))
    typer.echo(
        "No app configured (REVERB_APP_KEY is unset): serving a development app\n"
        f"  app id: {app.id}\n  key:    {app.key}\n  secret: {app.secret}"
    )
    return app


def serve(settings: Settings) -> None:
    """Run the app under uvicorn with uvloop and httptools."""
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    display = settings.hostname or ("localhost" if settings.host == "0.0.0.0" else settings.host)
    typer.echo(f"Revurb {__version__} on ws://{display}:{settings.port}{settings.path}/app/{{key}}")
    for served in settings.apps:
        typer.echo(f"  app {served.id} (key {served.key})")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        ws_ping_timeout=None,
        lifespan="on",
        log_level="info" if settings.debug else "warning",
        server_header=False,
    )


def main() -> None:
    cli()
