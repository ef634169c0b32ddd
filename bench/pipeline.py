"""The per-cell work and the suite scheduler behind every entry point (Python API, CLI, CI gate, perf).

    from bench import run_suite
    table = run_suite("tiny", out="results", overrides=["sample.num_samples=128"])   # a pandas DataFrame

`run_suite` selects a suite's cells (glob, KEY=VALUE overrides, fast path, shard), `validate_cells`
checks them against the registries before any work, and `run_cells` trains or reuses the models,
samples, scores and writes each cell, resuming finished ones, and returns one row per cell.

Per cell: <out>/<suite>/runs/<run-id>/{spec.json, metrics.json, env.json, grid.png, samples.npz}.
A cell whose metrics.json exists for the same spec is skipped, so a rerun resumes an interrupted
suite; each cell is claimed with a lock, so concurrent runners into one folder compute it once.
Under torchrun each rank samples and extracts features for its share of the seeds; rank 0
scores the gathered features and writes the files.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from baselines.noisy_classifier import (NoisyClassifier, accuracy_by_noise_level, classifier_id, classifier_path,
                                        confidence_on_samples, train_classifier)

from . import distributed
from .config import RunSpec, SpecError, stable_hash, to_dict
from .data import DATASETS, DatasetError, load_dataset, nominal_shape, to_uint8
from .envinfo import default_device, environment
from .autotune import COMPILE_MIN_CALLS, decide
from .features import FEATURES
from .grids import save_grid
from .guidance import count_evaluations, describe, make_guidance, method_needs, stub_context
from .metrics import check_sample_count
from .sampling import sample_cell
from .sources import SOURCES, check_source, load_model
from .scoring import CellExtractors, cell_extractors, prepare_references, sample_features, score_features
from .stages import LEDGER, Stopwatch, metrics_key, sampling_key, train_key
from .store import (REPLICATES_FILE, CellLock, atomic_write_bytes, atomic_write_json, cache_root, read_json,
                    ResultsError, read_replicates, results_folder, write_replicates)
from .suites import Cell, select_cells
from .train import model_id, model_path, train_diffusion

Say = Callable[..., None]


def cell_columns(cell: Cell) -> dict:
    """Tidy identifying columns for the suite's table: the guidance record's (method, label,
    strength), the classifier's kind where the method uses one, and the sampling setup."""
    spec = cell.spec
    guidance = describe(spec.guidance)
    needs = method_needs(spec.guidance.method, spec.guidance.kwargs())
    if "noisy_classifier" in needs:
        guidance["method_label"] += f", {'noisy' if spec.classifier.noise_aware else 'clean'} classifier"
    if "guide" in needs:
        kind = "unconditional " if spec.guide.p_uncond == 1 else ""
        guidance["method_label"] += f", {kind}guide {spec.guide.channels} ch / {spec.guide.steps} steps"
    return {**guidance, "p_uncond": spec.train.p_uncond, "sampler": spec.sample.sampler, "steps": spec.sample.steps,
            "dataset": spec.data.name, "model_source": spec.model.source}


def validate_cells(cells: Sequence[Cell]) -> None:
    """Everything about the cells that a registry decides, checked before any work and without
    writing anything (so --dry-run can use it): the dataset and its root, an image size the network
    can halve at every level, the guidance method and its parameters (built once against stub
    networks), the feature extractor, and a sample count above its feature dimension."""
    for cell in cells:
        spec = cell.spec
        DATASETS.check(spec.data.name)
        if spec.data.root and not Path(spec.data.root).expanduser().exists():
            raise DatasetError(f"data.root={spec.data.root!r} does not exist; name the folder that holds the dataset")
        side = nominal_shape(spec.data)[-1]
        factor = 2 ** (len(spec.net.channel_mult) - 1)
        if side % factor:
            raise SpecError(f"data.size={spec.data.size}: images of side {side} cannot be halved {factor.bit_length() - 1} "
                            f"times by a network with net.channel_mult={list(spec.net.channel_mult)}; use a multiple of {factor}")
        source = check_source(spec.model, 0)
        if source.latent(spec.model) and spec.sample.clip_x:
            raise SpecError("a latent model's samples are latents, which clipping to [-1, 1] would corrupt: "
                            "set sample.clip_x=false")
        make_guidance(spec.guidance.method, replace(stub_context(), null_label=source.null_label(spec.model)),
                      **spec.guidance.kwargs())
        kind = FEATURES[spec.eval.features]
        if kind.full_rank:
            check_sample_count(spec.sample.num_samples, kind.feature_dim)


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


