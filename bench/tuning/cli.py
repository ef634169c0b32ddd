"""`python -m bench.tune --suite NAME --method M --metric fid`: the strength of a method that optimises a
metric on a suite's model, with a 95% interval on it (bench/tuning/cells.py, search.py); `--at-most fid=F`
optimises it at a bound on a second metric (IS at a floor on FID). Several `--method`s, or `--vary KEY=A,B,..`
(one more parameter), tune each choice and compare them at their optima (bench/tuning/choices.py).
`python -m bench.tune --frontier NAME`: every method of a frontier tuned, scored at its optimum and compared
with tuned CFG, best against best (bench/tuning/best_against_best.py); `--list` names the frontiers."""
from __future__ import annotations

import argparse
import sys

from bench.spec.errors import BenchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__)
    parser.add_argument("--suite", help="the suite (or a frontier, for any method on its model) whose model and sampler is tuned on")
    parser.add_argument("--frontier", help="tune, score and compare every method of this frontier (see --list)")
    parser.add_argument("--list", action="store_true", help="list the frontiers and exit")
    parser.add_argument("--dry-run", action="store_true", help="price the searches (each spending its budget) and exit")
    parser.add_argument("--method", action="append", default=[],
                        help="the method to tune (default cfg; repeat to tune and compare several); with --frontier, only these")
    parser.add_argument("--metric", default="fid", help="a column every cell computes (fid, fid_inception, is_mean, ...)")
    parser.add_argument("--at-most", metavar="METRIC=BOUND", help="optimise --metric where METRIC stays at most BOUND (e.g. fid=10)")
    parser.add_argument("--at-least", metavar="METRIC=BOUND", help="optimise --metric where METRIC stays at least BOUND")
    parser.add_argument("--vary", metavar="KEY=A,B,...", help="tune the method at each value of one more parameter: a spec "
                        "field (guide.steps, train.p_uncond) or a parameter of the method (lambda_low), and compare them")
    parser.add_argument("--final-n", type=int, default=None,
                        help="with several methods or --vary: samples of each optimum's cell (default: the largest N of the searches)")
    parser.add_argument("--lo", type=float, default=None, help="smallest strength (default 0, or the frontier's)")
    parser.add_argument("--hi", type=float, default=None, help="largest strength (default: the suite's largest, or the frontier's)")
    parser.add_argument("--delta", type=float, default=None, help="locate w* to this tolerance (default: range / 20)")
    parser.add_argument("--n0", type=int, default=None, help="samples per point at first (default: the suite's N, or the frontier's)")
    parser.add_argument("--budget", type=int, default=None, help="samples per search (default: 64 x n0, or the frontier's)")
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
        from bench.tuning.choices import tune
        methods = args.method or ["cfg"]
        several = len(methods) > 1 or args.vary is not None
        if args.dry_run:
            return _price(args, methods)
        if args.final_n is not None and not several:
            raise BenchError("--final-n sets the optimum cells of a comparison: give several --method or --vary")
        settings = dict(lo=args.lo, hi=args.hi, delta=args.delta, n0=args.n0, budget=args.budget,
                        overrides=args.set, out=args.out, device=args.device,
                        at_most=_bound("--at-most", args.at_most), at_least=_bound("--at-least", args.at_least))
        if several:
            settings["final_n"] = args.final_n
        table = tune(args.suite, methods if several else methods[0], args.metric, vary=_vary(args.vary), **settings)
    except (BenchError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for label, search in (table.attrs["searches"] if several else {methods[0]: table}).items():
        print(_found(label, args.suite, search))
    if several:
        print(_compared(table))
    return 0


def _price(args: argparse.Namespace, methods: list[str] | None = None) -> int:
    """The plan of a frontier (`methods` None) or of the searches on a suite, priced before any work."""
    from bench.infra.devices import default_device
    from bench.runner.plan import summary
    device = args.device or default_device()
    if methods is None:
        from bench.tuning.best_against_best import frontier_plan
        from bench.tuning.frontiers import FRONTIERS
        table = frontier_plan(FRONTIERS[args.frontier], args.out, device)
    else:
        from bench.tuning.choices import search_plan
        table = search_plan(args.suite, methods, _vary(args.vary), args.set, args.budget, args.out, device)
    print(table.drop(columns="basis", errors="ignore").to_string(index=False, float_format="%.1f"))
    print(summary(table, device).replace("plan:", "at most (every search spends its budget):", 1))
    return 0


def _found(label: str, suite: str, table) -> str:
    a, bound = table.attrs, table.attrs.get("bound")
    where = "" if bound is None else f" where {bound['metric']} {'<=' if bound['at_most'] else '>='} {bound['value']:g}"
    best = "argmax" if a.get("maximise") else "argmin"
    return (f"{label} on {suite}: {a['param']}* = {a['strength']:.4g} [{a['lo']:.4g}, {a['hi']:.4g}] "
            f"(95% interval on the {best} of {a['metric']}{where}; {a['stopped']}; {len(table)} cells, {a['samples']:,} samples)")


def _compared(table) -> str:
    a = table.attrs
    metric = a["metric"]
    shown = table[["choice", "w_star", metric, f"{metric}_lo", f"{metric}_hi", f"{metric}_minus_reference",
                   f"{metric}_minus_reference_lo", f"{metric}_minus_reference_hi", "verdict"]]
    return (f"at each optimum, N = {a['final_n']:,} from seed {a['final_seed']:,} (beyond every tuning seed), against "
            f"{table.reference.iloc[0]} on the same seeds (paired 95% bootstrap); {a['folder']}/choices.csv:\n"
            + shown.to_string(index=False, float_format="%.4g"))


def _bound(flag: str, given: str | None) -> tuple[str, float] | None:
    if given is None:
        return None
    metric, _, value = given.partition("=")
    try:
        return metric, float(value)
    except ValueError:
        raise BenchError(f"{flag} {given}: expected METRIC=NUMBER, e.g. {flag} fid=10") from None


def _vary(given: str | None) -> tuple[str, list[str]] | None:
    if given is None:
        return None
    key, _, values = given.partition("=")
    chosen = [v.strip() for v in values.split(",") if v.strip()]
    if not key or not chosen:
        raise BenchError(f"--vary {given}: expected KEY=A,B,..., e.g. --vary guide.steps=100,300,1000")
    return key, chosen


def _frontier(args: argparse.Namespace) -> int:
    from bench.tuning.frontiers import FRONTIERS
    frontier = FRONTIERS[args.frontier]
    ignored = [f"--{k.replace('_', '-')}" for k in ("lo", "hi", "delta", "n0", "budget", "at_most", "at_least", "vary", "final_n")
               if getattr(args, k) is not None] + (["--set"] if args.set else [])
    if ignored or args.metric != "fid":
        raise BenchError(f"{', '.join(ignored + (['--metric'] if args.metric != 'fid' else []))} would change the frontier "
                         f"{frontier.name}'s record (bench/tuning/frontiers.py), whose stored cells its report reads; "
                         "register a frontier with those settings instead")
    if args.dry_run:
        return _price(args)
    from bench.tuning.best_against_best import run_frontier
    run_frontier(frontier, args.out, methods=args.method, device=args.device)
    print(f"wrote {args.out}/{frontier.name}/report.md, frontier.csv and figures")
    return 0
