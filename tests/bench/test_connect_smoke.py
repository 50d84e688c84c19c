"""`bench/run connect --floor`: both generators run every cycle against Revurb and the floor, and the
result records each side's CPU so a reader sees which one was the limit."""

from __future__ import annotations

from pathlib import Path

from tests.support.bench import run_bench

CYCLES = 300


def test_connect_runs_every_cycle_on_both_servers_with_both_generators(node: str, tmp_path: Path) -> None:
    options = ["--floor", "--sockets-to-open", str(CYCLES), "--connect-generator", "raw,ws"]
    result = run_bench(tmp_path, "connect", *options)

    raw, ws = result["cases"]
    assert raw["case"] == f"cycles={CYCLES},in flight=100,generator=raw"
    assert ws["case"] == f"cycles={CYCLES},in flight=100,generator=ws"
    for case in (raw, ws):
        assert case["failures"] == []
        assert set(case["servers"]) == {"revurb", "floor"}
        for server in case["servers"].values():
            [run] = server["runs"]
            assert (run["connections"], run["failures"], run["errors"]) == (CYCLES, 0, 0)
            assert run["connect_latency"]["count"] == CYCLES
            assert run["server"]["cpu_s"] > 0 and run["loadgen"]["cpu_s"] > 0
        assert case["floor_ratios"]["connections_per_s"] > 0
