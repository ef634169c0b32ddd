"""`--dry-run`: the plan of a suite (cells, NFE, samples, estimated cost per stage), training nothing.

NFE per image are counted by running each cell's method through its sampler against stubs (the
method records, bench/guidance/registry.py), so the plan counts what the run will evaluate.

Each stage's cost is its units (images seen in training, network evaluations x images in sampling,
images through each extractor and scored) times a rate in seconds per unit. Rates come from the stage
ledgers of earlier runs on this machine and device (bench/infra/stages.py; `rates`), pooled over every suite
in the results folder. Where no run measured a rate, it is timed here: sampling on one batch of the
cell's size through the (untrained) network, training as 3 such forward passes per image seen, feature
extraction on real images of the reference split through the runtime the run will use (for Inception
the measured choice of bench/evaluation/runtime_choice.py, made now where this machine has none cached,
and then reused by the run), and scoring on random features of the cell's sizes and dimensions (the
same metric and bootstrap calls as bench/evaluation/scoring.py). A stage that cannot be timed here
(no such device, unreadable data) stays NaN rather than guessed, and the total then says "at least".
Cells already finished, models, classifiers and reference features already cached cost nothing.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import torch

from bench.data.datasets import load_dataset, nominal_shape
from bench.evaluation.evaluator import evaluator_key, weights_dir
from bench.evaluation.features import (FEATURES, SPATIAL_CHANNELS, extract, extraction_runtime, get_extractor,
                                       reference_cached)
from bench.evaluation.metrics import distribution_metrics, fid_and_stats
from bench.guidance import method_needs
from bench.infra.devices import DeviceError, check_device
from bench.infra.stages import LEDGER, features_key, machine_identity, rates, read_ledger, sampling_key, train_key
from bench.infra.store import cache_root
from bench.models.train import model_path
from bench.runner.cell import describe_sampling, finished_metrics, scoring_key
from bench.sampling.nfe import count_for
from bench.sources import SOURCES
from bench.sources.classifier import NOISY_CLASSIFIER
from bench.spec.errors import BenchError
from bench.spec.hashing import stable_hash
from bench.stats.uncertainty import CellUncertainty
from bench.suites.cells import Cell

SPATIAL_DIM = SPATIAL_CHANNELS * 17 * 17  # sFID features: 7 channels of a 17 x 17 map

STAGE_COLUMNS = ["reference_s", "train_s", "sampling_s", "features_s", "metrics_s"]
TIMING_BATCH = 4  # images per timed classifier step


def nfe_per_image(cell: Cell) -> tuple[float, float]:
    """(diffusion-network evaluations, classifier forward+backward passes) per image, counted by
    running the cell's method through its sampler against stubs (bench/guidance/registry.py)."""
    s = cell.spec.sample
    counted = count_for(cell.spec)
    return counted["nfe"], counted["classifier_evals"]


def seconds_per_nfe(cell: Cell, device: str, repeats: int = 3, budget: float = 1.0) -> float:
    """Seconds for one image through the cell's network (untrained, from its model source) on `device`:
    timed on one image, then on the largest batch up to the cell's that takes about `budget` seconds
    (a large network on a CPU is not timed at a GPU's batch); the fastest of `repeats` calls after a
    warm-up (the minimum, because a busy machine only ever adds time)."""
    source = SOURCES[cell.spec.model.source]
    shape = source.sampled_shape(cell.spec.model, nominal_shape(cell.spec.data))
    net = source.untrained(cell.spec.model, cell.spec.net, shape, 10).to(device).eval()

    def fastest(batch: int, calls: int) -> float:
        z = torch.randn(batch, *shape, device=device)
        lam, labels = torch.zeros(batch, device=device), torch.zeros(batch, dtype=torch.long, device=device)
        times = []
        with torch.inference_mode():
            for _ in range(calls + 1):
                start = time.perf_counter()
                net(z, lam, labels)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        return min(times[1:]) / batch
    one = fastest(1, 1)
    batch = int(min(cell.spec.sample.batch_size, max(1, budget / one)))
    return one if batch == 1 else fastest(batch, repeats)


