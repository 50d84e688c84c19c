"""Result files as Markdown tables for docs/benchmarks.md: `python -m bench.markdown FILE...`."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from bench.report import loads
from bench.scenarios import SCENARIOS


def _cell(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _served(result: dict[str, Any]) -> str:
    revurb = result["servers"].get("revurb")
    if not revurb:
        # Runs of several commits (--commit) or variants name each server in its row instead.
        labelled = [name for name in result["servers"] if name != "soketi"]
        return "servers as named in each row" if labelled else "soketi only"
    commit = str(revurb.get("commit") or "?")[:7]
    dirty = " + uncommitted changes" if revurb.get("uncommitted_revurb_files") else ""
    env = revurb.get("server_env") or {}
    extra = f" ({', '.join(f'{k}={v}' for k, v in env.items())})" if env else ""
    return f"revurb `{commit}`{dirty}{extra}"


def _load(result: dict[str, Any]) -> str:
    loads_ = [
        run["load_average"]["before"]
        for case in result["cases"]
        for server in case["servers"].values()
        for run in server["runs"]
        if "load_average" in run
    ]
    return f"{statistics.median(loads_):.1f}" if loads_ else "?"


def _steal(result: dict[str, Any]) -> str:
    """The median steal of the runs, where they recorded it (runs before 2026-12-03 did not)."""
    steals = [
        run["steal_pct"]
        for case in result["cases"]
        for server in case["servers"].values()
        for run in server["runs"]
        if "steal_pct" in run
    ]
    return f", median CPU steal {statistics.median(steals):.0f} %" if steals else ""


def render(path: Path) -> str:
    result: dict[str, Any] = loads(path.read_bytes())
    columns = SCENARIOS[result["scenario"]][1]
    machine = result["machine"]
    lines = [
        f"**{result['scenario']}** — {machine['date']}, {_served(result)}, median of "
        f"{result['options']['repeat']}, median 1-min load average {_load(result)}{_steal(result)} "
        f"(`bench/results/{path.name}`)",
        "",
        "| case | server | " + " | ".join(label for label, _, _ in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for case in result["cases"]:
        for name, server in case["servers"].items():
            cells = [_cell(server["median"].get(key), fmt) for _, key, fmt in columns]
            lines.append(f"| {case['case']} | {name} | " + " | ".join(cells) + " |")
        if case.get("ratios"):
            cells = [_cell(case["ratios"].get(key), ".2f") for _, key, _ in columns]
            lines.append(f"| {case['case']} | revurb/soketi | " + " | ".join(cells) + " |")
        for label, pair in {**case.get("comparisons", {}), **case.get("paired", {})}.items():
            cells = [_cell(pair.get(key), ".3f") for _, key, _ in columns]
            lines.append(f"| {case['case']} | {label} | " + " | ".join(cells) + " |")
        for failure in case.get("failures", []):
            lines.append(f"| {case['case']} | failed | {failure[:120]} |" + " |" * (len(columns) - 1))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    for path in parser.parse_args().files:
        print(render(path))
        print()


if __name__ == "__main__":
    main()
