"""`python -m revurb.serving`: the process `revurb start` becomes once the command line is read.

The command line (typer, click, pydantic) and the configuration files are needed only until the
settings are resolved; a server keeps whatever it imported for as long as it runs. So `revurb start`
resolves the settings, hands them over in `REVURB_SETTINGS` (as to `--workers` workers) and execs
this module in its place: the same pid (pid files, signals and process managers see no change),
a fresh interpreter that imports only what serving needs (the command line's imports alone are
about 7 MB).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import NoReturn

from revurb.config import HANDOFF_VARIABLE, ConfigError, Settings, handoff, settings_from_handoff

#: The exit status of a configuration error, as the command line's own (`revurb.cli.fail`).
CONFIG_ERROR_STATUS = 2


def become_server(settings: Settings) -> NoReturn:
    """Replace this process with a serving one that runs `settings` (`revurb start`)."""
    os.environ[HANDOFF_VARIABLE] = handoff(settings)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, serving_command(sys.path))


def serving_command(search_path: list[str]) -> list[str]:
    """The serving interpreter's argv. `python -m` would put the working directory first on the
    module search path, where a stray `uvicorn.py` or `redis.py` would shadow the real one: `-P`
    leaves it off, unless this process had it there too (`python -m revurb start`)."""
    here = {"", os.getcwd()}
    safe = [] if here & set(search_path) else ["-P"]
    return [sys.executable, *safe, "-m", __name__]


@contextlib.contextmanager
def _not_importable(module: str) -> Iterator[None]:
    """While inside, `import module` fails (as if it were not installed); afterwards it works again."""
    sys.modules.setdefault(module, None)  # type: ignore[arg-type]  # None in sys.modules: ImportError
    try:
        yield
    finally:
        if sys.modules.get(module, "") is None:
            del sys.modules[module]


def main() -> None:
    """Serve the settings handed over, until stopped; a configuration error exits with status 2."""
    # uvicorn imports watchfiles (its --reload supervisor) when it is installed: about 1 MB of
    # compiled code that a server without --reload never runs. Without it, uvicorn falls back.
    with _not_importable("watchfiles"):
        from revurb.serve import serve  # uvicorn and the app: not for `become_server`'s side

    try:
        # Taken out of the environment: only `--workers` workers need it, and `serve` sets theirs.
        settings = settings_from_handoff(os.environ.pop(HANDOFF_VARIABLE, ""))
        serve(settings)
    except ConfigError as error:
        print(f"Invalid configuration: {error}", file=sys.stderr)
        raise SystemExit(CONFIG_ERROR_STATUS) from None


if __name__ == "__main__":
    main()