def reference_size(spec) -> float:
    """Images in the reference split (NaN where the data is not readable here or holds none, e.g. a user's folder)."""
    try:
        return len(load_dataset(spec.data, spec.eval.reference_split).labels) or math.nan
    except BenchError:
        return math.nan


def feature_kinds(spec) -> list[str]:
    """The kinds of features a cell extracts (bench/evaluation/scoring.py): its main kind, the dataset's evaluator
    where one is committed, and Inception for eval.inception_fid; found without building any."""
    kinds = [spec.eval.features]
    if (weights_dir() / f"{evaluator_key(spec.data)}.json").exists():
        kinds.append("evaluator")
    if spec.eval.inception_fid:
        kinds.append("inception")
    if spec.eval.dinov2_weights:
        kinds.append("dinov2")
    return list(dict.fromkeys(kinds))


_FEATURE_RATES: dict[tuple, tuple[str, float]] = {}


def features_rate_now(spec, kind: str, device: str, batches: int = 2) -> tuple[str, float]:
    """(runtime, seconds per image) of the kind's extractor on this data, timed now on `batches` batches
    of the reference split's images after one warm-up batch, through the runtime the run will use."""
    key = (spec.data, spec.eval.reference_split, kind, device)
    if key not in _FEATURE_RATES:
        extractor = get_extractor(kind, spec.data, spec.eval.dinov2_weights if kind == "dinov2" else None)
        batch = FEATURES[kind].batch_size(device)
        images = load_dataset(spec.data, spec.eval.reference_split).images[:batch * (batches + 1)]
        runtime = extraction_runtime(extractor, images, device)
        extract(extractor, images[:batch], device=device)
        timed = images[batch:] if len(images) > batch else images  # a split smaller than a batch: time it again
        start = time.perf_counter()
        extract(extractor, timed, device=device)
        _FEATURE_RATES[key] = runtime.name, (time.perf_counter() - start) / len(timed)
    return _FEATURE_RATES[key]


def scoring_seconds_now(spec) -> float:
    """Seconds of one cell's scoring, timed on random non-negative features of its N, reference size and
    feature dimensions, through the calls of bench/evaluation/scoring.py (point metrics, bootstrap
    intervals and N-extrapolation in every feature space the cell scores)."""
    n, n_ref = spec.sample.num_samples, reference_size(spec)
    if math.isnan(n_ref):
        raise BenchError(f"the reference split of {spec.data.name} is not readable here")
    generator = torch.Generator().manual_seed(0)

    def features(rows: int, kind: str) -> torch.Tensor:
        return torch.rand(rows, FEATURES[kind].feature_dim, generator=generator)
    start = time.perf_counter()
    uncertainty = CellUncertainty(n, spec.eval.bootstrap, spec.eval.bootstrap_reference)
    sample, real = features(n, spec.eval.features), features(int(n_ref), spec.eval.features)
    points = distribution_metrics(sample, real, FEATURES[spec.eval.features].full_rank)
    uncertainty.frechet("fid", points["fid"], sample, real)
    uncertainty.kernel(points["kid_mean"], sample, real)
    uncertainty.manifold(points, sample, real)
    for kind in feature_kinds(spec)[1:]:
        sample, real = features(n, kind), features(int(n_ref), kind)
        uncertainty.frechet(f"fid_{kind}", fid_and_stats(sample, real)["fid"], sample, real)
    if "inception" in feature_kinds(spec):  # sFID's spatial features
        sample, real = (torch.rand(rows, SPATIAL_DIM, generator=generator) for rows in (n, int(n_ref)))
        uncertainty.frechet("sfid", fid_and_stats(sample, real)["fid"], sample, real)
    return time.perf_counter() - start


def stored_ledgers(results: Path) -> list[pd.DataFrame]:
    """Every suite's stage ledger under a results root."""
    return [read_ledger(path) for path in sorted(Path(results).glob(f"*/{LEDGER}"))]


