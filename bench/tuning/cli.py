"""`python -m bench.tune --suite NAME --method M --metric fid`: the strength of a method that optimises a
metric on a suite's model, with a 95% interval on it (bench/tuning/cells.py, search.py)."""
from __future__ import annotations

import argparse
import sys

from bench.spec.errors import BenchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--method", default="cfg")
    parser.add_argument("--metric", default="fid", help="a column every cell computes (fid, fid_inception, is_mean, ...)")
    parser.add_argument("--lo", type=float, default=0.0, help="smallest strength (default 0)")
    parser.add_argument("--hi", type=float, default=None, help="largest strength (default: the suite's largest)")
    parser.add_argument("--delta", type=float, default=None, help="locate w* to this tolerance (default: range / 20)")
    parser.add_argument("--n0", type=int, default=None, help="samples per point at first (default: the suite's N)")
    parser.add_argument("--budget", type=int, default=None, help="samples in all (default: 64 x n0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec field")
    parser.add_argument("--out", default="results")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    try:
        from bench.tuning.cells import tune
        table = tune(args.suite, args.method, args.metric, lo=args.lo, hi=args.hi, delta=args.delta, n0=args.n0,
                     budget=args.budget, overrides=args.set, out=args.out, device=args.device)
    except (BenchError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    a = table.attrs
    print(f"{args.method} on {args.suite}: {a['param']}* = {a['strength']:.4g} [{a['lo']:.4g}, {a['hi']:.4g}] "
          f"(95% interval on the argmin of {a['metric']}; {a['stopped']}; {len(table)} cells, {a['samples']:,} samples)")
    return 0
