"""Score one cell's samples: distribution metrics on the suite's extractor, plus the domain
evaluator's class consistency, its IS where the main network has no classifier (the packaged FID
Inception), its own FID beside an Inception FID, and an Inception FID beside the evaluator's when
eval.inception_fid is set. Columns name the network behind each number: `extractor` for
fid/kid/precision/recall, `is_extractor` for is_mean, `domain_extractor` for fid_domain,
`inception_extractor` for fid_inception.

Every metric gets an interval for its value at this N beside it, and every Frechet distance its N -> inf
estimate with its own interval where that is estimable (bench/stats/uncertainty.py says which interval
each metric gets); the bootstrap replicates are returned for the cell's bootstrap.npz.

Inception FID at N <= 2048 comes from rank-deficient covariances: computable, but biased upward in 1/N;
it is compared within a suite (fixed N, seeds and reference), never across N.

A cell looks its extractors up once (`cell_extractors`; for Inception that hashes a large weights
file). The work is split in two so feature extraction can be sharded across ranks: `sample_features`
runs on each rank's images, `score_features` on the gathered features (rank 0).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bench.data.datasets import nominal_shape
from bench.evaluation.evaluator import EvaluatorMissing
from bench.evaluation.features import (FEATURES, Extractor, extract, extraction_runtime, get_extractor, reference_features,
                                       reference_path, runtime_used)
from bench.evaluation import reference_stats
from bench.evaluation.metrics import (class_consistency, distribution_metrics, fid_against_moments, fid_and_stats,
                                      inception_score)
from bench.infra.stages import Stopwatch, features_key
from bench.spec.sections import RunSpec
from bench.stats.uncertainty import CellUncertainty

EVALUATOR_FEATURES, EVALUATOR_LOGITS = "evaluator_features", "evaluator_logits"
INCEPTION_FEATURES, INCEPTION_SPATIAL = "inception_features", "inception_spatial"
DINOV2_FEATURES = "dinov2_features"


@dataclass(frozen=True)
class CellExtractors:
    """The extractor of the cell's distribution metrics, and the domain evaluator (None for datasets
    without one, such as cifar10 or imagenet)."""
    main: Extractor
    evaluator: Extractor | None
    inception: Extractor | None = None  # the second FID of eval.inception_fid
    dinov2: Extractor | None = None  # FD_DINOv2 beside the main metrics (eval.dinov2_weights)

    @property
    def separate_evaluator(self) -> bool:
        return self.evaluator is not None and self.evaluator != self.main


def cell_extractors(spec: RunSpec, inception_weights: str | None = None) -> CellExtractors:
    weights = spec.eval.dinov2_weights if spec.eval.features == "dinov2" else inception_weights
    main = get_extractor(spec.eval.features, spec.data, weights)
    try:
        evaluator = get_extractor("evaluator", spec.data)
    except EvaluatorMissing:
        evaluator = None
    inception = get_extractor("inception", spec.data, inception_weights) if spec.eval.inception_fid else None
    inception = None if inception == main else inception
    beside = spec.eval.dinov2_weights and spec.eval.features != "dinov2"
    dino = get_extractor("dinov2", spec.data, spec.eval.dinov2_weights) if beside else None
    fast = spec.eval.fast_features
    return CellExtractors(*(replace(e, fast=fast) if e is not None else None for e in (main, evaluator, inception, dino)))


class FeatureStream:
    """Features of a cell's samples extracted batch by batch as they are sampled (no second pass over
    the images): `add(images)` takes each uint8 batch, `features()` returns what `sample_features`
    returns for all of them, and `images()` the batches joined. Each extractor's time is summed over
    the batches and goes to `watch` once (stage "features", per extractor)."""

    def __init__(self, extractors: CellExtractors, device: str = "cpu", watch: Stopwatch | None = None):
        self.extractors, self.device, self.watch = extractors, device, watch or Stopwatch(device)
        self.batches: list[torch.Tensor] = []
        self.parts: dict[str, list[dict[str, torch.Tensor]]] = {}
        self.seconds: dict[str, float] = {}

    def _extractors(self) -> dict[str, Extractor]:
        used = {"main": self.extractors.main}
        if self.extractors.separate_evaluator:
            used["evaluator"] = self.extractors.evaluator
        if self.extractors.inception is not None:
            used["inception"] = self.extractors.inception
        if self.extractors.dinov2 is not None:
            used["dinov2"] = self.extractors.dinov2
        return used

    def add(self, images: torch.Tensor) -> None:
        self.batches.append(images)
        for role, extractor in self._extractors().items():
            start = time.perf_counter()
            self.parts.setdefault(role, []).append(extract(extractor, images, device=self.device))
            self.seconds[role] = self.seconds.get(role, 0.0) + time.perf_counter() - start

    def images(self) -> torch.Tensor:
        return torch.cat(self.batches)

    def features(self) -> dict[str, torch.Tensor]:
        shape = tuple(self.batches[0].shape[1:])
        n = sum(len(b) for b in self.batches)
        joined = {}
        for role, extractor in self._extractors().items():
            self.watch.record("features", extractor.name, self.seconds[role], units=n, unit="images",
                              key=features_key(extractor.kind, shape, runtime_used(extractor, shape, self.device)))
            joined[role] = {layer: torch.cat([part[layer] for part in self.parts[role]]) for layer in self.parts[role][0]}
        feats = joined["main"]
        if "evaluator" in joined:
            feats[EVALUATOR_FEATURES], feats[EVALUATOR_LOGITS] = joined["evaluator"]["features"], joined["evaluator"]["logits"]
        elif self.extractors.evaluator is not None:
            feats[EVALUATOR_FEATURES], feats[EVALUATOR_LOGITS] = feats["features"], feats["logits"]
        if "inception" in joined:
            inception = self.extractors.inception
            feats[INCEPTION_FEATURES] = joined["inception"][inception.fid_layer]
            if inception.spatial_layer is not None:
                feats[INCEPTION_SPATIAL] = joined["inception"][inception.spatial_layer]
        if "dinov2" in joined:
            feats[DINOV2_FEATURES] = joined["dinov2"][self.extractors.dinov2.fid_layer]
        return feats

    def runtimes(self) -> dict[str, str]:
        """Which runtime computed each extractor's features (bench/evaluation/runtime_choice.py): the
        cell's `extractor_runtime`, `domain_runtime`, `inception_runtime` columns."""
        columns = {"main": "extractor_runtime", "evaluator": "domain_runtime", "inception": "inception_runtime",
                   "dinov2": "dinov2_runtime"}
        return {columns[role]: extraction_runtime(e, self.batches[0], self.device).name
                for role, e in self._extractors().items()}


