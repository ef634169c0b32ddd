"""FID and IS without their bias in N (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception
Score and where to find them", sec. 3).

Both estimators are, to first order, linear in 1/N: E[FID_N] = FID_inf + k / N. Compute the metric on
random subsets (without replacement) of POINTS sizes spaced linearly from N / SPAN to N, fit a line
against 1/m by least squares, and read FID_inf off at 1/m = 0. The fit's points are returned so a
report can show them; its standard error is the least-squares one (the subsets overlap, so it is
indicative, not a confidence interval). IS_inf uses one split per subset (the bias in N of IS is the
bias in the images per split).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch_fidelity.metric_isc import isc_features_to_metric

POINTS = 8
SPAN = 5  # smallest subset N / SPAN
SUBSETS_PER_SIZE = 3
SEED = 2020


def subset_sizes(n: int, points: int = POINTS, span: int = SPAN) -> list[int]:
    return sorted({int(m) for m in np.linspace(max(n // span, 2), n, points).round()})


def subset_counts(n: int, sizes: list[int], per_size: int = SUBSETS_PER_SIZE, seed: int = SEED) -> torch.Tensor:
    """(len(sizes) * per_size, n) 0/1 row memberships of random subsets, size-major."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for m in sizes:
        for _ in range(per_size if m < n else 1):
            member = torch.zeros(n, dtype=torch.float64)
            member[torch.randperm(n, generator=generator)[:m]] = 1
            rows.append(member)
    return torch.stack(rows)


def extrapolate(metric_of_counts: Callable[[torch.Tensor], np.ndarray], n: int, name: str) -> dict:
    """{name}_inf, its standard error, and the fit's points [(m, mean metric at m), ...]."""
    sizes = subset_sizes(n)
    counts = subset_counts(n, sizes)
    values = metric_of_counts(counts)
    m = counts.sum(1).numpy()
    points = [(int(size), float(values[m == size].mean())) for size in sizes]
    inverse = 1.0 / np.array([p[0] for p in points], dtype=np.float64)
    means = np.array([p[1] for p in points])
    (slope, intercept), cov = np.polyfit(inverse, means, 1, cov=True) if len(points) > 3 else (np.polyfit(inverse, means, 1), None)
    stderr = float(np.sqrt(cov[1, 1])) if cov is not None else float("nan")
    return {f"{name}_inf": float(intercept), f"{name}_inf_se": stderr, f"{name}_inf_slope": float(slope),
            f"{name}_inf_points": [[size, value] for size, value in points]}


def inception_score_of_counts(logits: torch.Tensor) -> Callable[[torch.Tensor], np.ndarray]:
    """IS (one split) of each 0/1 subset of the logits' rows."""
    def metric(counts: torch.Tensor) -> np.ndarray:
        return np.array([isc_features_to_metric(logits[c.bool()], splits=1, shuffle=False)["inception_score_mean"]
                         for c in counts])
    return metric
