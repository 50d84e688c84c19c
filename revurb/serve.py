"""`revurb start`: settings -> `uvicorn.Config` and `Server`, with logging, TLS, workers and the banner."""

from __future__ import annotations

import contextlib
import gc
import logging.config
import os
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from revurb import __version__
from revurb.config import HANDOFF_VARIABLE, ConfigError, Settings, handoff
from revurb.config.settings import LogFormat
from revurb.install import client_endpoint
from revurb.limits import check_limits
from revurb.log_format import TEXT_FORMAT
from revurb.transport.release import trim_allocator

if TYPE_CHECKING:
    from revurb.server.app import Revurb

#: The message limit at the frame header when the apps come from a provider (not known ahead).
MIN_WS_MAX_SIZE = 1_048_576
#: Of the grace period, what uvicorn's own shutdown leaves for the lifespan's end.
_LIFESPAN_SECONDS = 0.5
#: uvicorn's own wait for connections and tasks, in a worker whose drain has already run.
_AFTER_DRAIN_SECONDS = 1


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`.

    The fast path is Revurb's own WebSocket protocol (lean sockets, frame-once broadcasts) and HTTP
    protocol; without it, or with permessage-deflate on, uvicorn's own WebSocket implementation
    (`websockets`, sans-I/O) serves the sockets through plain ASGI.
    """
    deflate = settings.per_message_deflate
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "ws_max_size": ws_max_size(settings),
        "timeout_keep_alive": settings.limits.keep_alive_timeout,
        "ws_per_message_deflate": deflate,
        "ws_ping_interval": None,
        "ws_ping_timeout": None,
        "lifespan": "on",
        "server_header": False,
    }
    if settings.fast_path:
        from revurb.transport.http import HttpProtocol
        from revurb.transport.websocket import WebSocketProtocol

        options["http"] = HttpProtocol
        # Compression is per socket, so a broadcast cannot share one frame's bytes: with deflate
        # on, sockets go through uvicorn's own WebSocket layer and the plain ASGI messages.
        if not deflate:
            options["ws"] = WebSocketProtocol
    return options


def ws_max_size(settings: Settings) -> int:
    """The largest message any socket may send, checked by uvicorn or the transport at frame headers.

    With the apps listed in the configuration that is the largest app's `max_message_size` (each
    socket's own app limit is applied once it is admitted); apps from a provider are not known
    ahead, so then `MIN_WS_MAX_SIZE`.
    """
    largest = max((app.max_message_size for app in settings.apps), default=0)
    if settings.app_provider is not None or not largest:
        return max(MIN_WS_MAX_SIZE, largest)
    return largest


#: Allocations (less deallocations) of tracked objects between two young-generation collections.
#: Python's 700 made a busy server collect every dozen new sockets; a socket's objects are freed by
#: their reference counts, not the collector, so fewer passes do the same work. Measured, the
#: difference was within the noise (docs/benchmarks.md, issue 16's third round); a pass over 5,000
#: young objects takes well under a millisecond.
YOUNG_COLLECTION_THRESHOLD = 5_000


def tune_collector() -> None:
    """Collect the young generation less often (see `YOUNG_COLLECTION_THRESHOLD`)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


class Server(uvicorn.Server):
    """uvicorn's server, which drains Revurb first when it shuts down (see `server/drain.py`).

    uvicorn would close WebSockets (`SERVICE_RESTART`) and refuse nothing before the app's lifespan
    hears of the shutdown; the drain answers readiness 503, refuses new handshakes and API requests,
    releases the cluster share and tells every socket `RECONNECT_NOW`, spread over the drain window,
    all within the grace period. What is left of it bounds uvicorn's own wait.
    """

    def __init__(self, config: uvicorn.Config, app: Revurb) -> None:
        super().__init__(config)
        self.revurb = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # What is loaded by now lives as long as the process. Outside the cyclic collector's view, a
        # full collection no longer walks it (about 15 ms, during which no socket is served).
        gc.freeze()
        tune_collector()
        # What start-up freed (config files read, modules compiled) goes back to the system.
        trim_allocator()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Readiness turns false in the signal handler itself, not at uvicorn's next tick.
        self.revurb.drain.refuse()
        super().handle_exit(sig, frame)
        if self.force_exit:  # a second Ctrl-C: no more waiting
            self.revurb.drain.hurry()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain = self.revurb.drain
        await drain.run()
        left = drain.deadline() - time.monotonic() - _LIFESPAN_SECONDS
        self.config.timeout_graceful_shutdown = max(0, int(left))
        await super().shutdown(sockets)


def log_config(debug: bool, log_format: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's `log_config`: it is applied again in every worker process, so frames logged on
    `revurb.frames` with `--debug` reach the output from each of them."""
    handler = {"class": "logging.StreamHandler", "formatter": log_format, "stream": "ext://sys.stderr"}
    quiet = "INFO" if debug else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": TEXT_FORMAT},
            "json": {"()": "revurb.log_format.JsonFormatter"},
        },
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
    lines.append(f"  readiness at {'https' if tls else 'http'}://{host}:{port}{settings.path}/ready")
    metrics = settings.metrics
    if metrics.on_main_port:
        lines.append(
            f"  metrics at {'https' if tls else 'http'}://{host}:{port}{settings.path}/metrics (token)"
        )
    elif metrics.enabled:
        lines.append(f"  metrics at http://{metrics.host or settings.host}:{metrics.port}/metrics")
    return "\n".join(lines)


def serve(settings: Settings) -> None:
    """Run until stopped: one process, or `settings.workers` processes sharing the port."""
    from revurb.server.app import create_app

    check_tls(settings)
    settings = replace(settings, pid_file=default_pid_file(settings))
    logging_config = log_config(settings.debug, settings.log_format)
    logging.config.dictConfig(logging_config)
    check_limits(settings.workers)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        **uvicorn_options(settings),
        "log_config": logging_config,
        "log_level": "info" if settings.debug else "warning",
        "ssl_certfile": settings.tls.cert,
        "ssl_keyfile": settings.tls.key,
        "ssl_keyfile_password": settings.tls.passphrase,
        # Workers run uvicorn's own server, told of a signal once the drain is done: what is still
        # open then gets a moment, not another grace period.
        "timeout_graceful_shutdown": _AFTER_DRAIN_SECONDS,
    }
    if settings.workers > 1:
        with _worker_metrics(settings) as settings:
            # Workers are spawned fresh and import `revurb.asgi`, which reads the resolved settings here.
            settings = replace(settings, signal_pid=os.getpid())
            os.environ[HANDOFF_VARIABLE] = handoff(settings)
            print(banner(settings), flush=True)
            uvicorn.run("revurb.asgi:app", workers=settings.workers, **options)
        return
    _check_metrics_port(settings)
    app = create_app(settings)
    print(banner(settings), flush=True)
    Server(uvicorn.Config(app, **options), app).run()


def _check_metrics_port(settings: Settings) -> None:
    """A metrics port already taken is one clear message before start, not a failed lifespan."""
    metrics = settings.metrics
    if not metrics.enabled or metrics.on_main_port:
        return
    host = metrics.host or settings.host
    try:
        with socket.create_server((host, metrics.port)):
            pass
    except OSError as error:
        raise _port_taken(host, metrics.port, error) from None


def _port_taken(host: str, port: int, error: OSError) -> ConfigError:
    where = "servers.reverb.metrics.port (REVURB_METRICS_PORT)"
    return ConfigError(f"{where}: cannot listen on {host}:{port}: {error}")


@contextlib.contextmanager
def _worker_metrics(settings: Settings) -> Iterator[Settings]:
    """With metrics on, a directory for the workers' counts and, on the metrics port, this
    supervisor's listener that sums them."""
    if not settings.metrics.enabled:
        yield settings
        return
    from revurb.server.metrics import exposition
    from revurb.server.metrics_files import read_snapshots
    from revurb.server.metrics_http import MetricsListener, MetricsThread

    directory = tempfile.mkdtemp(prefix="revurb-metrics-")
    metrics = settings.metrics
    thread: MetricsThread | None = None
    try:
        if not metrics.on_main_port:

            def source() -> bytes:
                return exposition(*read_snapshots(directory))

            host = metrics.host or settings.host
            thread = MetricsThread(MetricsListener(host, metrics.port, metrics.token, source))
            try:
                thread.start()
            except OSError as error:
                raise _port_taken(host, metrics.port, error) from None
        yield replace(settings, metrics=replace(metrics, directory=directory))
    finally:
        if thread is not None:
            thread.stop()
        shutil.rmtree(directory, ignore_errors=True)
