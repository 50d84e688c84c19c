"""Churn leaves nothing behind: a short `bench/run churn` (the full 50,000-cycle run with its RSS
check is in bench/ and docs/benchmarks.md). Connect, subscribe (public, private, presence, cache),
leave with or without a close frame; afterwards no socket, channel, member, count or task remains."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_churn_leaves_no_socket_channel_member_or_task_behind(tmp_path: Path) -> None:
    command = [
        str(ROOT / "bench" / "run"),
        "churn",
        "--warmup",
        "300",
        "--cycles",
        "2000",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=50, cwd=tmp_path)
    [written] = list(tmp_path.glob("*-churn.json"))
    result: dict[str, Any] = json.loads(written.read_text())

    assert result["left_behind"] == {}, done.stdout + done.stderr
    assert result["tasks_more_than_after_warmup"] <= 0
    assert result["after_run"]["connection_counts"] == {"1001": 0}
    assert result["after_run"]["server_connections"] == 0
    assert result["after_run"]["sockets"] == 0
