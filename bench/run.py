"""`python -m bench.run --suite NAME`: run every cell of a suite and write its results.

Per cell: results/<suite>/runs/<run-id>/{spec.json, metrics.json, env.json, grid.png}
(samples.npz is kept beside them, git-ignored). A cell whose metrics.json exists for the
same spec is skipped, so a rerun resumes an interrupted suite.
"""
from __future__ import annotations

import argparse
import errno
import fnmatch
import io
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from baselines.noisy_classifier import (NoisyClassifier, accuracy_by_noise_level, classifier_id,
                                        confidence_on_samples, train_classifier)

from . import distributed
from .config import RunSpec, stable_hash, to_dict
from .data import DatasetError, load_dataset, to_uint8
from .envinfo import environment
from .evaluator import EvaluatorMissing
from .fastpath import FastPathError, fast_settings
from .features import FeatureError
from .figures import build as build_figures
from .figures import plot_classifier_accuracy
from .grids import save_grid
from .guidance import GuidanceError
from .metrics import MetricInputError
from .overrides import OverrideError, apply_overrides, parse_overrides
from .plan import plan
from .regression import check_against_baseline
from .sampling import sample_cell
from .scoring import sample_features, score_features
from .store import CellLock, CorruptFileError, atomic_write_bytes, atomic_write_json, read_json
from .suites import SUITES, Cell, get_suite
from .train import TrainingDiverged, cache_root, train_diffusion

# Bad input or state the user can fix: one clear message and exit code 2, finished cells kept.
USER_ERRORS = (DatasetError, EvaluatorMissing, FastPathError, FeatureError, GuidanceError, MetricInputError, OverrideError,
               CorruptFileError, TrainingDiverged)
SUMMARY_COLUMNS = ["cell", "fid", "fid_cleanfid", "is_mean", "class_accuracy", "gap_confidence", "images_per_second"]


def guidance_classifier(spec: RunSpec, suite_dir: Path, *, device: str, quiet: bool) -> NoisyClassifier:
    """The cell's (cached) guidance classifier; its accuracy by noise level is written once per suite."""
    classifier = train_classifier(spec.data, spec.classifier, cache=cache_root(), device=device, quiet=quiet)
    folder = suite_dir / "classifiers" / classifier_id(spec.data, spec.classifier)

    def write_accuracy_by_noise_level() -> None:
        if not (folder / "accuracy_by_lambda.csv").exists():
            table = pd.DataFrame(accuracy_by_noise_level(classifier, spec.data, device=device))
            table.insert(0, "noise_aware", spec.classifier.noise_aware)
            plot_classifier_accuracy(table, folder / "accuracy_by_lambda.png")
            atomic_write_bytes(folder / "accuracy_by_lambda.csv", table.to_csv(index=False).encode())
    distributed.on_main(write_accuracy_by_noise_level)
    return classifier


def run_cell(cell: Cell, run_dir: Path, *, device: str, quiet: bool, inception_weights: str | None = None) -> dict:
    """Train (or reuse) the models, sample, score, and write the cell's files atomically.
    Under torchrun each rank samples and extracts features for its share of the seeds;
    rank 0 scores the gathered features and writes the files."""
    spec = cell.spec
    dataset = load_dataset(spec.data, "train")
    t0 = time.perf_counter()
    model = train_diffusion(spec.data, spec.net, spec.train, device=device, quiet=quiet)
    classifier = guidance_classifier(spec, run_dir.parent.parent, device=device, quiet=quiet)
    train_seconds = time.perf_counter() - t0
    seeds = distributed.shard(range(spec.sample.seed, spec.sample.seed + spec.sample.num_samples))
    result = sample_cell(spec, model, dataset.shape, dataset.num_classes, device=device, quiet=quiet, seeds=seeds,
                         classifier=classifier.log_prob_grad if spec.guidance.method == "classifier" else None)
    t1 = time.perf_counter()
    images = to_uint8(result.images)
    feats = sample_features(spec, images, device, inception_weights)
    extract_seconds = time.perf_counter() - t1
    gathered = distributed.gather_cat({"images": images, "labels": result.labels, **feats})
    images, labels = gathered.pop("images"), gathered.pop("labels")
    timings = combine_timings(distributed.gather(result.timings()), distributed.gather(extract_seconds))

    def score_and_write() -> dict:
        t2 = time.perf_counter()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=images.numpy(), labels=labels.numpy())
        atomic_write_bytes(run_dir / "samples.npz", buffer.getvalue())
        save_grid(run_dir / "grid.png", images[:100])
        quality = score_features(spec, gathered, labels, cache_root(), device, inception_weights)
        quality.update(adversarial_gap(classifier, images, labels, quality))
        quality["metrics_seconds"] = timings.pop("extract_seconds") + time.perf_counter() - t2
        metrics = {"cell": cell.name, "run_id": cell.run_id, "spec_hash": stable_hash(spec),
                   "model_seconds": train_seconds, **cell.columns(), "device": device, **timings, **quality}
        atomic_write_json(run_dir / "env.json", {**environment(device), "world_size": distributed.world_size(),
                                                 "extractor": quality["extractor"],
                                                 "extractor_sha256": quality["extractor_sha256"]})
        atomic_write_json(run_dir / "metrics.json", metrics)
        return metrics
    return distributed.on_main(score_and_write)


