"""Reading typed values off a merged configuration layer, naming the key in every error."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from revurb.config import values as v
from revurb.config.settings import ConfigError, normalise_path
from revurb.config.sources import ENV_PATHS, REDIS, SERVER, TLS, ConfigPath, Layer, dotted

T = TypeVar("T")

#: Keys of Reverb's config that Revurb accepts and has no use for.
IGNORED: tuple[ConfigPath, ...] = (
    ("default",),
    (*SERVER, "pulse_ingest_interval"),
    (*SERVER, "telescope_ingest_interval"),
    (*REDIS, "timeout"),
    (*TLS, "verify_peer"),
)
#: Keys whose values never appear in messages.
SECRET_KEYS = ("secret", "password", "passphrase", "url", "token")


class Reader:
    """Reads values off a merged layer, remembering what was asked for to spot unknown keys."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.asked: set[ConfigPath] = set(IGNORED)

    def label(self, path: ConfigPath) -> str:
        if path in self.layer.labels:
            return self.layer.labels[path]
        names = [name for name, env_path in ENV_PATHS.items() if env_path == path]
        return f"{dotted(path)} ({names[0]})" if names else dotted(path)

    def raw(self, path: ConfigPath) -> object:
        self.asked.add(path)
        return self.layer.values.get(path)

    def get(self, path: ConfigPath, convert: Callable[[str, object], T], default: T) -> T:
        raw = self.raw(path)
        if raw is None:
            return default
        try:
            return convert(self.label(path), raw)
        except ConfigError:
            if path[-1] in SECRET_KEYS:  # say what is wrong, never the value
                raise ConfigError(f"{self.label(path)} must be a string") from None
            raise

    def check_unknown(self) -> None:
        for path in sorted(self.layer.values, key=str):
            if path in self.asked or any(path[: len(known)] == known for known in IGNORED):
                continue
            parent = path[:-1]
            label = self.layer.labels.get(path, dotted(path))
            if any(known[: len(path)] == path for known in self.asked):
                raise ConfigError(f"{label} must be a table of options, got {self.layer.values[path]!r}")
            for end in range(len(path) - 1, 0, -1):
                if path[:end] in self.asked:
                    raise ConfigError(f"{dotted(path[:end])} must be a single value, not a table ({label})")
            siblings = sorted({str(p[len(parent)]) for p in self.asked if p[: len(parent)] == parent})
            raise ConfigError(f"unknown key {label}; the keys accepted here are {', '.join(siblings)}")


def as_name(label: str, raw: object) -> str:
    return v.as_str(label, raw, allow_empty=False).strip()


def as_port(label: str, raw: object) -> int:
    return v.as_int(label, raw, 1, 65535)


def as_positive(label: str, raw: object) -> int:
    return v.as_int(label, raw, 1)


def as_path(label: str, raw: object) -> str:
    return normalise_path(v.as_str(label, raw))


def as_sentinels(label: str, raw: object) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` (or a list of such strings): the Redis Sentinels to ask for the primary."""
    parts = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(parts, list | tuple):
        raise ConfigError(f"{label} must be host:port pairs separated by commas, got {raw!r}")
    found: list[tuple[str, int]] = []
    for part in parts:
        text = str(part).strip()
        if not text:
            continue
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{label}: {text!r} is not host:port")
        found.append((host, int(port)))
    return tuple(found)
