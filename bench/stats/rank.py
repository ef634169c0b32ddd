"""Spearman's rank test of an increasing trend, with a p-value valid at the N it is given.

rho = 1 - 6 S / (n (n^2 - 1)),  S = sum_i (rank(x_i) - rank(y_i))^2  (Spearman 1904), and the
one-sided p-value of "y increases with x" is P(S <= S_obs) under the null that every pairing of
the ranks is equally likely: the exact permutation distribution.

Without ties it is counted exactly: the permutations with S <= S_obs, by a dynamic programme over
the set of ranks already placed, position by position, with S truncated at S_obs (each position
adds (i - r)^2 >= 0, so a partial sum above S_obs never comes back). The count is an integer; the
p-value is count / n!. The asymptotic p-value (the t approximation scipy.stats.spearmanr prints)
is 0 at rho = 1 for any n, which is wrong at small n: at n = 3 the exact p is 1/6.

With ties, or above EXACT_MAX_N points (the programme visits 2^n sets), the p-value comes from
scipy.stats.permutation_test on random pairings, (k + 1) / (B + 1), which is valid (never below
the exact p in expectation) at any n.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import permutation_test, rankdata

EXACT_MAX_N = 14
RANDOM_PAIRINGS = 99_999


@dataclass(frozen=True)
class RankTest:
    rho: float
    pvalue: float
    n: int
    method: str


def _exact_tail_count(ranks: np.ndarray, s_obs: int) -> int:
    """Number of permutations r of 0..n-1 with sum_i (i - r_i)^2 <= s_obs."""
    n = len(ranks)
    layer = {0: np.zeros(s_obs + 1, dtype=np.int64)}
    layer[0][0] = 1
    for i in range(n):
        nxt: dict[int, np.ndarray] = {}
        for mask, counts in layer.items():
            for r in range(n):
                if mask >> r & 1:
                    continue
                cost = (i - r) ** 2
                if cost > s_obs:
                    continue
                target = nxt.setdefault(mask | 1 << r, np.zeros(s_obs + 1, dtype=np.int64))
                target[cost:] += counts[:s_obs + 1 - cost]
        layer = nxt
    return int(sum(c.sum() for c in layer.values()))


def _rho(x_ranks: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    y_ranks = rankdata(y, axis=axis)
    xc, yc = x_ranks - x_ranks.mean(), y_ranks - y_ranks.mean(axis=axis, keepdims=True)
    return (xc * yc).sum(axis=axis) / np.sqrt((xc ** 2).sum() * (yc ** 2).sum(axis=axis))


def spearman_increasing(x, y) -> RankTest:
    """Spearman's rho of y with x and the one-sided p-value of an increasing trend (module doc)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"spearman_increasing needs two finite 1-d arrays of one length >= 2, got {x.shape} and {y.shape}")
    n = len(x)
    x_ranks = rankdata(x)
    rho = float(_rho(x_ranks, y))
    ties = len(np.unique(x)) < n or len(np.unique(y)) < n
    if not ties:
        order = np.argsort(x)
        ranks = (rankdata(y[order]) - 1).astype(np.int64)
        s_obs = int(((np.arange(n) - ranks) ** 2).sum())
        if n <= EXACT_MAX_N:
            p = _exact_tail_count(ranks, s_obs) / math.factorial(n)
            return RankTest(rho, min(p, 1.0), n, "exact permutation distribution")
    result = permutation_test((y,), lambda yy, axis=-1: _rho(x_ranks, yy, axis), permutation_type="pairings",
                              n_resamples=RANDOM_PAIRINGS, alternative="greater", vectorized=True,
                              rng=np.random.default_rng(0))
    exact = math.factorial(n) <= RANDOM_PAIRINGS
    return RankTest(rho, float(result.pvalue), n,
                    "exact permutation distribution" if exact else f"{RANDOM_PAIRINGS} random pairings, (k+1)/(B+1)")