@dataclass(frozen=True)
class CellModels:
    """What a cell samples with: the eps-model, the guidance classifier, the guide (None unless its method
    needs one), the model's null label (-1: num_classes; None: none), and for latent models the shape
    sampled and the decoder to images."""
    model: torch.nn.Module
    classifier: torch.nn.Module
    guide: torch.nn.Module | None
    null_label: int | None = -1
    sample_shape: tuple[int, ...] | None = None
    decode: torch.nn.Module | None = None


def train_models(spec: RunSpec, watch: Stopwatch, *, device: str, quiet: bool) -> CellModels:
    """The cell's diffusion model, guidance classifier and (where its method needs one) guide, trained
    or loaded from the cache, or the pretrained pieces of the spec's model source (bench/sources); each
    timed as stage "train" with its images seen (steps x batch)."""
    def diffusion(kind: str, net, train) -> torch.nn.Module:
        with watch.stage("train", f"{kind} {spec.data.name} {model_id(spec.data, net, train)}",
                         key=train_key(kind, spec.data.name, stable_hash(net)), units=train.steps * train.batch_size,
                         unit="images", cached=model_path(spec.data, net, train).exists()):
            return train_diffusion(spec.data, net, train, device=device, quiet=quiet)
    source, loaded = check_source(spec.model, 0), None
    if source.trains:
        model, classifier = diffusion("diffusion", spec.net, spec.train), None
    else:
        train_split = load_dataset(spec.data, "train")
        with watch.stage("train", f"load {spec.model.source} {spec.model.path}", cached=True):
            loaded = load_model(spec.model, train_split.shape, train_split.num_classes, device)
        model, classifier = loaded.eps, loaded.classifier
    if classifier is None:  # the source has none of its own: the harness's noisy classifier
        c = spec.classifier
        with watch.stage("train", f"classifier {spec.data.name} {classifier_id(spec.data, c)}",
                         units=c.steps * c.batch_size, key=train_key("classifier", spec.data.name, f"w{c.width}"),
                         unit="images", cached=classifier_path(spec.data, c, cache_root()).exists()):
            classifier = train_classifier(spec.data, c, cache=cache_root(), device=device, quiet=quiet)
    guide = (diffusion("guide", *spec.guide_net_and_train())
             if "guide" in method_needs(spec.guidance.method, spec.guidance.kwargs()) else None)
    if loaded is None:
        return CellModels(model, classifier, guide)
    return CellModels(model, classifier, guide, loaded.null_label, loaded.sample_shape, loaded.decode)


def decoded(samples: torch.Tensor, decode: torch.nn.Module | None, batch_size: int, device: str) -> torch.Tensor:
    """Samples as images in [-1, 1]: latent models' samples through their decoder, in batches."""
    if decode is None:
        return samples
    with torch.inference_mode():
        return torch.cat([decode(batch.to(device)).float().cpu() for batch in samples.split(batch_size)])


