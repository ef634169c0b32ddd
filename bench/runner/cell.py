"""One cell: its inputs loaded once per suite (data, extractors, reference features), then train or
reuse the models, sample (extracting each batch's features as it is sampled), score, and write
<out>/<suite>/runs/<run-id>/{spec.json, metrics.json, env.json, grid.png, samples.npz} atomically.
Under torchrun each rank samples and extracts features for its share of the seeds; rank 0 scores the
gathered features and writes the files."""
from __future__ import annotations

import io
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bench.data.datasets import load_dataset, to_uint8
from bench.evaluation.adversarial import adversarial_gap
from bench.evaluation.scoring import CellExtractors, FeatureStream, cell_extractors, prepare_references, score_features
from bench.infra import distributed
from bench.infra.envinfo import environment
from bench.infra.grids import save_grid
from bench.infra.stages import Stopwatch, metrics_key, sampling_key
from bench.infra.store import (REPLICATES_FILE, CorruptFileError, atomic_write_bytes, atomic_write_json, cache_root, read_json,
                               read_replicates, run_problem, write_replicates)
from bench.report.table import cell_columns
from bench.runner.models import decoded, train_models, write_classifier_accuracy
from bench.sampling.cell import sample_cell
from bench.sources import SOURCES
from bench.spec.hashing import stable_hash
from bench.spec.sections import RunSpec
from bench.suites.cells import Cell

Say = Callable[..., None]


def load_inputs(cells: Sequence[Cell], watch: Stopwatch, inception_weights: str | None = None,
                device: str = "cpu", without_inception: bool = False) -> dict[tuple, CellExtractors]:
    """Each dataset's training split (cached for the cells), each (data, eval) pair's extractors and
    their reference features, loaded once before the first cell: missing data or a missing or
    tampered weights file stops the run here, before any training. Timed as stages data, reference.
    `without_inception` leaves out eval.inception_fid's second extractor."""
    extractors: dict[tuple, CellExtractors] = {}
    for cell in cells:
        key = (cell.spec.data, cell.spec.eval)
        if key not in extractors:
            with watch.stage("data", cell.spec.data.name):
                load_dataset(cell.spec.data, "train")
                extractors[key] = cell_extractors(cell.spec, inception_weights)
                if without_inception:
                    extractors[key] = replace(extractors[key], inception=None)
            if distributed.is_main():
                prepare_references(cell.spec, extractors[key], cache_root(), device, watch)
    return extractors


def run_cell(cell: Cell, run_dir: Path, extractors: CellExtractors, watch: Stopwatch, *, device: str,
             quiet: bool) -> dict:
    """Train (or reuse) the models, sample, score, and write the cell's files atomically; returns its
    metrics. Each stage's time goes to `watch`."""
    spec = cell.spec
    dataset = load_dataset(spec.data, "train")
    t0 = time.perf_counter()
    models = train_models(spec, watch, device=device, quiet=quiet)
    classifier = models.classifier
    if not SOURCES[spec.model.source].own_classifier(spec.model):  # the harness's classifier, once per suite
        write_classifier_accuracy(classifier, spec, run_dir.parent.parent, device)
    train_seconds = time.perf_counter() - t0
    seeds = distributed.shard(range(spec.sample.seed, spec.sample.seed + spec.sample.num_samples))
    stream = FeatureStream(extractors, device, watch)
    extract_seconds = 0.0

    def extract_batch(samples, labels) -> None:
        nonlocal extract_seconds
        start = time.perf_counter()
        stream.add(to_uint8(decoded(samples, models.decode, spec.sample.batch_size, device)))
        extract_seconds += time.perf_counter() - start
    result = sample_cell(spec, models.model, models.sample_shape or dataset.shape, dataset.num_classes, device=device,
                         quiet=quiet, seeds=seeds, classifier=classifier.log_prob_grad, guide=models.guide,
                         null_label=models.null_label, on_batch=extract_batch)
    sampled = result.timings()
    watch.record("sampling", f"{spec.data.name} net {stable_hash(spec.net)[:8]}",  result.seconds,
                 units=sampled["sampled_images"] * (sampled["nfe_per_image"] + 3 * sampled["classifier_evals_per_image"]),
                 unit="network evaluations x images (a classifier pass as 3)",
                 key=sampling_key(spec.data.name, stable_hash(spec.net), describe_sampling(spec.sample)))
    images, feats, runtimes = stream.images(), stream.features(), stream.runtimes()
    gathered = distributed.gather_cat({"images": images, "labels": result.labels, **feats})
    images, labels = gathered.pop("images"), gathered.pop("labels")
    timings = combine_timings(distributed.gather(result.timings()), distributed.gather(extract_seconds))

    def score_and_write() -> dict:
        t2 = time.perf_counter()
        with watch.stage("metrics", f"bootstrap B={spec.eval.bootstrap}", units=len(labels), unit="images",
                         key=scoring_key(spec)):
            buffer = io.BytesIO()
            np.savez_compressed(buffer, images=images.numpy(), labels=labels.numpy())
            atomic_write_bytes(run_dir / "samples.npz", buffer.getvalue())
            save_grid(run_dir / "grid.png", images[:100])
            quality, replicates = score_features(spec, extractors, gathered, labels, cache_root(), device)
            write_replicates(run_dir / REPLICATES_FILE, {**earlier_replicates(run_dir), **replicates})
            quality.update(adversarial_gap(classifier, images, labels, quality), **runtimes)
        quality["metrics_seconds"] = timings.pop("extract_seconds") + time.perf_counter() - t2
        metrics = {"cell": cell.name, "run_id": cell.run_id, "spec_hash": stable_hash(spec),
                   "model_seconds": train_seconds, **cell_columns(cell.spec), "device": device, **timings, **quality}
        atomic_write_json(run_dir / "env.json", {**environment(device), "world_size": distributed.world_size(),
                                                 "extractor": quality["extractor"],
                                                 "extractor_sha256": quality["extractor_sha256"]})
        atomic_write_json(run_dir / "metrics.json", metrics)
        return metrics
    return distributed.on_main(score_and_write)


