"""The FID intervals cover their own targets on Gaussians (bench/stats/coverage.py): the jackknife
interval printed beside FID at N covers E[FID_N | reference], in the full-rank and the Gram
(rank-deficient) regimes, and the basic bootstrap interval of FID∞ covers the distance itself, each
within two binomial standard deviations of 95%."""
import numpy as np
import pytest

from bench.stats.coverage import Regime, simulate

REPS = 400


@pytest.mark.parametrize("regime", [Regime("full rank", 8, 300, 3000), Regime("rank-deficient", 100, 70, 2000)],
                         ids=lambda r: r.name)
def test_jackknife_interval_covers_fid_at_n(regime):
    """70 rows in 20 groups of 3, 10 left over. Groups of unequal size (the leftover rows left out too)
    covered 400 of 400 runs at N = 48, d = 60 and at N = 128, d = 256 before they were made equal."""
    out = simulate(regime, REPS, truth_draws=1000, bootstrap=2, seed=3)
    assert abs(out["coverage_at_n"] - 0.95) <= 2 * out["binomial_sd"], out


def test_bootstrap_interval_covers_the_distance_where_full_rank():
    out = simulate(Regime("full rank", 8, 300, 3000), REPS, truth_draws=10, bootstrap=200, seed=4)
    assert abs(out["coverage_at_inf"] - 0.95) <= 2 * out["binomial_sd_inf"], out


def test_the_old_interval_misses_fid_at_n_in_the_gram_regime():
    """The check can fail: the basic bootstrap interval, read as an interval for FID at N, excludes its
    own point estimate when N < d (the bias of a resample is not the estimator's)."""
    from bench.stats.bootstrap import FrechetReplicates, draw_indices, row_counts
    from bench.stats.intervals import interval
    import torch
    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(48, 60, generator=g, dtype=torch.float64), torch.randn(3000, 60, generator=g, dtype=torch.float64)
    replicates = FrechetReplicates(x, ref)
    point = float(replicates(torch.ones(1, 48, dtype=torch.float64))[0])
    lo, hi = interval(point, replicates(row_counts(draw_indices(48, 100), 48)))
    assert not lo <= point <= hi and np.isfinite(point)


def test_a_small_sample_gets_the_delete_one_jackknife():
    from bench.stats.jackknife import leave_out_counts
    counts = leave_out_counts(6)
    assert counts.shape == (6, 6) and (counts.sum(1) == 5).all()
    assert leave_out_counts(1000).shape == (20, 1000) and (leave_out_counts(1010).sum(1) == 1010 - 50).all()
