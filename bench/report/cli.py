"""`python -m bench.figures --suite NAME [--out results] [--merge ROOT ...]`: rebuild
results/<suite>/table.csv, every figure under results/<suite>/figures/ and results/<suite>/report.md
from the runs' metrics.json and grid.png files, without recomputing anything. Several result folders
(for example the shards of a cluster sweep) merge into one table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.report.build import build
from bench.spec.errors import BenchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--out", default="results", help="results root holding <suite>/runs")
    parser.add_argument("--merge", nargs="*", default=[], help="more results roots whose <suite>/runs to merge in")
    args = parser.parse_args(argv)
    try:
        written = build(args.suite, Path(args.out), [Path(m) / args.suite for m in args.merge])
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {Path(args.out) / args.suite}/table.csv, report.md and figures: {', '.join(written)}")
    return 0