def scoring_key(spec: RunSpec, without_inception: bool = False) -> str:
    """The metrics stage's rate key: bootstrap draws and the feature spaces scored."""
    spaces = spec.eval.features + ("+inception" if spec.eval.inception_fid and not without_inception else "")
    return metrics_key(spec.eval.bootstrap, spaces)


def describe_sampling(sample) -> str:
    """What a sampling rate depends on besides the network: batch size, precision, memory format, compile."""
    return (f"batch {sample.batch_size} {sample.precision}" + (" channels_last" if sample.channels_last else "")
            + (" compiled" if sample.compile else ""))


def combine_timings(per_rank: list[dict], extract_seconds: list[float]) -> dict:
    """One cell's timings over ranks: wall time is the slowest rank's, time inside the networks
    the mean per rank, NFE per image from the counts summed over ranks."""
    n = sum(t["sampled_images"] for t in per_rank)
    wall = max(t["sampling_seconds"] for t in per_rank)
    out = {**per_rank[0], "sampled_images": n, "sampling_seconds": wall, "images_per_second": n / wall, "world_size": len(per_rank),
           "extract_seconds": max(extract_seconds)}
    for key in ("network_seconds", "classifier_seconds"):
        out[key] = sum(t[key] for t in per_rank) / len(per_rank)
    for key in ("nfe_per_image", "classifier_evals_per_image", "guide_evals_per_image"):
        out[key] = sum(t[key] * t["sampled_images"] for t in per_rank) / n
    out["other_seconds"] = wall - out["network_seconds"] - out["classifier_seconds"]
    return out


def earlier_replicates(run_dir: Path) -> dict:
    """Replicates a rescore stored for this cell (kept beside the new ones); none when they are corrupt."""
    try:
        return read_replicates(run_dir)
    except CorruptFileError:
        return {}


_ANNOUNCED: set[Path] = set()


def finished_metrics(cell: Cell, run_dir: Path) -> dict | None:
    """The cell's metrics if it finished for exactly this spec with every file whole (run_problem),
    else None: the cell is computed (again), which rewrites every file."""
    if not (run_dir / "metrics.json").exists():
        return None
    problem = run_problem(run_dir)
    if problem is None:
        metrics = read_json(run_dir / "metrics.json")
        if metrics["spec_hash"] == stable_hash(cell.spec):
            return metrics
        problem = "it was computed for another spec"
    if run_dir not in _ANNOUNCED:
        _ANNOUNCED.add(run_dir)
        print(f"recomputing {cell.name} ({run_dir}): {problem}", file=sys.stderr)
    return None
