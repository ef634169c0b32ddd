"""Score one cell's samples: distribution metrics on the suite's extractor plus the
offline evaluator's class consistency (always the evaluator, whatever the FID features).

A cell looks its extractors up once (`cell_extractors`; for Inception that hashes a large
weights file). The work is split in two so feature extraction can be sharded across ranks:
`sample_features` runs on each rank's images, `score_features` on the gathered features (rank 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .config import RunSpec
from .evaluator import EvaluatorMissing
from .features import Extractor, extract, get_extractor, reference_features
from .metrics import all_metrics, class_consistency

EVALUATOR_LOGITS = "evaluator_logits"


@dataclass(frozen=True)
class CellExtractors:
    """The extractor of the cell's distribution metrics, and the offline evaluator for class
    consistency (None for datasets without one, such as cifar10 or imagenet)."""
    main: Extractor
    evaluator: Extractor | None


def cell_extractors(spec: RunSpec, inception_weights: str | None = None) -> CellExtractors:
    main = get_extractor(spec.eval.features, spec.data, inception_weights)
    try:
        evaluator = get_extractor("evaluator", spec.data)
    except EvaluatorMissing:
        evaluator = None
    return CellExtractors(main, evaluator)


def sample_features(extractors: CellExtractors, images: torch.Tensor, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Per-image features of uint8 samples: the main extractor's layers, plus the offline
    evaluator's logits (under EVALUATOR_LOGITS) where the dataset has an evaluator."""
    feats = extract(extractors.main, images, device=device)
    if extractors.evaluator is not None:
        same = extractors.evaluator == extractors.main
        feats[EVALUATOR_LOGITS] = feats["logits"] if same else extract(extractors.evaluator, images, device=device)["logits"]
    return feats


def score_features(spec: RunSpec, extractors: CellExtractors, feats: dict[str, torch.Tensor], labels: torch.Tensor,
                   cache: Path, device: str = "cpu") -> dict:
    """Metrics of the samples' features against the reference split named in spec.eval."""
    main = extractors.main
    ref = reference_features(spec.data, spec.eval.reference_split, main, cache, device)
    metrics = {**all_metrics(feats, ref, main.fid_layer, main.isc_layer), "extractor": main.name,
               "extractor_sha256": main.sha256, "reference_split": spec.eval.reference_split}
    if extractors.evaluator is not None:
        metrics.update(class_consistency(feats[EVALUATOR_LOGITS], labels))
        metrics["class_consistency_extractor"] = extractors.evaluator.name
    return metrics