def combine_timings(per_rank: list[dict], extract_seconds: list[float]) -> dict:
    """One cell's timings over ranks: wall time is the slowest rank's, time inside the networks
    the mean per rank, NFE per image from the counts summed over ranks."""
    n = sum(t["sampled_images"] for t in per_rank)
    wall = max(t["sampling_seconds"] for t in per_rank)
    out = {**per_rank[0], "sampled_images": n, "sampling_seconds": wall, "images_per_second": n / wall, "world_size": len(per_rank),
           "extract_seconds": max(extract_seconds)}
    for key in ("network_seconds", "classifier_seconds"):
        out[key] = sum(t[key] for t in per_rank) / len(per_rank)
    for key in ("nfe_per_image", "classifier_evals_per_image"):
        out[key] = sum(t[key] * t["sampled_images"] for t in per_rank) / n
    out["other_seconds"] = wall - out["network_seconds"] - out["classifier_seconds"]
    return out


def adversarial_gap(classifier: NoisyClassifier, images: torch.Tensor, labels: torch.Tensor, quality: dict) -> dict:
    """How much more the guidance classifier believes the samples than the independent evaluator
    (the paper's question: does classifier guidance fool its own classifier?)."""
    own = confidence_on_samples(classifier, images, labels)
    if "class_accuracy" in quality:
        own["gap_accuracy"] = own["guidance_classifier_accuracy"] - quality["class_accuracy"]
        own["gap_confidence"] = own["guidance_classifier_confidence"] - quality["evaluator_confidence"]
    return own


def finished_metrics(cell: Cell, run_dir: Path) -> dict | None:
    """The cell's metrics if it finished for exactly this spec, else None."""
    path = run_dir / "metrics.json"
    if not path.exists():
        return None
    try:
        metrics = read_json(path)
    except ValueError:
        return None
    return metrics if metrics.get("spec_hash") == stable_hash(cell.spec) else None