class Rates:
    """Seconds per unit by (stage, key): measured in earlier runs here, else timed now (sampling and
    training only), else NaN. `basis` records which, per stage, for the plan's table."""

    def __init__(self, results: Path, device: str):
        self.device = device
        self.measured = rates(stored_ledgers(results), machine_identity(device))
        self.timed: dict[str, float] = {}

    def features(self, spec, kind: str) -> tuple[float, str]:
        """Seconds per image through the kind's extractor: from the ledgers at its runtime, else timed now."""
        try:
            check_device(self.device)
            runtime, timed = features_rate_now(spec, kind, self.device)
        except (DeviceError, BenchError) as err:
            return math.nan, f"unmeasured ({err})"
        measured, basis = self.get("features", features_key(kind, nominal_shape(spec.data), runtime))
        return (measured, basis) if not math.isnan(measured) else (timed, f"timed now ({runtime})")

    def metrics(self, spec) -> tuple[float, str]:
        """Seconds per image of scoring: from the ledgers, else timed now on random features."""
        measured, basis = self.get("metrics", scoring_key(spec))
        if not math.isnan(measured):
            return measured, basis
        key = repr((scoring_key(spec), spec.sample.num_samples, reference_size(spec)))
        if key not in self.timed:
            try:
                self.timed[key] = scoring_seconds_now(spec) / spec.sample.num_samples
            except BenchError as err:
                return math.nan, f"unmeasured ({err})"
        return self.timed[key], "timed now (random features)"

    def classifier_step(self, spec) -> float:
        """Seconds per image of a noisy-classifier training step (forward and backward), timed now on a
        batch of at most TIMING_BATCH images through an untrained classifier of the spec's width (10 classes:
        the class count changes only its last layer; a small batch costs no less per image than the
        training batch, so the estimate errs long, and a 256 x 256 plan is priced in seconds, not minutes);
        NaN without the device."""
        try:
            check_device(self.device)
        except DeviceError:
            return math.nan
        key = repr(("classifier", spec.data, spec.classifier))
        if key not in self.timed:
            shape, c = nominal_shape(spec.data), spec.classifier
            net = NOISY_CLASSIFIER.network(shape[0], 10, width=c.width).to(self.device)
            batch = min(c.batch_size, TIMING_BATCH)
            z, lam = torch.randn(batch, *shape, device=self.device), torch.zeros(batch, device=self.device)
            times = []
            for _ in range(2):  # a warm-up, then the timed step
                start = time.perf_counter()
                net(z, lam).logsumexp(1).sum().backward()
                times.append(time.perf_counter() - start)
            self.timed[key] = times[-1] / batch
        return self.timed[key]

    def get(self, stage: str, key: str) -> tuple[float, str]:
        for measured_stage in ((stage, "reference") if stage == "features" else (stage,)):
            if (measured_stage, key) in self.measured:
                return self.measured[(measured_stage, key)], "ledger"
        return math.nan, "unmeasured"

    def network(self, cell: Cell) -> tuple[float, str]:
        """Seconds per image through the cell's network, timed now on the device; NaN where the plan is
        for a device this machine lacks (a GPU plan written on a CPU machine)."""
        try:
            check_device(self.device)
        except DeviceError:
            return math.nan, f"unmeasured (no {self.device} here)"
        key = repr((cell.spec.data, cell.spec.net, cell.spec.model, cell.spec.sample.batch_size))
        if key not in self.timed:
            self.timed[key] = seconds_per_nfe(cell, self.device)
        return self.timed[key], "timed now"


