"""`revurb install` and the zero-config start: fresh app credentials written into `.env`."""

from __future__ import annotations

import secrets
import string
from pathlib import Path

from revurb.config.settings import Settings

CREDENTIAL_VARIABLES = ("REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET")
_ALPHABET = string.ascii_lowercase + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def fresh_values(host: str = "localhost", port: int = 8080, scheme: str = "http") -> dict[str, str]:
    """New credentials as Reverb's `reverb:install` makes them (a numeric id, as the Python SDK
    needs), plus where clients reach the server."""
    return {
        "REVERB_APP_ID": str(100_000 + secrets.randbelow(900_000)),
        "REVERB_APP_KEY": _random(20),
        "REVERB_APP_SECRET": _random(20),
        "REVERB_HOST": host,
        "REVERB_PORT": str(port),
        "REVERB_SCHEME": scheme,
    }


def write_missing(env_file: Path, values: dict[str, str]) -> list[str]:
    """Set each variable that `env_file` lacks (or has empty); never overwrite. Returns the names set."""
    from dotenv import dotenv_values, set_key

    existing = dotenv_values(env_file) if env_file.is_file() else {}
    written: list[str] = []
    for name, value in values.items():
        if existing.get(name):
            continue
        if not env_file.exists():
            env_file.touch(mode=0o600)
        set_key(env_file, name, value, quote_mode="never")
        written.append(name)
    return written


def client_endpoint(settings: Settings) -> tuple[str, int, bool]:
    """Host, port and TLS flag a browser should use to reach this server."""
    host = settings.hostname or ("localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host)
    port = settings.client_port or settings.port
    tls = settings.client_scheme == "https" if settings.client_scheme else settings.tls.enabled
    return host, port, tls


def client_snippet(settings: Settings, key: str) -> str:
    """Ready-to-paste pusher-js and laravel-echo setup for this server."""
    host, port, tls = client_endpoint(settings)
    tls_flag = "true" if tls else "false"
    path = f'\n    wsPath: "{settings.path}",' if settings.path else ""
    options = (
        f'    wsHost: "{host}",\n    wsPort: {port},\n    wssPort: {port},{path}\n'
        f'    forceTLS: {tls_flag},\n    enabledTransports: ["ws", "wss"],'
    )
    return (
        "// pusher-js\n"
        'import Pusher from "pusher-js";\n'
        f'const pusher = new Pusher("{key}", {{\n    cluster: "",\n{options}\n}});\n\n'
        "// laravel-echo\n"
        'import Echo from "laravel-echo";\n'
        "window.Pusher = Pusher;\n"
        f'window.Echo = new Echo({{\n    broadcaster: "reverb",\n    key: "{key}",\n{options}\n}});'
    )
