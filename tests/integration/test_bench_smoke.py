"""Smoke test of the benchmark harness: a tiny fan-out run gives a well-formed result with 0 lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.bench import ROOT, run_bench

SUBSCRIBERS = 50


def test_soak_smoke_run_counts_steady_and_churning_deliveries(node: str, tmp_path: Path) -> None:
    result = run_bench(tmp_path, "soak", "--seconds", "2", "--steady", "20", "--churning", "10")

    [case] = result["cases"]
    assert case["failures"] == []
    [run] = case["servers"]["revurb"]["runs"]
    assert run["triggers_accepted"] >= 15
    assert run["steady_lost"] == 0
    assert run["errors"] == 0
    assert run["churn_cycles"] >= 10
    # Every steady socket got every event; churning sockets got some more.
    assert run["delay"]["count"] > run["triggers_accepted"] * 20
    assert run["cpus"] is None or set(run["cpus"]) == {"server", "loadgen"}


def test_slow_smoke_run_sees_the_stalled_socket_closed_with_4100(node: str, tmp_path: Path) -> None:
    options = ["--subscribers", "20", "--slow", "1", "--rate", "200", "--seconds", "6"]
    result = run_bench(tmp_path, "slow", *options)

    [case] = result["cases"]
    assert case["failures"] == []
    [run] = case["servers"]["revurb"]["runs"]
    assert run["triggers_accepted"] > 0
    assert run["lost"] == 0
    assert run["errors"] == 0
    assert run["slow_close_codes"] == [4100]
    # It was closed once its backlog passed the cap, long before the last event.
    assert 0 < run["slow_deliveries"] < run["triggers_accepted"]


def test_fanout_smoke_run_reports_every_delivery(node: str, tmp_path: Path) -> None:
    command = [str(ROOT / "bench" / "run"), "fanout", "--subscribers", str(SUBSCRIBERS)]
    command += ["--seconds", "1", "--repeat", "1", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    [written] = list(tmp_path.glob("*-fanout.json"))
    result = json.loads(written.read_text())
    assert result["scenario"] == "fanout"
    assert set(result["machine"]) >= {"cpu_model", "cores", "python", "node", "uvicorn", "git_commit"}
    assert result["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))
    [case] = result["cases"]
    assert case["case"] == f"subscribers={SUBSCRIBERS}"
    assert case["failures"] == []
    [run] = case["servers"]["revurb"]["runs"]
    assert run["triggers_accepted"] > 0
    assert run["triggers_failed"] == 0
    assert run["expected"] == run["triggers_accepted"] * SUBSCRIBERS
    assert run["deliveries"] == run["expected"]
    assert run["lost"] == 0
    assert run["errors"] == 0
    latency = run["latency"]
    assert latency["count"] == run["deliveries"]
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert run["server"]["cpu_s"] > 0
    assert run["loadgen"]["cpu_s"] > 0

    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["scenario"] == "fanout"
    medians = summary["cases"][0]["servers"]["revurb"]
    assert medians["lost"] == 0
    assert medians["deliveries_per_s"] == case["servers"]["revurb"]["median"]["deliveries_per_s"]


def test_fanout_smoke_run_with_a_console_open(node: str, tmp_path: Path) -> None:
    dashboard = "REVURB_DASHBOARD=true,REVURB_DASHBOARD_SECRET=smoke"
    options = [
        "--subscribers",
        str(SUBSCRIBERS),
        "--seconds",
        "2",
        "--variant",
        f"console:{dashboard},BENCH_CONSOLE=1001",
    ]
    result = run_bench(tmp_path, "fanout", *options)

    [case] = result["cases"]
    assert case["failures"] == []
    assert set(case["paired"]) == {"revurb[console]/revurb paired"}
    [plain] = case["servers"]["revurb"]["runs"]
    [watched] = case["servers"]["revurb[console]"]["runs"]
    assert "console_watcher" not in plain
    console = watched["console_watcher"]
    # The watcher saw the subscribers open and subscribe, then API events, 100 a second at most.
    assert console["entries"] >= SUBSCRIBERS
    assert watched["lost"] == 0 and watched["errors"] == 0
