"""`python -m bench.run --suite NAME`: run every cell of a suite and write its results.

A thin layer over bench.runner (the same work is `from bench import run_suite` in Python):
cells are selected and their specs validated before anything heavy is imported, so a bad
value stops in well under a second; anything the user can fix exits 2 with one line, and the
cells finished before it are kept. Per cell: results/<suite>/runs/<run-id>/{spec, metrics,
env}.json + grid.png; then results/<suite>/{table.csv, report.md, figures/}.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.evaluation import dinov2
from bench.spec.errors import BenchError
from bench.suites.cells import SUITES, select_cells
from bench.suites.protocols import PROTOCOLS

LONG_RUN_HOURS = 24

SUMMARY_COLUMNS = ["cell", "fid", "fid_cleanfid", "is_mean", "class_accuracy", "gap_confidence", "images_per_second"]


def suite_seconds_here(suite: str, out: Path, cells: int) -> str:
    """Total time the suite's stored cells took here (training + sampling + metrics), from its table,
    and how many of its `cells` that covers."""
    import pandas as pd
    table = Path(out) / suite / "table.csv"
    if not table.exists():
        return "not run here"
    stored = pd.read_csv(table)
    seconds = stored[["model_seconds", "sampling_seconds", "metrics_seconds"]].sum().sum()
    partial = f" for {len(stored)} of {cells} cells" if len(stored) < cells else ""
    return f"took {seconds / 60:.1f} min here{partial}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", help="suite to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its estimated cost; train nothing")
    parser.add_argument("--resolve", type=float, default=0.1, metavar="DELTA",
                        help="with --dry-run: the FID difference a cell should resolve (power from stored results)")
    parser.add_argument("--out", default="results", help="results root (default: results)")
    parser.add_argument("--only", default="*", help="run only cells whose name matches this glob")
    parser.add_argument("--force", action="store_true", help="recompute cells that already have results")
    parser.add_argument("--protocol", default="", choices=["", *PROTOCOLS],
                        help="score as a published evaluator does (adm: FID, sFID, IS, precision, recall; edm2: FID and "
                             "FD_DINOv2 over three seed sets); bench/suites/protocols.py lists the differences")
    parser.add_argument("--shard", default="1/1", metavar="I/N",
                        help="run only the I-th of N deterministic round-robin shards of the cells (e.g. a Slurm array)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field in every cell, e.g. --set sample.num_samples=512")
    parser.add_argument("--check", action="store_true",
                        help="recompute and compare with results/<suite>/baseline.csv; exit 1 on a regression")
    parser.add_argument("--rescore", action="store_true",
                        help="add intervals to finished cells scored before they existed (from their stored samples)")
    parser.add_argument("--without-inception", action="store_true",
                        help="with --rescore: leave the Inception FID's interval (its extraction is the slow part) "
                             "for a later --rescore")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--fast", action="store_true",
                        help="sample and train each network with the settings measured fastest for it on this machine "
                             "and device (memory format, bf16 where its eps stays accurate, torch.compile where the "
                             "calls repay its warm-up; bench/models/autotune.py), cached per machine and recorded in "
                             "each cell's spec, so fast and fp32 runs never mix; features stay fp32")
    parser.add_argument("--inception-weights", help="Inception weights file for eval.features=inception "
                                                    "(or set $BENCH_INCEPTION_WEIGHTS)")
    parser.add_argument("--yes", action="store_true",
                        help=f"start a run that the plan (--dry-run) prices at more than {LONG_RUN_HOURS} hours "
                             "(without it such a run is refused before any work)")
    parser.add_argument("--no-report", action="store_true", help="skip table.csv, figures and report.md")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or stage lines (bars are drawn only on a terminal anyway)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for suite in SUITES.values():
            cells = len(suite.build())
            print(f"{suite.name:11s} {cells:4d} cells  {suite_seconds_here(suite.name, args.out, cells):18s} {suite.description}")
        return 0
    if not args.suite:
        parser.error("--suite NAME is required (or --list)")
    if not 0 < args.resolve < float("inf"):
        parser.error(f"--resolve {args.resolve:g}: give the FID difference to resolve, a finite number > 0 such as 0.1")
    try:
        cells = select_cells(args.suite, only=args.only, overrides=args.set, shard=args.shard,
                             protocol=args.protocol)  # ranges, before torch loads
        dinov2.check_cells(cell.spec for cell in cells)  # a named weights file exists, before torch loads
        return run(args)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def build_report(args: argparse.Namespace, watch) -> int:
    """table.csv, figures and report.md of the suite, timed as stage "figures"; returns the figure count."""
    from bench.report.build import build
    from bench.runner.suite import flush_ledger
    suite_dir = Path(args.out) / args.suite
    with watch.stage("figures", args.suite):
        figures = build(args.suite, Path(args.out))
    flush_ledger(watch, suite_dir)
    return len(figures)


class LongRunError(BenchError, RuntimeError):
    """A run the plan prices at more than LONG_RUN_HOURS, started without --yes."""


def refuse_long_runs(cells, device: str, args: argparse.Namespace) -> None:
    """The plan's estimate of the work still to do (bench/runner/plan.py, the numbers --dry-run
    prints); above LONG_RUN_HOURS the run needs --yes. Stages no run here has measured count as 0,
    so the estimate is a lower bound."""
    from bench.runner.plan import STAGE_COLUMNS, plan
    from bench.runner.validate import validate_cells
    validate_cells(cells)  # the plan builds the networks: their specs are checked first
    table = plan(cells, device, args.out, args.suite, force=args.force or args.check)
    hours = float(table[STAGE_COLUMNS].sum(skipna=True).sum()) / 3600
    if hours > LONG_RUN_HOURS:
        raise LongRunError(f"the plan prices this run at more than {hours:,.0f} h on {device} (see --dry-run); "
                           f"pass --yes to start it, or shrink it (--only, --shard, --set sample.num_samples=...)")


def run(args: argparse.Namespace) -> int:
    from bench.infra import distributed
    from bench.infra.devices import check_device, default_device
    from bench.infra.stages import Stopwatch
    from bench.runner.rescore import rescore_cells
    from bench.runner.suite import run_cells, suite_cells
    from bench.runner.validate import validate_cells
    device = args.device or default_device()
    if not args.dry_run or args.fast:  # a plan for another machine's device needs no such device here
        check_device(device)
    cells = suite_cells(args.suite, only=args.only, overrides=args.set, fast=args.fast, shard=args.shard, device=device,
                        protocol=args.protocol)
    if args.dry_run:
        from bench.runner.plan import plan, summary
        from bench.runner.validate import check_named_files
        validate_cells(cells)
        check_named_files(args.inception_weights)
        table = plan(cells, device, args.out, args.suite, force=args.force)
        print(table.drop(columns="basis", errors="ignore").to_string(index=False, float_format="%.1f"))
        print(summary(table, device))
        from bench.stats.power import describe, power_plan
        suite_dir = Path(args.out) / args.suite
        power = power_plan(suite_dir, int(table.samples.median()), args.resolve)
        print(describe(power, suite_dir) if power else
              f"power: no stored paired intervals in {suite_dir} to plan N from (run the suite once, or --out a folder that has them)")
        return 0
    if args.rescore:
        watch = Stopwatch(device)
        done = rescore_cells(args.suite, cells, args.out, device=device, force=args.force,
                                      without_inception=args.without_inception,
                                      inception_weights=args.inception_weights, watch=watch)
        print(f"suite {args.suite}: {done} cells rescored")
        if not args.no_report:
            build_report(args, watch)
        return 0
    if args.check:
        from bench.claims.gate import read_baseline
        read_baseline(args.suite)  # a missing or broken baseline stops the run before its cells
    device = distributed.init(device)
    watch = Stopwatch(device)
    try:
        if not args.yes:
            distributed.on_main(lambda: refuse_long_runs(cells, device, args))
        start = time.perf_counter()
        table = run_cells(args.suite, cells, args.out, device=device, force=args.force or args.check,
                          quiet=args.quiet, inception_weights=args.inception_weights, watch=watch)
        if not distributed.is_main():
            return 0
        print(table[[c for c in SUMMARY_COLUMNS if c in table]].to_string(index=False, float_format="%.3f"))
        suite_dir = Path(args.out) / args.suite
        print(f"suite {args.suite}: {len(cells)} cells in {time.perf_counter() - start:.1f}s on "
              f"{distributed.world_size()} process(es); results in {suite_dir}")
        if not args.no_report:
            print(f"table, report and {build_report(args, watch)} figures in {suite_dir}")
        if args.check:
            from bench.claims.gate import check_against_baseline
            return check_against_baseline(args.suite, table, suite_dir)
        return 0
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
