"""`bench/run SCENARIO [options]`: start the server(s), drive them, print a table and JSON."""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import driver, report, scenarios, system, webhooks
from bench.servers import FloorLauncher, Launcher, RevurbLauncher, SoketiLauncher

RESULTS = system.ROOT / "bench" / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Benchmarks for Revurb; see docs/benchmarks.md."
    )
    parser.add_argument("scenario", choices=[*scenarios.SCENARIOS, "cluster", "fragments", "churn"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--vs", action="store_true", help="also run Soketi, interleaved, and print ratios")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run the hand-written floor server (bench/floor_server.py), interleaved, and print ratios",
    )
    parser.add_argument("--seconds", type=float, help="measured time (fanout 10, soak 60, http 5, slow 20)")
    parser.add_argument("--subscribers", help="comma list (fanout: 1000,5000; http: 0,100; slow: 1000)")
    parser.add_argument("--publishers", type=int, default=8, help="fanout: concurrent trigger requests")
    parser.add_argument(
        "--max-lag",
        type=int,
        default=5,
        help="fanout: publishers pause while more than this many events are undelivered (0: never)",
    )
    parser.add_argument(
        "--via-ws", action="store_true", help="fanout, soak: receive through ws events (slower generator)"
    )
    parser.add_argument("--steady", type=int, default=250, help="soak: steady subscribers")
    parser.add_argument("--churning", type=int, default=250, help="soak: churning connections")
    parser.add_argument("--slow", default="0,1", help="slow: stalled consumers per case (comma list)")
    parser.add_argument("--rate", type=float, default=100, help="slow: events per second")
    parser.add_argument("--event-bytes", type=int, default=8000, help="slow: padding in each event's data")
    parser.add_argument("--sockets", type=int, default=10_000, help="memory, footprint: sockets to open")
    parser.add_argument(
        "--deflate", help="memory: client offers permessage-deflate: off,on; fanout: on (read through ws)"
    )
    parser.add_argument(
        "--connections", type=int, help="http: concurrent requests (64); connect: cycles in flight (100)"
    )
    parser.add_argument("--sockets-to-open", type=int, default=20_000, help="connect: cycles to run")
    parser.add_argument(
        "--connect-generator",
        default="raw",
        help="connect: raw (bare TCP, bench/loadgen/connectgen.mjs) or ws (the `ws` client); comma list",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="server on one CPU, generator on the others (default); --no-pin lets the kernel place them",
    )
    parser.add_argument(
        "--commit",
        action="append",
        default=[],
        help="serve revurb/ as of this git ref (git archive) instead of the tree; repeat to compare "
        "commits, interleaved in the same run",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE[,KEY=VALUE]",
        help="also run revurb with this extra env (e.g. metrics:REVURB_METRICS=true), interleaved; "
        "ratios are printed against the first revurb",
    )
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="extra env for revurb"
    )
    parser.add_argument("--soketi-dir", type=Path, help="an installed copy of the Soketi peer")
    parser.add_argument("--only-soketi", action="store_true", help="run Soketi alone")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON result is written")
    parser.add_argument("--note", default="", help="free text stored with the result")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy record Revurb during each run (collapsed stacks)"
    )
    return parser.parse_args(argv)


