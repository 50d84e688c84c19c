"""The `revurb` command line: start, install, restart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from revurb import __version__
from revurb.config import ConfigError, Settings, check, load_settings
from revurb.config.sources import SERVER, TLS, ConfigPath, Layer

cli = typer.Typer(
    help="Revurb: a Pusher-protocol WebSocket server (a Python port of Laravel Reverb).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="REVURB_CONFIG",
        help="A config file (.py exporting `config`, .toml or .json) in Reverb's shape; overrides the "
        "environment, .env and ./reverb.config.py.",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"revurb {__version__}")
        raise typer.Exit()


@cli.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Run and manage Revurb servers. Configuration: --config FILE, then REVERB_* environment
    variables (and .env), then ./reverb.config.py, then defaults."""


def fail(error: ConfigError) -> NoReturn:
    typer.echo(f"Invalid configuration: {error}", err=True)
    raise typer.Exit(2)


def _flags(values: dict[ConfigPath, tuple[str, object]]) -> Layer:
    layer = Layer()
    for path, (flag, value) in values.items():
        if value is not None:
            layer.values[path] = value
            layer.labels[path] = flag
    return layer


def _load(config: Path | None, flags: Layer | None = None) -> Settings:
    try:
        settings = load_settings(config_file=config, flags=flags)
        label = flags.labels.get((*SERVER, "workers")) if flags else None
        return check(settings, label or "servers.reverb.workers (REVERB_WORKERS)")
    except ConfigError as error:
        fail(error)


@cli.command()
def start(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on [REVERB_SERVER_HOST, 0.0.0.0].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [REVERB_SERVER_PORT, 8080].")] = None,
    path: Annotated[str | None, typer.Option(help="Prefix for every route [REVERB_SERVER_PATH].")] = None,
    hostname: Annotated[
        str | None, typer.Option(help="Host name clients use, shown in the banner [REVERB_HOST].")
    ] = None,
    config: ConfigOption = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Log every frame in and out, with socket ids.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes sharing the port; more than one needs scaling (Redis) enabled."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="text (default) or json: one object a line for log shippers [REVURB_LOG_FORMAT].",
        ),
    ] = None,
    tls_cert: Annotated[
        str | None, typer.Option(help="TLS certificate (PEM) to serve wss:// (options.tls.local_cert).")
    ] = None,
    tls_key: Annotated[
        str | None,
        typer.Option(help="TLS private key (PEM), if not in the certificate (options.tls.local_pk)."),
    ] = None,
    tls_passphrase: Annotated[
        str | None,
        typer.Option(help="Passphrase of the key; prefer REVERB_TLS_PASSPHRASE, flags show in `ps`."),
    ] = None,
) -> None:
    """Start the server. With no app configured, makes development credentials and saves them to .env."""
    from revurb.serving import become_server

    flags = _flags(
        {
            (*SERVER, "host"): ("--host", host),
            (*SERVER, "port"): ("--port", port),
            (*SERVER, "path"): ("--path", path),
            (*SERVER, "hostname"): ("--hostname", hostname),
            (*SERVER, "debug"): ("--debug", True if debug else None),
            (*SERVER, "workers"): ("--workers", workers),
            (*SERVER, "log_format"): ("--log-format", log_format),
            (*TLS, "local_cert"): ("--tls-cert", tls_cert),
            (*TLS, "local_pk"): ("--tls-key", tls_key),
            (*TLS, "passphrase"): ("--tls-passphrase", tls_passphrase),
        }
    )
    settings = _load(config, flags)
    if not settings.apps and settings.app_provider is None:
        settings = _development_app(settings, config, flags)
    become_server(settings)


def _development_app(settings: Settings, config: Path | None, flags: Layer) -> Settings:
    from revurb.install import CREDENTIAL_VARIABLES, client_snippet, fresh_values, write_missing

    values = fresh_values()
    try:
        write_missing(Path(".env"), {name: values[name] for name in CREDENTIAL_VARIABLES})
    except OSError as error:
        fail(
            ConfigError(f"no app is configured and development credentials cannot be saved to .env: {error}")
        )
    settings = _load(config, flags)
    if not settings.apps:
        fail(ConfigError("no app is configured and the credentials written to .env were not picked up"))
    app = settings.apps[0]
    typer.echo(
        f"No app was configured: development credentials are in {Path('.env').resolve()}\n"
        f"  REVERB_APP_ID={app.id}\n  REVERB_APP_KEY={app.key}\n  REVERB_APP_SECRET={app.secret}\n\n"
        f"{client_snippet(settings, app.key)}\n"
    )
    return settings


@cli.command()
def install(
    env_file: Annotated[Path, typer.Option("--env-file", help="The file to write.")] = Path(".env"),
    host: Annotated[
        str, typer.Option(help="REVERB_HOST to write: where clients reach the server.")
    ] = "localhost",
    port: Annotated[int, typer.Option(help="REVERB_PORT to write.")] = 8080,
    scheme: Annotated[str, typer.Option(help="REVERB_SCHEME to write: http or https.")] = "http",
) -> None:
    """Write fresh app credentials (REVERB_APP_ID, _KEY, _SECRET) and REVERB_HOST, _PORT, _SCHEME
    into .env; values already there are kept."""
    from revurb.install import fresh_values, write_missing

    if scheme not in ("http", "https"):
        fail(ConfigError(f"--scheme must be one of http, https, got {scheme!r}"))
    written = write_missing(env_file, fresh_values(host, port, scheme))
    if written:
        typer.echo(f"Wrote {', '.join(written)} to {env_file}")
    else:
        typer.echo(f"{env_file} already has every value; nothing changed")


@cli.command()
def restart(
    config: ConfigOption = None,
    port: Annotated[
        int | None, typer.Option(help="Port of the server to restart (finds its pid file).")
    ] = None,
) -> None:
    """Make running servers stop gracefully, for their process manager to start them again: through
    Redis when scaling is enabled (every server sharing it), else through the server's pid file."""
    from revurb.serve import default_pid_file
    from revurb.server.restart import restart_key, signal_pid_file, signal_redis

    settings = _load(config, _flags({(*SERVER, "port"): ("--port", port)}))
    if settings.scaling.enabled:
        try:
            signal_redis(settings.scaling)
        except Exception as error:  # redis raises several kinds; all mean "could not reach it"
            typer.echo(f"Cannot store the restart signal in Redis: {error}", err=True)
            raise typer.Exit(1) from None
        typer.echo(
            f"Restart signal stored in Redis ({restart_key(settings.scaling)}); servers stop within "
            f"{settings.restart_check_interval:g} s"
        )
        return
    pid_file = default_pid_file(settings)
    pid = signal_pid_file(pid_file)
    if pid is None:
        typer.echo(f"No running server found (no live pid in {pid_file})", err=True)
        raise typer.Exit(1)
    typer.echo(f"Sent SIGTERM to the server (pid {pid}); it stops gracefully")


def main() -> None:
    cli(prog_name="revurb")
