"""Running `bench/run` from a test: the Node it needs and the JSON result it writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import in_ci

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def node() -> str:
    found = shutil.which("node")
    if found is None:
        if in_ci():
            pytest.fail("node is required in CI for the benchmark smoke tests but is not installed")
        pytest.skip("node is not installed")
    return found


def run_bench(
    tmp_path: Path, scenario: str, *options: str, timeout: float = 80, written: str | None = None
) -> dict[str, Any]:
    """`bench/run SCENARIO OPTIONS --repeat 1` into `tmp_path`; the JSON result it wrote (named
    after `written`, default the scenario)."""
    command = [str(ROOT / "bench" / "run"), scenario, *options, "--repeat", "1", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    [path] = list(tmp_path.glob(f"*-{written or scenario}.json"))
    result: dict[str, Any] = json.loads(path.read_text())
    return result