def write_classifier_accuracy(classifier: NoisyClassifier, spec: RunSpec, suite_dir: Path, device: str) -> None:
    """The guidance classifier's accuracy by noise level, written once per suite
    (classifiers/<id>/accuracy_by_lambda.csv; bench.figures plots it)."""
    path = suite_dir / "classifiers" / classifier_id(spec.data, spec.classifier) / "accuracy_by_lambda.csv"

    def write_accuracy_by_noise_level() -> None:
        if not path.exists():
            table = pd.DataFrame(accuracy_by_noise_level(classifier, spec.data, device=device))
            table.insert(0, "noise_aware", spec.classifier.noise_aware)
            atomic_write_bytes(path, table.to_csv(index=False).encode())
    distributed.on_main(write_accuracy_by_noise_level)


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
    result = sample_cell(spec, models.model, models.sample_shape or dataset.shape, dataset.num_classes, device=device,
                         quiet=quiet, seeds=seeds, classifier=classifier.log_prob_grad, guide=models.guide,
                         null_label=models.null_label)
    sampled = result.timings()
    watch.record("sampling", f"{spec.data.name} net {stable_hash(spec.net)[:8]}",  result.seconds,
                 units=sampled["sampled_images"] * (sampled["nfe_per_image"] + 3 * sampled["classifier_evals_per_image"]),
                 unit="network evaluations x images (a classifier pass as 3)",
                 key=sampling_key(spec.data.name, stable_hash(spec.net), describe_sampling(spec.sample)))
    t1 = time.perf_counter()
    images = to_uint8(decoded(result.images, models.decode, spec.sample.batch_size, device))
    feats = sample_features(extractors, images, device, watch)
    extract_seconds = time.perf_counter() - t1
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
            write_replicates(run_dir / REPLICATES_FILE, {**read_replicates(run_dir), **replicates})
            quality.update(adversarial_gap(classifier, images, labels, quality))
        quality["metrics_seconds"] = timings.pop("extract_seconds") + time.perf_counter() - t2
        metrics = {"cell": cell.name, "run_id": cell.run_id, "spec_hash": stable_hash(spec),
                   "model_seconds": train_seconds, **cell_columns(cell), "device": device, **timings, **quality}
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


def run_cells(suite: str, cells: Sequence[Cell], out: str | Path = "results", *, device: str | None = None,
              force: bool = False, quiet: bool = False, inception_weights: str | None = None,
              say: Say | None = None, watch: Stopwatch | None = None) -> pd.DataFrame:
    """Run the cells into <out>/<suite>/ (resuming finished ones unless `force`) and return their
    metrics, one row per cell in the given order. `say` receives one line per cell (default: print on
    rank 0). Raises a BenchError subclass on anything the user can fix; finished cells are kept.
    Each stage's time is appended to <out>/<suite>/stages.jsonl as it is measured (bench/stages.py)."""
    suite_dir = results_folder(out) / suite
    device = device or default_device()
    validate_cells(cells)
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


def _lacks_intervals(cell: Cell, run_dir: Path, without_inception: bool) -> bool:
    replicates = read_replicates(run_dir)
    wants_inception = cell.spec.eval.inception_fid and not without_inception
    return not replicates or (wants_inception and "fid_inception" not in replicates)


def rescore_cells(suite: str, cells: Sequence[Cell], out: str | Path = "results", *, device: str | None = None,
                  force: bool = False, without_inception: bool = False, inception_weights: str | None = None,
                  say: Say | None = None, watch: Stopwatch | None = None) -> int:
    """Add intervals (and their replicates) to finished cells scored before they existed: features are
    extracted again from the stored samples and scored; the point metrics must come out as stored.
    Cells with all their intervals are skipped unless `force`; `without_inception` leaves the Inception
    FID's interval (the slow part) for a later rescore. Returns how many cells were rescored."""
    suite_dir = results_folder(out) / suite
    device = device or default_device()
    validate_cells(cells)
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
        with np.load(run_dir / "samples.npz") as samples:
            images, labels = torch.from_numpy(samples["images"]), torch.from_numpy(samples["labels"])
        cell_extractors_ = extractors[(cell.spec.data, cell.spec.eval)]
        t0 = time.perf_counter()
        feats = sample_features(cell_extractors_, images, device, watch)
        with watch.stage("metrics", f"bootstrap B={cell.spec.eval.bootstrap}", units=len(labels), unit="images",
                         key=scoring_key(cell.spec, without_inception)):
            quality, replicates = score_features(cell.spec, cell_extractors_, feats, labels, cache_root(), device)
        flush_ledger(watch, suite_dir)
        drift = abs(quality["fid"] - stored["fid"])
        if drift > 1e-6 * max(1.0, abs(stored["fid"])):
            raise ResultsError(f"{run_dir}: FID rescored from the stored samples is {quality['fid']:.6f}, stored "
                               f"{stored['fid']:.6f}; the extractor or reference changed: rerun the cell with --force")
        write_replicates(run_dir / REPLICATES_FILE, replicates)
        atomic_write_json(run_dir / "metrics.json", {**stored, **quality,
                                                     "rescore_seconds": time.perf_counter() - t0})
        say(f"[{i}/{len(todo)}] {cell.name}: FID {quality['fid']:.3f} [{quality['fid_lo']:.3f}, {quality['fid_hi']:.3f}]",
            flush=True)
    return len(todo)


