"""The suite scheduler behind every entry point (Python API, CLI, CI gate, perf).

    from bench import run_suite
    table = run_suite("tiny", out="results", overrides=["sample.num_samples=128"])   # a pandas DataFrame

`run_suite` selects a suite's cells (glob, KEY=VALUE overrides, fast path, shard), `validate_cells`
checks them before any work, and `run_cells` runs each (bench/runner/cell.py), resuming finished ones,
and returns one row per cell. Each cell is claimed with a lock, so concurrent runners into one folder
compute it once; a cell whose metrics.json exists for the same spec is skipped, so a rerun resumes."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from bench.infra import distributed
from bench.infra.devices import default_device
from bench.infra.stages import LEDGER, Stopwatch
from bench.infra.store import CellLock, atomic_write_json, results_folder
from bench.runner.cell import Say, finished_metrics, load_inputs, run_cell
from bench.runner.fast import fast_cells
from bench.runner.validate import check_destination, check_named_files, validate_cells
from bench.spec.hashing import to_dict
from bench.spec.names import check_plain_name
from bench.suites.cells import Cell, select_cells


def run_cells(suite: str, cells: Sequence[Cell], out: str | Path = "results", *, device: str | None = None,
              force: bool = False, quiet: bool = False, inception_weights: str | None = None,
              say: Say | None = None, watch: Stopwatch | None = None) -> pd.DataFrame:
    """Run the cells into <out>/<suite>/ (resuming finished ones unless `force`) and return their
    metrics, one row per cell in the given order. `say` receives one line per cell (default: print on
    rank 0). Raises a BenchError subclass on anything the user can fix; finished cells are kept.
    Each stage's time is appended to <out>/<suite>/stages.jsonl as it is measured (bench/infra/stages.py)."""
    suite_dir = results_folder(out) / check_plain_name(suite, "suite")
    device = device or default_device()
    validate_cells(cells)
    check_named_files(inception_weights)
    distributed.on_main(lambda: check_destination(suite_dir))
    watch = watch or Stopwatch(device)
    try:
        extractors = load_inputs(cells, watch, inception_weights, device)
    finally:
        flush_ledger(watch, suite_dir)
    say = say or (print if distributed.is_main() else (lambda *a, **k: None))
    quiet = quiet or not distributed.is_main()
    held: dict[str, CellLock] = {}

    def claim(cell: Cell, run_dir: Path, wait: bool) -> tuple[str, dict | None]:
        """Rank 0 decides: 'done' (with metrics), 'busy' (another runner holds the cell) or 'run'."""
        metrics = None if force else finished_metrics(cell, run_dir)
        if metrics is not None:
            return "done", metrics
        lock = CellLock(suite_dir / ".locks" / f"{cell.run_id}.lock")
        if not lock.acquire(wait):
            return "busy", None
        metrics = None if force else finished_metrics(cell, run_dir)  # finished while we waited?
        if metrics is not None:
            lock.release()
            return "done", metrics
        held[cell.run_id] = lock
        atomic_write_json(run_dir / "spec.json", to_dict(cell.spec))
        return "run", None

    def process(i: int, cell: Cell, wait: bool) -> dict | None:
        run_dir = suite_dir / "runs" / cell.run_id
        state, metrics = distributed.on_main(lambda: claim(cell, run_dir, wait))
        if state == "busy":
            say(f"[{i}/{len(cells)}] {cell.name}: another runner is computing it; coming back to it at the end")
        elif state == "done":
            say(f"[{i}/{len(cells)}] {cell.name}: done already ({run_dir})")
        else:
            try:
                metrics = run_cell(cell, run_dir, extractors[(cell.spec.data, cell.spec.eval)], watch, device=device,
                                   quiet=quiet)
            finally:
                flush_ledger(watch, suite_dir)
                if cell.run_id in held:
                    held.pop(cell.run_id).release()
            inception_score = f", IS {metrics['is_mean']:.2f}" if "is_mean" in metrics else ""
            say(f"[{i}/{len(cells)}] {cell.name}: FID {metrics['fid']:.3f}{inception_score}, "
                f"{metrics['images_per_second']:.1f} img/s -> {run_dir}", flush=True)
        return metrics

    rows: dict[str, dict] = {}
    for i, cell in enumerate(cells, 1):
        if (metrics := process(i, cell, wait=False)) is not None:
            rows[cell.name] = metrics
    for i, cell in enumerate(cells, 1):
        if cell.name not in rows:
            rows[cell.name] = process(i, cell, wait=True)
    return pd.DataFrame([rows[c.name] for c in cells])


def flush_ledger(watch: Stopwatch, suite_dir: Path) -> None:
    """Append rank 0's measurements to the suite's ledger (other ranks' are dropped: rank 0 speaks for the run)."""
    if distributed.is_main():
        watch.flush(suite_dir / LEDGER)
    else:
        watch.entries.clear()


def suite_cells(suite: str, *, only: str = "*", overrides: Sequence[str] = (), fast: bool = False,
                shard: str = "1/1", device: str | None = None, protocol: str = "") -> list[Cell]:
    """The selected cells of a suite (bench.suites.select_cells, under a published `protocol` if given), with
    the fast path written into each spec when `fast`: per network, the settings measured fastest on this
    machine (bench/models/autotune.py)."""
    cells = select_cells(suite, only=only, overrides=overrides, shard=shard, protocol=protocol)
    return fast_cells(cells, device or default_device()) if fast else cells


def run_suite(suite: str, out: str | Path = "results", *, only: str = "*", overrides: Sequence[str] = (),
              fast: bool = False, shard: str = "1/1", device: str | None = None, force: bool = False,
              quiet: bool = False, inception_weights: str | None = None, say: Say | None = None,
              protocol: str = "") -> pd.DataFrame:
    """Run (or resume) a suite's selected cells and return their table; see run_cells. The report and
    figures are bench.report.build.build(suite, Path(out))."""
    cells = suite_cells(suite, only=only, overrides=overrides, fast=fast, shard=shard, device=device, protocol=protocol)
    return run_cells(suite, cells, out, device=device, force=force, quiet=quiet,
                     inception_weights=inception_weights, say=say)