def suite_seconds_here(suite: str, out: Path) -> str:
    """Total time the suite's stored cells took here (training + sampling + metrics), from its table."""
    table = Path(out) / suite / "table.csv"
    if not table.exists():
        return "not run here"
    t = pd.read_csv(table)
    seconds = t[["model_seconds", "sampling_seconds", "metrics_seconds"]].sum().sum()
    return f"took {seconds / 60:.1f} min here"


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 1 <= I <= N; cells are dealt round-robin in suite order, so shards are disjoint and stable."""
    try:
        shard, shards = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected I/N such as 2/8") from None
    if not 1 <= shard <= shards:
        raise ValueError(f"--shard {text!r}: I must be between 1 and N")
    return shard, shards


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", help="suite to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its estimated cost; train nothing")
    parser.add_argument("--out", default="results", help="results root (default: results)")
    parser.add_argument("--only", default="*", help="run only cells whose name matches this glob")
    parser.add_argument("--force", action="store_true", help="recompute cells that already have results")
    parser.add_argument("--shard", default="1/1", metavar="I/N",
                        help="run only the I-th of N deterministic round-robin shards of the cells (e.g. a Slurm array)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field in every cell, e.g. --set sample.num_samples=512")
    parser.add_argument("--check", action="store_true",
                        help="recompute and compare with results/<suite>/baseline.csv; exit 1 on a regression")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fast", action="store_true",
                        help="sample with the fast path: channels_last, and bf16 autocast where this device has "
                             "native bf16 (recorded in each cell's spec, so fast and fp32 runs never mix)")
    parser.add_argument("--inception-weights", help="Inception weights file for eval.features=inception "
                                                    "(or set $BENCH_INCEPTION_WEIGHTS)")
    parser.add_argument("--no-report", action="store_true", help="skip table.csv, figures and report.md")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for suite in SUITES.values():
            print(f"{suite.name:11s} {len(suite.build()):4d} cells  {suite_seconds_here(suite.name, args.out):18s} {suite.description}")
        return 0
    if not args.suite:
        build_parser().error("--suite NAME is required (or --list)")
    try:
        suite = get_suite(args.suite)
        overrides = parse_overrides(args.set)
        shard, shards = parse_shard(args.shard)
    except (KeyError, OverrideError, ValueError) as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    cells = [Cell(c.name, apply_overrides(c.spec, overrides)) for c in suite.build() if fnmatch.fnmatch(c.name, args.only)]
    if args.fast:
        cells = [Cell(c.name, replace(c.spec, sample=fast_settings(c.spec.sample, args.device))) for c in cells]
    cells = cells[shard - 1::shards]
    if not cells:
        print(f"error: no cell of suite {suite.name} matches --only {args.only!r}", file=sys.stderr)
        return 2
    if args.dry_run:
        table = plan(cells, args.device)
        print(table.to_string(index=False, float_format="%.1f"))
        print(f"plan: {len(cells)} cells, {table.samples.sum():,} samples, {table.sampling_nfe.sum():,} sampling NFE, "
              f"~{table.est_seconds.sum() / 3600:.2f} h on {args.device} (per-NFE time measured here just now)")
        return 0

    device = distributed.init(args.device)
    try:
        return run_suite(suite.name, cells, args, device)
    finally:
        distributed.shutdown()


def run_suite(suite: str, cells: list[Cell], args: argparse.Namespace, device: str) -> int:
    """Run the cells (resuming finished ones), then write the table, report and figures (rank 0)."""
    suite_dir = Path(args.out) / suite
    say = print if distributed.is_main() else (lambda *a, **k: None)
    quiet = args.quiet or not distributed.is_main()
    recompute = args.force or args.check
    held: dict[str, CellLock] = {}

    def claim(cell: Cell, run_dir: Path, wait: bool) -> tuple[str, dict | None]:
        """Rank 0 decides: 'done' (with metrics), 'busy' (another runner holds the cell) or 'run'."""
        metrics = None if recompute else finished_metrics(cell, run_dir)
        if metrics is not None:
            return "done", metrics
        lock = CellLock(suite_dir / ".locks" / f"{cell.run_id}.lock")
        if not lock.acquire(wait):
            return "busy", None
        metrics = None if recompute else finished_metrics(cell, run_dir)  # finished while we waited?
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
                metrics = run_cell(cell, run_dir, device=device, quiet=quiet, inception_weights=args.inception_weights)
            finally:
                if cell.run_id in held:
                    held.pop(cell.run_id).release()
            say(f"[{i}/{len(cells)}] {cell.name}: FID {metrics['fid']:.3f}, IS {metrics['is_mean']:.2f}, "
                f"{metrics['images_per_second']:.1f} img/s -> {run_dir}", flush=True)
        return metrics

    start = time.perf_counter()
    rows: dict[str, dict] = {}
    try:
        for i, cell in enumerate(cells, 1):
            if (metrics := process(i, cell, wait=False)) is not None:
                rows[cell.name] = metrics
        for i, cell in enumerate(cells, 1):
            if cell.name not in rows:
                rows[cell.name] = process(i, cell, wait=True)
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        say(f"error: out of disk space while writing {err.filename or 'results'}; finished cells are kept, "
            "no partial file was left under a final name; free space and rerun to resume", file=sys.stderr)
        return 2
    except USER_ERRORS as err:
        say(f"error: {err}", file=sys.stderr)
        return 2
    table = pd.DataFrame([rows[c.name] for c in cells])
    say(table[[c for c in SUMMARY_COLUMNS if c in table]].to_string(index=False, float_format="%.3f"))
    say(f"suite {suite}: {len(cells)} cells in {time.perf_counter() - start:.1f}s on {distributed.world_size()} "
        f"process(es); results in {suite_dir}")
    if not args.no_report and distributed.is_main():
        written = build_figures(suite, Path(args.out))
        say(f"table, report and {len(written)} figures in {suite_dir}")
    if args.check:
        return distributed.on_main(lambda: check_against_baseline(suite, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
