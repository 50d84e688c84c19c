"""Results: medians over repeats, the printed table, and the JSON file (the bench's only JSON code)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

#: (label, flattened metric key, format) of the columns printed for each scenario.
Column = tuple[str, str, str]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(raw: str | bytes) -> Any:
    return orjson.loads(raw)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested result as `a.b` keys (booleans and strings are left out)."""
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = value
    return flat


def median(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The median of every numeric metric over the runs (each metric on its own)."""
    flats = [flatten(run) for run in runs]
    keys = dict.fromkeys(key for flat in flats for key in flat)
    return {key: statistics.median(flat[key] for flat in flats if key in flat) for key in keys}


def ratios(
    medians: Mapping[str, Mapping[str, float]], columns: Sequence[Column], base: str = "soketi"
) -> dict[str, float]:
    """`revurb / base` (a peer: soketi or the floor) for each printed metric both servers have."""
    if base not in medians or "revurb" not in medians:
        return {}
    out: dict[str, float] = {}
    for _, key, _ in columns:
        ours, theirs = medians["revurb"].get(key), medians[base].get(key)
        if ours is not None and theirs:
            out[key] = ours / theirs
    return out


def comparisons(
    medians: Mapping[str, Mapping[str, float]], columns: Sequence[Column]
) -> dict[str, dict[str, float]]:
    """With several revurb variants or commits: each one's printed metrics over the first one's."""
    names = [name for name in medians if name.startswith("revurb")]
    out: dict[str, dict[str, float]] = {}
    for name in names[1:]:
        pair: dict[str, float] = {}
        for _, key, _ in columns:
            ours, theirs = medians[name].get(key), medians[names[0]].get(key)
            if ours is not None and theirs:
                pair[key] = ours / theirs
        out[f"{name}/{names[0]}"] = pair
    return out


def paired(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], columns: Sequence[Column]
) -> dict[str, dict[str, float]]:
    """Each revurb variant over the first, run by run: the median of the ratios of runs that ran
    side by side (attempt i of each). On a shared machine whose load drifts, steadier than the ratio
    of two medians, since both runs of a pair saw about the same load."""
    names = [name for name in runs if name.startswith("revurb")]
    out: dict[str, dict[str, float]] = {}
    for name in names[1:]:
        pairs = list(zip(runs[names[0]], runs[name], strict=False))
        found: dict[str, float] = {}
        for _, key, _ in columns:
            quotients = []
            for base, ours in pairs:
                theirs, mine = flatten(base).get(key), flatten(ours).get(key)
                if mine is not None and theirs:
                    quotients.append(mine / theirs)
            if quotients:
                found[key] = statistics.median(quotients)
        out[f"{name}/{names[0]} paired"] = found
    return out


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(cases: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """A plain-text table: one row per case and server (median of the runs), plus ratio rows."""
    header = ["case", "server", "runs", *(label for label, _, _ in columns)]
    rows: list[list[str]] = []
    for case in cases:
        for name, result in case["servers"].items():
            med = result["median"]
            cells = [_cell(med.get(key), fmt) for _, key, fmt in columns]
            rows.append([case["case"], name, str(len(result["runs"])), *cells])
        for peer, key_of_ratios in (("soketi", "ratios"), ("floor", "floor_ratios")):
            if case.get(key_of_ratios):
                cells = [_cell(case[key_of_ratios].get(key), ".2f") for _, key, _ in columns]
                rows.append([case["case"], f"revurb/{peer}", "", *cells])
        for label, pair in {**case.get("comparisons", {}), **case.get("paired", {})}.items():
            cells = [_cell(pair.get(key), ".3f") for _, key, _ in columns]
            rows.append([case["case"], label, "", *cells])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    head = "  ".join(cell.rjust(width) for cell, width in zip(header, widths, strict=True))
    return "\n".join([head, "-" * len(head), *lines])


def write(result: Mapping[str, Any], directory: Path, stamp: str) -> Path:
    """Write the whole result as indented JSON to `directory/{stamp}-{scenario}.json`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}-{result['scenario']}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    return path
