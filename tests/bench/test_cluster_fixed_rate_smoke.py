"""`bench/run cluster --fixed-rate`: the saturated rate of each case first, then open-loop runs at
fractions of the cross-node one, each case at the same offered rate, every delivery counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench import run_bench

SUBSCRIBERS = 20


@pytest.mark.redis
@pytest.mark.timeout(150)
def test_fixed_rate_runs_at_fractions_of_the_saturated_rate(node: str, tmp_path: Path) -> None:
    options = ["--fixed-rate", "--subscribers", str(SUBSCRIBERS), "--seconds", "1", "--fractions", "0.25,0.5"]
    result = run_bench(tmp_path, "cluster", *options, timeout=140, written="cluster-fixed-rate")

    cases = {case["case"]: case["servers"]["revurb"]["runs"] for case in result["cases"]}
    assert list(cases) == [
        "cross-node, saturated",
        "same-node, saturated",
        "cross-node, 25% of saturated",
        "same-node, 25% of saturated",
        "cross-node, 50% of saturated",
        "same-node, 50% of saturated",
    ]
    [saturated] = cases["cross-node, saturated"]
    assert saturated["delivered_events_per_s"] == pytest.approx(saturated["deliveries_per_s"] / SUBSCRIBERS)
    for label, runs in cases.items():
        [run] = runs
        assert run["lost"] == 0 and run["duplicates"] == 0 and run["errors"] == 0, label
        assert run["deliveries"] == run["triggers_accepted"] * SUBSCRIBERS, label
        assert run["loadgen_cpu_pct"] > 0 and run["servers_cpu_pct"] > 0, label
        assert run["max_bus_lag_seconds"] >= 0, label
        if "%" in label:
            fraction = 0.25 if "25%" in label else 0.5
            assert run["offered_per_s"] == pytest.approx(fraction * saturated["delivered_events_per_s"])
            assert run["extra_connections"] >= 0
