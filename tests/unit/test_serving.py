"""`revurb.serving`: what the serving process keeps from being imported, and only while it starts."""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys

import pytest

from revurb.serving import _not_importable, serving_command

#: A module of the standard library that nothing in the test run imports by itself.
MODULE = "this"


def test_a_module_is_not_importable_inside_and_importable_again_after() -> None:
    sys.modules.pop(MODULE, None)
    with _not_importable(MODULE), pytest.raises(ImportError):
        importlib.import_module(MODULE)

    assert MODULE not in sys.modules
    with contextlib.redirect_stdout(io.StringIO()):  # `this` prints the Zen of Python
        assert importlib.import_module(MODULE).__name__ == MODULE


def test_a_module_already_imported_stays() -> None:
    module = sys.modules["json"] if "json" in sys.modules else importlib.import_module("json")
    with _not_importable("json"):
        assert sys.modules["json"] is module
    assert sys.modules["json"] is module


def test_the_serving_process_puts_the_working_directory_on_its_path_only_if_this_one_had_it() -> None:
    # The installed `revurb` script: its own folder first, not the working directory.
    assert serving_command(["/venv/bin", "/usr/lib/python3.11"]) == [
        sys.executable,
        "-P",
        "-m",
        "revurb.serving",
    ]
    # `python -m revurb start`: the working directory first, as an app provider there may need.
    assert serving_command(["", "/usr/lib/python3.11"]) == [sys.executable, "-m", "revurb.serving"]


#: An app served on defaults, started and stopped through its lifespan, then what it imported.
SERVED_ON_DEFAULTS = """
import asyncio, sys
from revurb.config import settings_from_env
from revurb.server.app import create_app, lifespan_of
app = create_app(settings_from_env({"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}))
async def main():
    async with lifespan_of(app)(app):
        pass
asyncio.run(main())
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_a_server_on_defaults_imports_no_redis_client_http_client_or_typer() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", SERVED_ON_DEFAULTS], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    assert "revurb" in loaded
    # (click stays: uvicorn's package imports its own command line.)
    assert {"redis", "httpx", "typer", "pydantic"} & set(loaded) == set()


def test_the_server_collects_its_young_generation_less_often() -> None:
    import gc

    from revurb.serve import YOUNG_COLLECTION_THRESHOLD, tune_collector

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        tune_collector()
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 11, 12)
    finally:
        gc.set_threshold(*before)
