"""Add intervals (and their replicates) to finished cells scored before intervals existed: features
are extracted again from the stored samples and scored; the point metrics must come out as stored."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench.evaluation.runtime_choice import REFERENCE, RUNTIME_FID_TOLERANCE
from bench.evaluation.scoring import FeatureStream, score_features
from bench.infra.devices import default_device
from bench.infra.stages import Stopwatch
from bench.infra.store import (REPLICATES_FILE, ResultsError, atomic_write_json, cache_root, read_json, read_replicates,
                               results_folder, write_replicates)
from bench.runner.cell import Say, finished_metrics, load_inputs, scoring_key
from bench.runner.suite import flush_ledger
from bench.runner.validate import check_named_files, validate_cells
from bench.spec.names import check_plain_name
from bench.suites.cells import Cell


def _lacks_intervals(cell: Cell, run_dir: Path, without_inception: bool) -> bool:
    replicates = read_replicates(run_dir)
    wants_inception = cell.spec.eval.inception_fid and not without_inception
    return not replicates or (wants_inception and "fid_inception" not in replicates)


def stored_samples(run_dir: Path, suite: str, cell: Cell) -> tuple[torch.Tensor, torch.Tensor]:
    """A finished cell's samples.npz (uint8 images, int labels), or a ResultsError naming the file and
    the command that recomputes the cell."""
    path = run_dir / "samples.npz"
    repair = f"recompute the cell: python -m bench.run --suite {suite} --only '{cell.name}' --force"
    try:
        with np.load(path, allow_pickle=False) as samples:
            images, labels = samples["images"], samples["labels"]
    except FileNotFoundError:
        raise ResultsError(f"{path} is missing (samples are kept only where the cell ran); {repair}") from None
    except Exception as err:
        raise ResultsError(f"{path} is not a readable .npz of images and labels ({type(err).__name__}); {repair}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != (len(images),):
        raise ResultsError(f"{path} does not hold (N, C, H, W) uint8 images and N labels; {repair}")
    return torch.from_numpy(images), torch.from_numpy(labels)


def rescore_cells(suite: str, cells: Sequence[Cell], out: str | Path = "results", *, device: str | None = None,
                  force: bool = False, without_inception: bool = False, inception_weights: str | None = None,
                  say: Say | None = None, watch: Stopwatch | None = None) -> int:
    """Add intervals (and their replicates) to finished cells scored before they existed: features are
    extracted again from the stored samples and scored; the point metrics must come out as stored.
    Cells with all their intervals are skipped unless `force`; `without_inception` leaves the Inception
    FID's interval (the slow part) for a later rescore. Returns how many cells were rescored."""
    suite_dir = results_folder(out) / check_plain_name(suite, "suite")
    device = device or default_device()
    validate_cells(cells)
    check_named_files(inception_weights)
    watch = watch or Stopwatch(device)
    try:
        extractors = load_inputs(cells, watch, inception_weights, device, without_inception)
    finally:
        flush_ledger(watch, suite_dir)
    say = say or print
    todo = [c for c in cells if finished_metrics(c, suite_dir / "runs" / c.run_id) is not None
            and (force or _lacks_intervals(c, suite_dir / "runs" / c.run_id, without_inception))]
    todo.sort(key=lambda c: c.spec.eval.inception_fid)  # the cheap cells land first
    for i, cell in enumerate(todo, 1):
        run_dir = suite_dir / "runs" / cell.run_id
        stored = read_json(run_dir / "metrics.json")
        images, labels = stored_samples(run_dir, suite, cell)
        cell_extractors_ = extractors[(cell.spec.data, cell.spec.eval)]
        t0 = time.perf_counter()
        stream = FeatureStream(cell_extractors_, device, watch)
        stream.add(images)
        feats, runtimes = stream.features(), stream.runtimes()
        with watch.stage("metrics", f"bootstrap B={cell.spec.eval.bootstrap}", units=len(labels), unit="images",
                         key=scoring_key(cell.spec, without_inception)):
            quality, replicates = score_features(cell.spec, cell_extractors_, feats, labels, cache_root(), device)
        flush_ledger(watch, suite_dir)
        drift = abs(quality["fid"] - stored["fid"])
        same_runtime = stored.get("extractor_runtime", REFERENCE) == runtimes["extractor_runtime"]
        if drift > (1e-6 * max(1.0, abs(stored["fid"])) if same_runtime else RUNTIME_FID_TOLERANCE):
            raise ResultsError(f"{run_dir}: FID rescored from the stored samples is {quality['fid']:.6f}, stored "
                               f"{stored['fid']:.6f}; the extractor or reference changed: rerun the cell with --force")
        write_replicates(run_dir / REPLICATES_FILE, replicates)
        atomic_write_json(run_dir / "metrics.json", {**stored, **quality, **runtimes,
                                                     "rescore_seconds": time.perf_counter() - t0})
        say(f"[{i}/{len(todo)}] {cell.name}: FID {quality['fid']:.3f} [{quality['fid_lo']:.3f}, {quality['fid_hi']:.3f}]",
            flush=True)
    return len(todo)
