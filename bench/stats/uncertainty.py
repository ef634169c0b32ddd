"""The uncertainty of one cell's metrics: bootstrap replicates and basic 95% intervals of every
metric (bench/stats/bootstrap.py), and FID / IS extrapolated to infinite N (bench/stats/extrapolate.py).

`CellUncertainty` is filled metric by metric beside the point estimates in scoring.py; it yields
the columns `<metric>_lo` / `<metric>_hi` (and `<fid>_inf`, `<fid>_inf_se`, `<fid>_inf_points`)
for metrics.json, and the replicates, which are stored per cell (`bootstrap.npz`) so that paired
differences between cells are computed later without the features (bench/stats/paired.py).
"""
from __future__ import annotations

import functools
import time

import numpy as np
import torch

from bench.stats.bootstrap import (SEED, FrechetReplicates, KernelReplicates, ManifoldMemberships, draw_indices,
                                   frechet_with_reference_resampled, inception_score_replicates, mean_replicates,
                                   row_counts)
from bench.stats.extrapolate import extrapolate, inception_score_of_counts
from bench.stats.intervals import LEVEL, interval

UNIT = (0.0, 1.0)
NONNEGATIVE = (0.0, np.inf)


def _timed(method):
    """Adds the method's time to the cell's `bootstrap_seconds` column."""
    @functools.wraps(method)
    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.columns["bootstrap_seconds"] = self.columns.get("bootstrap_seconds", 0.0) + time.perf_counter() - start
    return timed


class CellUncertainty:
    """Replicates and intervals of a cell's metrics, all from the same `draws` resamples of its N rows."""

    def __init__(self, n: int, draws: int, resample_reference: bool = False, seed: int = SEED):
        self.n, self.draws, self.seed, self.resample_reference = n, draws, seed, resample_reference
        self.idx = draw_indices(n, draws, seed)
        self.counts = row_counts(self.idx, n)
        self.replicates: dict[str, np.ndarray] = {}
        self.columns: dict[str, object] = {"bootstrap_draws": draws, "bootstrap_seed": seed, "interval_level": LEVEL,
                                           "bootstrap_reference": resample_reference}

    def record(self, name: str, point: float, replicates: np.ndarray, bounds: tuple[float, float]) -> None:
        self.replicates[name] = replicates.astype(np.float64)
        self.columns[f"{name}_lo"], self.columns[f"{name}_hi"] = interval(point, replicates, LEVEL, bounds)

    @_timed
    def frechet(self, name: str, point: float, feats: torch.Tensor, ref_feats: torch.Tensor) -> None:
        """Interval and N-extrapolation of a Frechet distance (`name` is its column: fid, fid_inception, ...)."""
        replicates = FrechetReplicates(feats, ref_feats)
        if self.resample_reference:
            ref_idx = draw_indices(len(ref_feats), self.draws, self.seed + 1)
            draws = frechet_with_reference_resampled(feats, ref_feats, self.idx, ref_idx)
        else:
            draws = replicates(self.counts)
        self.record(name, point, draws, NONNEGATIVE)
        self.columns.update(extrapolate(replicates, self.n, name))

    @_timed
    def inception_score(self, point: float, logits: torch.Tensor) -> None:
        self.record("is_mean", point, inception_score_replicates(logits, self.idx, self.seed), (1.0, np.inf))
        self.columns.update(extrapolate(inception_score_of_counts(logits), self.n, "is"))

    @_timed
    def mean(self, name: str, point: float, per_row: torch.Tensor) -> None:
        self.record(name, point, mean_replicates(per_row, self.counts), UNIT)

    @_timed
    def manifold(self, points: dict, feats: torch.Tensor, ref_feats: torch.Tensor) -> None:
        memberships = ManifoldMemberships.of(feats, ref_feats)
        self.record("precision", points["precision"], memberships.precision(self.counts), UNIT)
        self.record("recall", points["recall"], memberships.recall(self.counts), UNIT)

    @_timed
    def kernel(self, point: float, feats: torch.Tensor, ref_feats: torch.Tensor) -> None:
        self.record("kid_mean", point, KernelReplicates(feats, ref_feats, point)(self.counts), (-np.inf, np.inf))
