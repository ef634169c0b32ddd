"""Spearman's trend test (bench/stats/rank.py) against the brute-force permutation distribution,
scipy's exhaustive permutation_test, and the closed form 1/n! at rho = 1."""
import itertools
import math

import numpy as np
import pytest
from scipy.stats import permutation_test, rankdata, spearmanr

from bench.stats.rank import EXACT_MAX_N, RANDOM_PAIRINGS, spearman_increasing


def brute_force_p(x, y) -> float:
    """The fraction of all n! pairings whose rho (Pearson's r of the ranks) reaches the observed one."""
    rx, ry = rankdata(x), rankdata(y)
    perms = np.array(list(itertools.permutations(ry)))
    rho = np.array([np.corrcoef(rx, perm)[0, 1] for perm in perms])
    return float(np.mean(rho >= np.corrcoef(rx, ry)[0, 1] - 1e-12))


@pytest.mark.parametrize("n", range(2, EXACT_MAX_N + 1))
def test_a_perfect_trend_has_p_one_over_n_factorial(n):
    t = spearman_increasing(np.arange(n) * 0.5, np.exp(np.arange(n)))
    assert t.rho == pytest.approx(1.0)
    assert t.pvalue == pytest.approx(1 / math.factorial(n), rel=1e-12)
    assert t.method == "exact permutation distribution"


def test_three_points_never_reach_five_percent():
    assert spearman_increasing([0, 1, 2], [1, 2, 3]).pvalue == pytest.approx(1 / 6)


@pytest.mark.parametrize("seed", range(6))
def test_the_exact_count_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 7
    x, y = rng.normal(size=n), rng.normal(size=n) + np.linspace(0, 2 * (seed % 3), n)
    assert spearman_increasing(x, y).pvalue == pytest.approx(brute_force_p(x, y), rel=1e-12)


def test_it_matches_scipys_exhaustive_permutation_test():
    rng = np.random.default_rng(7)
    x, y = np.arange(7.0), np.arange(7.0) + rng.normal(0, 2, 7)
    exhaustive = permutation_test((y,), lambda yy: spearmanr(x, yy).statistic, permutation_type="pairings",
                                  n_resamples=np.inf, alternative="greater")
    assert spearman_increasing(x, y).pvalue == pytest.approx(exhaustive.pvalue, rel=1e-9)


def test_a_decreasing_curve_is_not_significant():
    t = spearman_increasing(np.arange(6), -np.arange(6.0))
    assert t.rho == pytest.approx(-1.0) and t.pvalue == pytest.approx(1.0)


def test_ties_and_large_n_use_a_valid_randomised_p_value():
    tied = spearman_increasing([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert tied.method.startswith(str(RANDOM_PAIRINGS)) and tied.pvalue >= 1 / (RANDOM_PAIRINGS + 1)
    large = spearman_increasing(np.arange(EXACT_MAX_N + 1), np.arange(EXACT_MAX_N + 1))
    assert large.pvalue == pytest.approx(1 / (RANDOM_PAIRINGS + 1))


@pytest.mark.parametrize("bad", [([1, 2], [1, 2, 3]), ([1], [1]), ([0, 1, np.nan], [1, 2, 3])])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError, match="finite 1-d arrays"):
        spearman_increasing(*bad)
