"""The uncertainty of one cell's metrics. Every interval targets the quantity printed beside it:

  <metric>_lo/_hi   an interval for the metric at this N. For the metrics biased in N (every Frechet
                    distance, IS, recall, coverage) the delete-a-group jackknife's (bench/stats/jackknife.py),
                    centred on the value; for means (precision, density, class accuracy) and the unbiased
                    KID the basic bootstrap's (bench/stats/intervals.py). With eval.bootstrap_reference the
                    reference set's own jackknife variance is added (it is then random too).
  <fid>_inf, <fid>_inf_lo/_hi   the distance between the distributions (N -> inf): the bootstrap's
                    bias-corrected estimate 2 t - mean(t*) and its basic interval, which covers it where the
                    sample covariance has full rank (N > d); below that the bootstrap's bias is not the
                    estimator's and both are NaN (`<fid>_inf_note` says why).
  <fid>_cf_inf, is_cf_inf   Chong & Forsyth's extrapolation (bench/stats/extrapolate.py), a second estimate.

The bootstrap replicates are stored per cell (`bootstrap.npz`) so that paired differences between cells
are computed later without the features (bench/stats/paired.py); `interval_method` names the scheme.
tests/stats/test_coverage.py measures each interval's coverage on Gaussians.
"""
from __future__ import annotations

import functools
import time

import numpy as np
import torch

from bench.stats.bootstrap import (SEED, FrechetReplicates, KernelReplicates, ManifoldMemberships, draw_indices,
                                   frechet_with_reference_resampled, inception_score_leave_out, inception_score_replicates,
                                   mean_replicates,
                                   row_counts)
from bench.stats.extrapolate import extrapolate, inception_score_of_counts
from bench.stats.intervals import LEVEL, interval
from bench.stats.jackknife import GROUPS, jackknife_interval, jackknife_se, leave_out_counts

INTERVAL_METHOD = f"jackknife-{GROUPS} at N (Frechet, IS, recall, coverage); basic bootstrap (means, KID, N -> inf)"

FRECHET_SUFFIXES = ("_lo", "_hi", "_se", "_dim", "_inf", "_inf_lo", "_inf_hi", "_inf_note", "_cf_inf", "_cf_inf_se",
                    "_cf_inf_slope", "_cf_inf_points")  # the columns `frechet` writes beside a distance
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
        self.leave_out = leave_out_counts(n)
        self.replicates: dict[str, np.ndarray] = {}
        self.columns: dict[str, object] = {"bootstrap_draws": draws, "bootstrap_seed": seed, "interval_level": LEVEL,
                                           "bootstrap_reference": resample_reference, "jackknife_groups": len(self.leave_out),
                                           "interval_method": INTERVAL_METHOD}

    def record(self, name: str, point: float, replicates: np.ndarray, bounds: tuple[float, float]) -> None:
        """Bootstrap replicates and the basic interval (metrics unbiased in N)."""
        self.replicates[name] = replicates.astype(np.float64)
        self.columns[f"{name}_lo"], self.columns[f"{name}_hi"] = interval(point, replicates, LEVEL, bounds)

    def record_at_n(self, name: str, point: float, replicates: np.ndarray, leave_out: np.ndarray,
                    bounds: tuple[float, float], extra_variance: float = 0.0) -> None:
        """Bootstrap replicates (for paired differences) and the jackknife interval at N (biased metrics)."""
        self.replicates[name] = replicates.astype(np.float64)
        lo, hi, se = jackknife_interval(point, leave_out, LEVEL, bounds, extra_variance)
        self.columns.update({f"{name}_lo": lo, f"{name}_hi": hi, f"{name}_se": se})

    @_timed
    def frechet(self, name: str, point: float, feats: torch.Tensor, ref_feats: torch.Tensor | None = None,
                ref_moments: tuple | None = None) -> None:
        """Intervals at N and at N -> inf of a Frechet distance (`name` is its column: fid, fid_inception, ...),
        against the reference's features or its (mu, sigma) from a statistics file (then held fixed)."""
        replicates = FrechetReplicates(feats, ref_feats, ref_moments)
        extra = 0.0
        if self.resample_reference and ref_feats is not None:
            ref_idx = draw_indices(len(ref_feats), self.draws, self.seed + 1)
            draws = frechet_with_reference_resampled(feats, ref_feats, self.idx, ref_idx)
            extra = jackknife_se(FrechetReplicates(ref_feats, feats)(leave_out_counts(len(ref_feats)))) ** 2
        else:
            draws = replicates(self.counts)
        self.record_at_n(name, point, draws, replicates(self.leave_out), NONNEGATIVE, extra)
        dim = feats.shape[1]
        self.columns[f"{name}_dim"] = dim
        if self.n > dim:
            lo, hi = interval(point, draws, LEVEL, NONNEGATIVE)
            self.columns.update({f"{name}_inf": max(2 * point - float(np.mean(draws)), 0.0),
                                 f"{name}_inf_lo": lo, f"{name}_inf_hi": hi})
        else:
            self.columns.update({f"{name}_inf": float("nan"), f"{name}_inf_lo": float("nan"),
                                 f"{name}_inf_hi": float("nan"),
                                 f"{name}_inf_note": f"not estimable: N = {self.n} <= d = {dim}, the sample "
                                                     "covariance is rank-deficient and the bootstrap's bias is not FID's"})
        self.columns.update(extrapolate(replicates, self.n, f"{name}_cf"))

    def alias(self, name: str, other: str) -> None:
        """The columns and replicates of `name` under the name `other` as well."""
        self.replicates[other] = self.replicates[name]
        for suffix in FRECHET_SUFFIXES:
            if name + suffix in self.columns:
                self.columns[other + suffix] = self.columns[name + suffix]

    @_timed
    def inception_score(self, point: float, logits: torch.Tensor) -> None:
        leave_out = inception_score_leave_out(logits, self.leave_out)
        self.record_at_n("is_mean", point, inception_score_replicates(logits, self.idx, self.seed), leave_out,
                         (1.0, np.inf))
        self.columns.update(extrapolate(inception_score_of_counts(logits), self.n, "is_cf"))

    @_timed
    def mean(self, name: str, point: float, per_row: torch.Tensor) -> None:
        self.record(name, point, mean_replicates(per_row, self.counts), UNIT)

    @_timed
    def manifold(self, points: dict, feats: torch.Tensor, ref_feats: torch.Tensor) -> dict[str, float]:
        """Intervals of precision and recall (their points from torch-fidelity), and density and coverage
        with their points, which are returned."""
        memberships = ManifoldMemberships.of(feats, ref_feats)
        full = torch.ones(1, self.n, dtype=torch.float64)
        density, coverage = float(memberships.density(full)[0]), float(memberships.coverage(full)[0])
        self.record("precision", points["precision"], memberships.precision(self.counts), UNIT)
        self.record_at_n("recall", points["recall"], memberships.recall(self.counts),
                         memberships.recall(self.leave_out), UNIT)
        self.record("density", density, memberships.density(self.counts), NONNEGATIVE)
        self.record_at_n("coverage", coverage, memberships.coverage(self.counts),
                         memberships.coverage(self.leave_out), UNIT)
        return {"density": density, "coverage": coverage}

    @_timed
    def kernel(self, point: float, feats: torch.Tensor, ref_feats: torch.Tensor) -> None:
        self.record("kid_mean", point, KernelReplicates(feats, ref_feats, point)(self.counts), (-np.inf, np.inf))
