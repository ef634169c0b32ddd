"""Score one cell's samples: distribution metrics on the suite's extractor plus the
offline evaluator's class consistency (always the evaluator, whatever the FID features)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .config import RunSpec
from .evaluator import EvaluatorMissing
from .features import extract, get_extractor
from .metrics import all_metrics, class_consistency, reference_features


def score_samples(spec: RunSpec, images: torch.Tensor, labels: torch.Tensor, cache: Path, device: str = "cpu",
                  inception_weights: str | None = None) -> dict:
    """Metrics of uint8 samples against the reference split named in spec.eval."""
    start = time.perf_counter()
    extractor = get_extractor(spec.eval.features, spec.data, inception_weights)
    ref = reference_features(spec.data, spec.eval.reference_split, extractor, cache, device)
    feats = extract(extractor, images, device=device)
    metrics = {**all_metrics(feats, ref, extractor), "reference_split": spec.eval.reference_split}
    try:
        evaluator = get_extractor("evaluator", spec.data)
        logits = feats["logits"] if evaluator == extractor else extract(evaluator, images, device=device)["logits"]
        metrics.update(class_consistency(logits, labels))
        metrics["class_consistency_extractor"] = evaluator.name
    except EvaluatorMissing:
        pass  # no offline evaluator for this dataset (cifar10, imagenet): only the distribution metrics
    metrics["metrics_seconds"] = time.perf_counter() - start
    return metrics
