"""`python -m bench.tune --suite NAME --method M --metric fid`: the strength of a method that optimises a
metric on a suite's model, with a 95% interval on it (bench/tuning/cells.py, search.py).
`python -m bench.tune --frontier NAME`: every method of a frontier tuned, scored at its optimum and compared
with tuned CFG, best against best (bench/tuning/best_against_best.py); `--list` names the frontiers."""
from __future__ import annotations

import argparse
import sys

from bench.spec.errors import BenchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__)
    parser.add_argument("--suite", help="the suite whose model and sampler one method is tuned on")
    parser.add_argument("--frontier", help="tune, score and compare every method of this frontier (see --list)")
    parser.add_argument("--list", action="store_true", help="list the frontiers and exit")
    parser.add_argument("--dry-run", action="store_true", help="with --frontier: price it (every search spending its budget) and exit")
    parser.add_argument("--method", action="append", default=[],
                        help="the method to tune (default cfg); with --frontier, only these (repeatable)")
    parser.add_argument("--metric", default="fid", help="a column every cell computes (fid, fid_inception, is_mean, ...)")
    parser.add_argument("--lo", type=float, default=None, help="smallest strength (default 0)")
    parser.add_argument("--hi", type=float, default=None, help="largest strength (default: the suite's largest)")
    parser.add_argument("--delta", type=float, default=None, help="locate w* to this tolerance (default: range / 20)")
    parser.add_argument("--n0", type=int, default=None, help="samples per point at first (default: the suite's N)")
    parser.add_argument("--budget", type=int, default=None, help="samples in all (default: 64 x n0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec field")
    parser.add_argument("--out", default="results")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if args.list:
        from bench.tuning.frontiers import FRONTIERS
        for frontier in FRONTIERS.values():
            print(f"{frontier.name:18s} {frontier.description}")
        return 0
    if bool(args.suite) == bool(args.frontier):
        print("error: give --suite NAME (one method) or --frontier NAME (every method; --list names them)", file=sys.stderr)
        return 2
    try:
        if args.frontier:
            return _frontier(args)
        if len(args.method) > 1:
            raise BenchError(f"--suite tunes one method, got {len(args.method)} (--method {' --method '.join(args.method)}); "
                             "tune several on one model with a frontier (--frontier, --list)")
        from bench.tuning.cells import tune
        method = (args.method or ["cfg"])[0]
        table = tune(args.suite, method, args.metric, lo=args.lo or 0.0, hi=args.hi, delta=args.delta, n0=args.n0,
                     budget=args.budget, overrides=args.set, out=args.out, device=args.device)
    except (BenchError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    a = table.attrs
    print(f"{method} on {args.suite}: {a['param']}* = {a['strength']:.4g} [{a['lo']:.4g}, {a['hi']:.4g}] "
          f"(95% interval on the argmin of {a['metric']}; {a['stopped']}; {len(table)} cells, {a['samples']:,} samples)")
    return 0


def _frontier(args: argparse.Namespace) -> int:
    from bench.tuning.frontiers import FRONTIERS
    frontier = FRONTIERS[args.frontier]
    ignored = [f"--{k}" for k in ("lo", "hi", "delta", "n0", "budget") if getattr(args, k) is not None] + (["--set"] if args.set else [])
    if ignored or args.metric != "fid":
        raise BenchError(f"{', '.join(ignored + (['--metric'] if args.metric != 'fid' else []))} would change the frontier "
                         f"{frontier.name}'s record (bench/tuning/frontiers.py), whose stored cells its report reads; "
                         "register a frontier with those settings instead")
    if args.dry_run:
        from bench.infra.devices import default_device
        from bench.runner.plan import summary
        from bench.tuning.best_against_best import frontier_plan
        device = args.device or default_device()
        table = frontier_plan(frontier, args.out, device)
        print(table.drop(columns="basis", errors="ignore").to_string(index=False, float_format="%.1f"))
        print(summary(table, device).replace("plan:", "at most (every search spends its budget):", 1))
        return 0
    from bench.tuning.best_against_best import run_frontier
    run_frontier(frontier, args.out, methods=args.method, device=args.device)
    print(f"wrote {args.out}/{frontier.name}/report.md, frontier.csv and figures")
    return 0
