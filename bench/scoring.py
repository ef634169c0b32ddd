"""Score one cell's samples: distribution metrics on the suite's extractor plus the
offline evaluator's class consistency (always the evaluator, whatever the FID features).

Split in two so feature extraction can be sharded across ranks: `sample_features` runs on
each rank's images, `score_features` on the gathered features (rank 0).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .config import RunSpec
from .evaluator import EvaluatorMissing
from .features import extract, get_extractor
from .metrics import all_metrics, class_consistency, reference_features

EVALUATOR_LOGITS = "evaluator_logits"


def sample_features(spec: RunSpec, images: torch.Tensor, device: str = "cpu",
                    inception_weights: str | None = None) -> dict[str, torch.Tensor]:
    """Per-image features of uint8 samples: the extractor's layers, plus the offline
    evaluator's logits (under EVALUATOR_LOGITS) where the dataset has an evaluator."""
    extractor = get_extractor(spec.eval.features, spec.data, inception_weights)
    feats = extract(extractor, images, device=device)
    try:
        evaluator = get_extractor("evaluator", spec.data)
    except EvaluatorMissing:
        return feats  # no offline evaluator for this dataset (cifar10, imagenet): only the distribution metrics
    feats[EVALUATOR_LOGITS] = feats["logits"] if evaluator == extractor else extract(evaluator, images, device=device)["logits"]
    return feats


def score_features(spec: RunSpec, feats: dict[str, torch.Tensor], labels: torch.Tensor, cache: Path,
                   device: str = "cpu", inception_weights: str | None = None) -> dict:
    """Metrics of the samples' features against the reference split named in spec.eval."""
    extractor = get_extractor(spec.eval.features, spec.data, inception_weights)
    ref = reference_features(spec.data, spec.eval.reference_split, extractor, cache, device)
    metrics = {**all_metrics(feats, ref, extractor), "reference_split": spec.eval.reference_split}
    if EVALUATOR_LOGITS in feats:
        metrics.update(class_consistency(feats[EVALUATOR_LOGITS], labels))
        metrics["class_consistency_extractor"] = get_extractor("evaluator", spec.data).name
    return metrics