def sample_features(extractors: CellExtractors, images: torch.Tensor, device: str = "cpu",
                    watch: Stopwatch | None = None) -> dict[str, torch.Tensor]:
    """Per-image features of uint8 samples: the main extractor's layers, plus the domain evaluator's
    features and logits (under EVALUATOR_FEATURES / EVALUATOR_LOGITS) where the dataset has one.
    Each extractor's time goes to `watch` (stage "features", per extractor)."""
    stream = FeatureStream(extractors, device, watch)
    stream.add(images)
    return stream.features()


def prepare_references(spec: RunSpec, extractors: CellExtractors, cache: Path, device: str = "cpu",
                       watch: Stopwatch | None = None) -> None:
    """Compute (or find cached) the reference split's features for each of the cell's extractors, timed
    as stage "reference" (per image, at the features' rate key), so a run pays for them before its first
    cell rather than inside it."""
    watch = watch or Stopwatch(device)
    split = spec.eval.reference_split
    from_file = reference_stats.read(spec.eval.reference_stats) if spec.eval.reference_stats else {}
    main = () if from_file else (extractors.main,)  # their statistics come from the file
    dino = () if "fd_dinov2" in from_file else (extractors.dinov2,)
    for extractor in {e for e in (*main, extractors.evaluator, extractors.inception, *dino) if e is not None}:
        cached = reference_path(spec.data, split, extractor, cache).exists()
        start = time.perf_counter()
        feats = reference_features(spec.data, split, extractor, cache, device)
        watch.record("reference", f"{extractor.name} {spec.data.name}/{split}", time.perf_counter() - start,
                     units=len(feats[extractor.fid_layer]), unit="images", cached=cached,
                     key=features_key(extractor.kind, nominal_shape(spec.data),
                                      runtime_used(extractor, nominal_shape(spec.data), device)))


