"""Delete-a-group jackknife intervals for a metric at its own N (Quenouille 1956; Tukey 1958; Efron &
Stein 1981): the N rows are split into G groups of a fixed random order, the metric is recomputed
with each group left out (t_(g), g = 1..G), and

  se^2 = (G - 1) / G * sum_g (t_(g) - mean_g t_(g))^2,   interval  t -+ t_{G-1}(0.975) * se

is an interval for E[t_N], the metric at this N: it is centred on the value printed beside it. It
is used for every metric that is biased in N (FID, IS, recall, coverage), where a bootstrap that
resamples N rows from N with replacement changes the number of distinct rows and so the quantity
(tests/stats/test_coverage.py and `python -m bench.stats.coverage` measure the coverage on Gaussians).
The groups are a fixed function of N, so rows leave in the same groups in every cell of a suite. All
groups have the same size floor(N / G): the N mod G rows left over stay in every leave-out set, because
in the Gram regime (N < d) FID moves strongly with the number of rows, and leave-out sets of unequal
sizes would add that drift to the spread.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats

GROUPS = 20
SEED = 20261202


def groups_for(n: int) -> int:
    """GROUPS groups where every group has at least two rows, else one row per group (the delete-one
    jackknife of a very small sample)."""
    if n < 2:
        raise ValueError(f"a jackknife needs at least 2 rows, got {n}")
    return GROUPS if n >= 2 * GROUPS else n


def group_of_rows(n: int, groups: int | None = None, seed: int = SEED) -> torch.Tensor:
    """(n,) the group of each row: a fixed random order cut into `groups` parts of floor(n / groups) rows,
    the rest -1 (never left out). Random, because rows are often ordered by label and contiguous or
    modular groups would leave whole classes out."""
    groups = groups or groups_for(n)
    if n < groups:
        raise ValueError(f"a {groups}-group jackknife needs at least {groups} rows, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + n))
    size = n // groups
    group = torch.full((n,), -1, dtype=torch.long)
    group[order[:size * groups]] = torch.arange(size * groups) // size
    return group


def leave_out_counts(n: int, groups: int | None = None, seed: int = SEED) -> torch.Tensor:
    """(groups, n) float64 0/1 memberships: row g keeps every row but those of group g."""
    groups = groups or groups_for(n)
    group = group_of_rows(n, groups, seed)
    return (group[None, :] != torch.arange(groups)[:, None]).double()


def jackknife_se(leave_out: np.ndarray) -> float:
    """The delete-a-group jackknife standard error from the G leave-one-group-out values."""
    values = np.asarray(leave_out, dtype=np.float64)
    g = len(values)
    return float(np.sqrt((g - 1) / g * ((values - values.mean()) ** 2).sum()))


def jackknife_interval(point: float, leave_out: np.ndarray, level: float = 0.95,
                       bounds: tuple[float, float] = (-np.inf, np.inf), extra_variance: float = 0.0
                       ) -> tuple[float, float, float]:
    """(lo, hi, se) of `point` from its leave-one-group-out values, with Student's t on G - 1 degrees
    of freedom; `extra_variance` adds an independent source (e.g. the reference set's own jackknife).
    Clipped to the metric's range, which `point` lies in, so the interval always contains it."""
    values = np.asarray(leave_out, dtype=np.float64)
    if len(values) < 2 or not np.isfinite(values).all():
        return float("nan"), float("nan"), float("nan")
    se = float(np.sqrt(jackknife_se(values) ** 2 + extra_variance))
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * se
    return float(np.clip(point - half, *bounds)), float(np.clip(point + half, *bounds)), se
