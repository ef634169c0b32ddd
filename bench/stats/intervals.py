"""Basic (reverse-percentile) bootstrap intervals from replicates, [2 t - q(1 - a/2), 2 t - q(a/2)]
(Davison & Hinkley 1997, eq. 5.6), for one cell's metric and for the paired difference of two cells
whose replicates were drawn with the same rows (bench/stats/bootstrap.py says why basic)."""
from __future__ import annotations

import numpy as np

LEVEL = 0.95

def interval(point: float, replicates: np.ndarray, level: float = LEVEL,
             bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """Basic bootstrap interval of `point` from its replicates, clipped to the metric's range."""
    replicates = np.asarray(replicates, dtype=np.float64)
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) < 2:
        return float("nan"), float("nan")
    lo_q, hi_q = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    return float(np.clip(2 * point - hi_q, *bounds)), float(np.clip(2 * point - lo_q, *bounds))

def paired_interval(point_a: float, point_b: float, replicates_a: np.ndarray, replicates_b: np.ndarray,
                    level: float = LEVEL) -> tuple[float, float, float]:
    """(a - b, lo, hi): the difference of two cells and its basic interval from draw-matched replicates."""
    diff = point_a - point_b
    lo, hi = interval(diff, np.asarray(replicates_a) - np.asarray(replicates_b), level)
    return diff, lo, hi