def plan(cells: list[Cell], device: str, results: str | Path = "results", suite: str = "",
         force: bool = False) -> pd.DataFrame:
    """One row per cell: its samples and NFE, whether it is finished (and so skipped: never with `force`,
    which reruns every cell), and the estimated seconds of each stage it still needs (a model, classifier
    or reference is charged to the first cell that needs it; cached ones cost nothing, as in a run)."""
    results = Path(results)
    rate = Rates(results, device)
    charged: set[str] = set()
    rows = []
    for cell in cells:
        s = cell.spec
        done = bool(suite) and not force and finished_metrics(cell, results / suite / "runs" / cell.run_id) is not None
        nfe, clf = nfe_per_image(cell)
        units = s.sample.num_samples * (nfe + 3 * clf)  # a classifier pass (forward + backward) as 3 evaluations
        row = {"cell": cell.name, "samples": s.sample.num_samples, "nfe_per_image": nfe, "classifier_passes_per_image": clf,
               "sampling_nfe": units, "done": done, **{c: 0.0 for c in STAGE_COLUMNS}}
        if not done:
            row.update(_stage_seconds(cell, units, rate, charged))
        row["est_seconds"] = sum(row[c] for c in STAGE_COLUMNS)
        rows.append(row)
    return pd.DataFrame(rows)


def _stage_seconds(cell: Cell, sampling_units: float, rate: Rates, charged: set[str]) -> dict:
    s = cell.spec
    out, basis = {}, {}
    sampling, basis["sampling"] = rate.get("sampling", sampling_key(s.data.name, stable_hash(s.net), describe_sampling(s.sample)))
    if math.isnan(sampling):
        sampling, basis["sampling"] = rate.network(cell)
    out["sampling_s"] = sampling * sampling_units

    train = 0.0
    source = SOURCES[s.model.source]
    models = [("diffusion", s.net, s.train)] if source.trains else []
    if "guide" in method_needs(s.guidance.method, s.guidance.kwargs()):
        models.append(("guide", *s.guide_net_and_train()))
    for kind, net, tr in models:
        path = model_path(s.data, net, tr)
        if str(path) in charged or path.exists():
            continue
        charged.add(str(path))
        per_image, basis["train"] = rate.get("train", train_key(kind, s.data.name, stable_hash(net)))
        if math.isnan(per_image):  # forward + backward as 3 forward passes
            forward, basis["train"] = rate.network(cell)  # a guide as a main-size network
            per_image = 3 * forward
        train += per_image * tr.steps * tr.batch_size
    c = s.classifier
    path = NOISY_CLASSIFIER.path(s.data, c, cache_root())
    if str(path) not in charged and not path.exists() and not source.own_classifier(s.model):
        charged.add(str(path))
        per_image, _ = rate.get("train", train_key("classifier", s.data.name, f"w{c.width}"))
        if math.isnan(per_image):
            per_image = rate.classifier_step(s)
        train += per_image * c.steps * c.batch_size
    out["train_s"] = train

    features = reference = 0.0
    for kind in feature_kinds(s):
        per_image, basis["features"] = rate.features(s, kind)
        features += per_image * s.sample.num_samples
        charge = repr((s.data, s.eval.reference_split, kind))
        if charge not in charged and not reference_cached(s.data, s.eval.reference_split, kind, cache_root()):
            charged.add(charge)
            reference += per_image * reference_size(s)
    out["features_s"], out["reference_s"] = features, reference
    per_image, basis["metrics"] = rate.metrics(s)
    out["metrics_s"] = per_image * s.sample.num_samples
    out["basis"] = ", ".join(f"{k}: {v}" for k, v in basis.items())
    return out


def summary(table: pd.DataFrame, device: str) -> str:
    """The plan in one line: cells, samples, NFE, and the hours still to run by stage with their basis
    ("at least" where a stage has no measured rate yet)."""
    todo = table[~table.done]
    stages = ", ".join(f"{c.removesuffix('_s')} {todo[c].sum(skipna=False) / 60:.1f}" for c in STAGE_COLUMNS)
    basis = "; ".join(sorted(set(todo["basis"].dropna()))) if "basis" in todo else ""
    bound = "at least " if todo[STAGE_COLUMNS].isna().any().any() else ""
    return (f"plan: {len(table)} cells ({int(table.done.sum())} finished), {table.samples.sum():,} samples, "
            f"{table.sampling_nfe.sum():,} sampling NFE; still to run {bound}~{todo[STAGE_COLUMNS].sum().sum() / 3600:,.2f} h "
            f"on {device} (minutes by stage: {stages}; rates from {basis or 'nothing left to run'}; "
            "nan = no run here has measured that stage yet)")
