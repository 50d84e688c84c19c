"""`bench/run footprint --floor`: RSS idle, with the sockets open, and 3 s after the server closed
every one of them, for Revurb and the floor."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench import run_bench

SOCKETS = 200


def test_footprint_reads_the_rss_before_during_and_after(node: str, tmp_path: Path) -> None:
    result = run_bench(tmp_path, "footprint", "--floor", "--sockets", str(SOCKETS))

    [case] = result["cases"]
    assert case["case"] == f"sockets={SOCKETS}"
    assert case["failures"] == []
    for server in case["servers"].values():
        [run] = server["runs"]
        assert (run["sockets"], run["closed_by_server"], run["errors"]) == (SOCKETS, SOCKETS, 0)
        idle, after = run["server"]["rss_idle_mb"], run["rss_after_mb"]
        assert 0 < idle <= run["server"]["rss_loaded_mb"]
        assert run["rss_kept_mb"] == pytest.approx(after - idle)
    assert set(case["floor_ratios"]) >= {"server.rss_idle_mb", "rss_after_mb"}