def score_features(spec: RunSpec, extractors: CellExtractors, feats: dict[str, torch.Tensor], labels: torch.Tensor,
                   cache: Path, device: str = "cpu") -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics of the samples' features against the reference split named in spec.eval, each with its
    interval (and the Frechet distances at N -> inf); also returns the bootstrap replicates."""
    main, evaluator = extractors.main, extractors.evaluator
    split = spec.eval.reference_split
    uncertainty = CellUncertainty(len(labels), spec.eval.bootstrap, spec.eval.bootstrap_reference)
    full_rank = FEATURES[main.kind].full_rank
    sample = feats[main.fid_layer]
    metrics = {"extractor": main.name, "extractor_sha256": main.sha256, "extractor_preprocessing": main.preprocessing,
               "reference_split": split, "protocol": spec.eval.protocol}
    if spec.eval.reference_stats:
        moments = reference_stats.for_extractor(spec.eval.reference_stats, main.kind, sample.shape[1])
        metrics.update(fid_against_moments(sample, *moments), num_samples=len(sample),
                       reference_stats=spec.eval.reference_stats, reference_stats_note=reference_stats.WITHOUT_FEATURES)
        uncertainty.frechet("fid", metrics["fid"], sample, ref_moments=moments)
    else:
        real = reference_features(spec.data, split, main, cache, device)[main.fid_layer]
        metrics.update(distribution_metrics(sample, real, full_rank))
        uncertainty.frechet("fid", metrics["fid"], sample, real)
        uncertainty.kernel(metrics["kid_mean"], sample, real)
        metrics.update(uncertainty.manifold(metrics, sample, real))
    if main.kind == "dinov2":  # FD_DINOv2 under its own name too, as EDM2 reports it
        metrics.update(fd_dinov2=metrics["fid"], dinov2_extractor=main.name)
        uncertainty.alias("fid", "fd_dinov2")
    logits = feats[main.isc_layer] if main.isc_layer is not None else feats.get(EVALUATOR_LOGITS)
    if logits is not None:
        metrics.update(inception_score(logits), is_extractor=(main if main.isc_layer is not None else evaluator).name)
        uncertainty.inception_score(metrics["is_mean"], logits)
    if evaluator is not None:
        metrics.update(class_consistency(feats[EVALUATOR_LOGITS], labels), class_consistency_extractor=evaluator.name)
        uncertainty.mean("class_accuracy", metrics["class_accuracy"], feats[EVALUATOR_LOGITS].argmax(1) == labels)
    if extractors.separate_evaluator:
        domain_ref = reference_features(spec.data, split, evaluator, cache, device)["features"]
        fids = fid_and_stats(feats[EVALUATOR_FEATURES], domain_ref)
        metrics.update(fid_domain=fids["fid"], fid_domain_cleanfid=fids["fid_cleanfid"], domain_extractor=evaluator.name)
        uncertainty.frechet("fid_domain", fids["fid"], feats[EVALUATOR_FEATURES], domain_ref)
    if extractors.inception is not None:
        inception = extractors.inception
        inception_ref = reference_features(spec.data, split, inception, cache, device)[inception.fid_layer]
        fids = fid_and_stats(feats[INCEPTION_FEATURES], inception_ref)
        metrics.update(fid_inception=fids["fid"], fid_inception_cleanfid=fids["fid_cleanfid"],
                       inception_extractor=inception.name, inception_preprocessing=inception.preprocessing)
        uncertainty.frechet("fid_inception", fids["fid"], feats[INCEPTION_FEATURES], inception_ref)
    if extractors.dinov2 is not None:
        _fd_dinov2_beside(spec, extractors.dinov2, feats[DINOV2_FEATURES], metrics, uncertainty, cache, device)
    spatial_stats = (reference_stats.read(spec.eval.reference_stats).get("sfid")
                     if spec.eval.reference_stats and main.spatial_layer is not None else None)
    if spatial_stats is not None:  # ADM's reference batch carries sFID's statistics
        sample_spatial = feats[main.spatial_layer]
        metrics["sfid"] = fid_against_moments(sample_spatial, *spatial_stats)["fid"]
        uncertainty.frechet("sfid", metrics["sfid"], sample_spatial, ref_moments=spatial_stats)
    elif (spatial := _spatial_features(spec, extractors, feats, cache, device)) is not None:
        sample_spatial, ref_spatial = spatial
        metrics["sfid"] = fid_and_stats(sample_spatial, ref_spatial)["fid"]
        uncertainty.frechet("sfid", metrics["sfid"], sample_spatial, ref_spatial)
    return {**metrics, **uncertainty.columns}, uncertainty.replicates


def _fd_dinov2_beside(spec: RunSpec, extractor: Extractor, sample: torch.Tensor, metrics: dict,
                      uncertainty: CellUncertainty, cache: Path, device: str) -> None:
    """FD_DINOv2 of the samples, against the statistics file's `fd_dinov2` block where it has one, else
    against the reference split's DINOv2 features."""
    stats = reference_stats.read(spec.eval.reference_stats).get("fd_dinov2") if spec.eval.reference_stats else None
    if stats is not None:
        metrics["fd_dinov2"] = fid_against_moments(sample, *stats)["fid"]
        uncertainty.frechet("fd_dinov2", metrics["fd_dinov2"], sample, ref_moments=stats)
    else:
        real = reference_features(spec.data, spec.eval.reference_split, extractor, cache, device)[extractor.fid_layer]
        metrics["fd_dinov2"] = fid_and_stats(sample, real)["fid"]
        uncertainty.frechet("fd_dinov2", metrics["fd_dinov2"], sample, real)
    metrics["dinov2_extractor"] = extractor.name


def _spatial_features(spec: RunSpec, extractors: CellExtractors, feats: dict[str, torch.Tensor], cache: Path,
                      device: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The samples' and the reference's sFID features, from whichever of the cell's extractors has them."""
    split = spec.eval.reference_split
    if extractors.main.spatial_layer is not None:
        layer = extractors.main.spatial_layer
        return feats[layer], reference_features(spec.data, split, extractors.main, cache, device)[layer]
    if extractors.inception is not None and INCEPTION_SPATIAL in feats:
        layer = extractors.inception.spatial_layer
        return feats[INCEPTION_SPATIAL], reference_features(spec.data, split, extractors.inception, cache, device)[layer]
    return None
