"""Turn raw configuration values (strings from the environment, typed values from files) into
typed ones, or fail with a message naming the key and what it accepts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from revurb.config.settings import ConfigError

T = TypeVar("T", bound=str)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def as_bool(label: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ConfigError(f"{label} must be true or false, got {raw!r}")


def as_int(label: str, raw: object, minimum: int = 0, maximum: int | None = None) -> int:
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.strip().lstrip("+-").isdigit():
        value = int(raw.strip())
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise ConfigError(f"{label} must be a whole number {bounds}, got {raw!r}")
    return value


def as_optional_int(label: str, raw: object, minimum: int = 1) -> int | None:
    """A limit where an empty value (or `null`) means none."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return as_int(label, raw, minimum)


def as_float(label: str, raw: object) -> float:
    """A positive number of seconds."""
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            value = None
    if value is None or value != value or value <= 0:  # NaN is not a number of seconds
        raise ConfigError(f"{label} must be a number greater than 0, got {raw!r}")
    return value


def as_seconds(label: str, raw: object) -> float:
    """A number of seconds that may be 0."""
    if raw == 0 or raw == "0":
        return 0.0
    return as_float(label, raw)


def as_str(label: str, raw: object, allow_empty: bool = True) -> str:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return str(raw)
    if not isinstance(raw, str) or (not allow_empty and not raw.strip()):
        what = "a string" if allow_empty else "a non-empty string"
        raise ConfigError(f"{label} must be {what}, got {raw!r}")
    return raw


def as_optional_str(label: str, raw: object) -> str | None:
    if raw is None:
        return None
    value = as_str(label, raw)
    return value or None


def as_choice(label: str, raw: object, choices: Sequence[T]) -> T:
    for choice in choices:
        if raw == choice:
            return choice
    raise ConfigError(f"{label} must be one of {', '.join(choices)}, got {raw!r}")


def as_str_list(label: str, raw: object) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string (as in the environment)."""
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list | tuple) and all(isinstance(item, str) for item in raw):
        return tuple(item.strip() for item in raw if item.strip())
    raise ConfigError(f"{label} must be a list of strings or a comma-separated string, got {raw!r}")
