"""Summarise `py-spy record --format raw` output: `python -m bench.stacks FILE [--top 25]`."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, samples per innermost frame (self), and per frame anywhere on the stack."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = stack.split(";")
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    return total, own, inclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, own, inclusive = summarise(args.file)
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"--- {title} ({total} samples)")
        for frame, samples in counter.most_common(args.top):
            print(f"{100 * samples / total:6.1f}%  {frame}")


if __name__ == "__main__":
    main()