def suite_cells(suite: str, *, only: str = "*", overrides: Sequence[str] = (), fast: bool = False,
                shard: str = "1/1", device: str | None = None) -> list[Cell]:
    """The selected cells of a suite (bench.suites.select_cells), with the fast path written into each
    spec when `fast`: per network, the settings measured fastest on this machine (bench/autotune.py)."""
    cells = select_cells(suite, only=only, overrides=overrides, shard=shard)
    return fast_cells(cells, device or default_device()) if fast else cells


def network_calls(cell: Cell) -> float:
    """How many times sampling the cell calls its network: batches x network evaluations per image."""
    s = cell.spec.sample
    nfe = count_evaluations(cell.spec.guidance, steps=s.steps, sampler=s.sampler, v=s.v, clip_x=s.clip_x)["nfe"]
    return -(-s.num_samples // s.batch_size) * nfe


def fast_cells(cells: Sequence[Cell], device: str) -> list[Cell]:
    """Each cell with the evaluation settings measured fastest for its network (bench/autotune.py),
    compile included where the network calls of all the cells sharing it repay its warm-up, and each
    model's training likewise. Feature extraction keeps fp32: bf16 Inception features moved FID by half
    its bootstrap interval (results/perf/report.md), so eval.fast_features stays an explicit choice."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.spec.data, cell.spec.net, cell.spec.sample.batch_size), []).append(cell)
    sample, train = {}, {}
    for (data, net, batch), members in groups.items():
        calls = sum(network_calls(c) for c in members)
        decision = decide(net, nominal_shape(data), 10, batch, device,  # class count: no effect on a pass's cost
                          with_compile=calls >= COMPILE_MIN_CALLS)
        sample.update({c.name: decision.apply(c.spec.sample, calls) for c in members})
    for cell in cells:  # each model is trained once, for train.steps steps
        t = cell.spec.train
        if SOURCES[cell.spec.model.source].trains:
            decision = decide(cell.spec.net, nominal_shape(cell.spec.data), 10, t.batch_size, device, training=True,
                              with_compile=t.steps >= COMPILE_MIN_CALLS)
            train[cell.name] = decision.apply(t, t.steps)
    return [Cell(c.name, replace(c.spec, sample=sample[c.name], train=train.get(c.name, c.spec.train))) for c in cells]


def run_suite(suite: str, out: str | Path = "results", *, only: str = "*", overrides: Sequence[str] = (),
              fast: bool = False, shard: str = "1/1", device: str | None = None, force: bool = False,
              quiet: bool = False, inception_weights: str | None = None, say: Say | None = None) -> pd.DataFrame:
    """Run (or resume) a suite's selected cells and return their table; see run_cells. The report and
    figures are bench.figures.build(suite, Path(out))."""
    cells = suite_cells(suite, only=only, overrides=overrides, fast=fast, shard=shard, device=device)
    return run_cells(suite, cells, out, device=device, force=force, quiet=quiet,
                     inception_weights=inception_weights, say=say)
