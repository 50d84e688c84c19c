"""`python -m bench.cycles`: every in-process cycle gets exactly the upgrade, the greeting, the
subscription ack and the close reply, and the figures it prints are the ones it measured."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import system


def test_cycles_run_the_whole_connect_cycle_and_report_cpu_and_calls() -> None:
    command = [sys.executable, "-m", "bench.cycles", "--cycles", "300", "--repeat", "2", "--calls"]
    done = subprocess.run(command, cwd=system.ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary, line = done.stdout.strip().splitlines()[-2:]
    result = json.loads(line)
    assert (result["kind"], result["cycles"], result["repeat"], result["wrong"]) == ("connect", 300, 2, 0)
    assert len(result["cpu_us_per_cycle"]["runs"]) == 2
    assert result["cpu_us_per_cycle"]["median"] > 0
    # The cycle goes through the HTTP and WebSocket protocols, the app and the channel manager.
    assert result["python_calls_per_cycle"] > 50
    assert summary.startswith(f"{result['cpu_us_per_cycle']['median']:.1f} µs of CPU per cycle")


def test_triggers_are_each_answered_200_on_one_keep_alive_connection() -> None:
    command = [
        sys.executable,
        "-m",
        "bench.cycles",
        "--trigger",
        "--cycles",
        "300",
        "--repeat",
        "1",
        "--calls",
    ]
    done = subprocess.run(command, cwd=system.ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["kind"], result["cycles"], result["wrong"]) == ("trigger", 300, 0)
    # Parsed, signature checked, answered: fewer calls than a whole socket's life, but some.
    assert 20 < result["python_calls_per_cycle"] < 150