def _variants(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """(label, extra env) of each revurb variant: the plain one first, then each `--variant`."""
    base = dict(item.split("=", 1) for item in args.server_env)
    variants: list[tuple[str, dict[str, str]]] = [("", base)]
    for spec in args.variant:
        label, _, pairs = spec.partition(":")
        env = dict(item.split("=", 1) for item in pairs.split(",") if item)
        variants.append((label, {**base, **env}))
    return variants


def _launchers(args: argparse.Namespace) -> list[Launcher]:
    launchers: list[Launcher] = []
    if not args.only_soketi:
        commits: list[str | None] = list(args.commit) or [None]
        for commit in commits:
            for label, env in _variants(args):
                name = "revurb"
                if len(commits) > 1 and commit is not None:
                    name += f"@{commit}"
                if label:
                    name += f"[{label}]"
                launchers.append(RevurbLauncher(commit, env, name))
    if args.floor:
        launchers.append(FloorLauncher())
    if args.vs or args.only_soketi:
        launchers.append(SoketiLauncher(args.soketi_dir))
    return launchers


def _profile_path(
    args: argparse.Namespace, stamp: str, launcher: Launcher, label: str, n: int
) -> Path | None:
    if not args.profile or not launcher.name.startswith("revurb"):
        return None
    safe = "".join(c if c.isalnum() else "-" for c in label)
    args.out.mkdir(parents=True, exist_ok=True)
    return Path(args.out) / f"{stamp}-{args.scenario}-{safe}-{n}.pyspy.txt"


def run(args: argparse.Namespace, stamp: str) -> dict[str, Any]:
    build, columns = scenarios.SCENARIOS[args.scenario]
    launchers = _launchers(args)
    result: dict[str, Any] = {
        "scenario": args.scenario,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": system.machine(driver.find_node()),
        "servers": {launcher.name: launcher.details for launcher in launchers},
        "cases": [],
    }
    try:
        for case in build(args):
            runs: dict[str, list[dict[str, Any]]] = {launcher.name: [] for launcher in launchers}
            failures: list[str] = []
            for attempt in range(args.repeat):
                for launcher in launchers:  # interleaved: revurb, soketi, revurb, soketi, ...
                    print(f"{case.label}: {launcher.name} run {attempt + 1}/{args.repeat}", file=sys.stderr)
                    server = launcher.start()
                    try:
                        profile = _profile_path(args, stamp, launcher, case.label, attempt + 1)
                        runs[launcher.name].append(scenarios.run_once(server, case, profile, args.pin))
                    except (RuntimeError, OSError) as error:
                        failures.append(f"{launcher.name} run {attempt + 1}: {error}")
                        print(f"  failed: {error}", file=sys.stderr)
                    finally:
                        server.stop()
            medians = {name: report.median(done) for name, done in runs.items() if done}
            result["cases"].append(
                {
                    "case": case.label,
                    "config": case.config,
                    "servers": {
                        name: {"median": medians.get(name, {}), "runs": done} for name, done in runs.items()
                    },
                    "ratios": report.ratios(medians, columns),
                    "floor_ratios": report.ratios(medians, columns, "floor"),
                    "comparisons": report.comparisons(medians, columns),
                    "paired": report.paired(runs, columns),
                    "failures": failures,
                }
            )
    finally:
        for launcher in launchers:
            launcher.cleanup()
    return result


def summary(result: dict[str, Any], columns: list[report.Column]) -> dict[str, Any]:
    """The medians of the printed metrics per case and server: the one-line JSON on stdout."""
    keys = [key for _, key, _ in columns]
    return {
        "scenario": result["scenario"],
        "commit": result["machine"]["git_commit"],
        "cases": [
            {
                "case": case["case"],
                "servers": {
                    name: {key: server["median"].get(key) for key in keys}
                    for name, server in case["servers"].items()
                },
                "ratios": case["ratios"],
                "floor_ratios": case["floor_ratios"],
                "comparisons": case["comparisons"],
                "paired": case.get("paired", {}),
                "failures": case["failures"],
            }
            for case in result["cases"]
        ],
    }


def cluster(rest: list[str]) -> int:
    """`bench/run cluster ...` hands over to bench/cluster.py (the Redis cluster scenario)."""
    if not (system.ROOT / "bench" / "cluster.py").is_file():
        print("bench/cluster.py is not there yet", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(system.ROOT)}
    return subprocess.run([sys.executable, "-m", "bench.cluster", *rest], env=env).returncode


def main(argv: list[str]) -> int:
    if argv[:1] == ["cluster"]:
        return cluster(argv[1:])
    if argv[:1] in (["fragments"], ["churn"]):
        env = {**os.environ, "PYTHONPATH": str(system.ROOT)}
        return subprocess.run([sys.executable, "-m", f"bench.{argv[0]}", *argv[1:]], env=env).returncode
    args = parse(argv)
    if args.scenario == "webhooks":
        args.variant.insert(0, webhooks.receiver_down_variant())
    system.raise_fd_limit()
    driver.ensure_installed()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    result = run(args, stamp)
    columns = scenarios.SCENARIOS[args.scenario][1]
    path = report.write(result, args.out, stamp)
    print(report.table(result["cases"], columns))
    print(f"JSON: {path}")
    print(report.dumps(summary(result, columns)))
    failed = any(case["failures"] for case in result["cases"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
