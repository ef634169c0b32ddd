"""Planning with power: what N a cell needs to resolve a chosen difference, from a stored suite.

The paired 95% interval of FID(w) - FID(0) (bench/stats/paired.py) has a half-width h at the stored N;
intervals of a mean-like statistic narrow as 1/sqrt(N), so at N' the half-width is h sqrt(N / N').
A true difference D is declared (its interval excludes 0) with probability 1 - beta when
D >= (z_{0.975} + z_{1-beta}) / z_{0.975} * h, so

    N_needed = N * ((z_{0.975} + z_{power}) / z_{0.975} * h / D)^2.

The median h over the stored suite's paired differences stands for a typical cell.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import norm

from bench.infra.store import ResultsError, load_runs
from bench.stats.paired import differences_from_unguided

POWER = 0.8


def power_plan(suite_dir: Path, planned_n: int, delta: float, metric: str = "fid", power: float = POWER) -> dict | None:
    """N needed to resolve `delta` with `power`, and the difference the planned N resolves; None
    when the folder holds no paired intervals to learn from."""
    try:
        table = load_runs(suite_dir)
    except ResultsError:
        return None
    diffs = differences_from_unguided(table, metric)
    if diffs.empty:
        return None
    stored_n = int(table.num_samples.median())
    half = float(np.median((diffs.hi - diffs.lo) / 2))
    z = norm.ppf(0.975)
    factor = (z + norm.ppf(power)) / z
    return {"metric": metric, "stored_n": stored_n, "pairs": len(diffs), "half_width": half, "delta": delta,
            "power": power, "needed_n": int(np.ceil(stored_n * (factor * half / delta) ** 2)),
            "planned_n": planned_n, "resolved_at_planned_n": factor * half * np.sqrt(stored_n / planned_n)}


def describe(plan: dict, suite_dir: Path) -> str:
    return (f"power: from {plan['pairs']} paired {plan['metric']}(w) - {plan['metric']}(0) intervals in {suite_dir} "
            f"(median half-width {plan['half_width']:.3f} at N = {plan['stored_n']}), resolving a difference of "
            f"{plan['delta']:g} with {plan['power']:.0%} power at 95% needs N >= {plan['needed_n']:,} per cell; "
            f"the planned N = {plan['planned_n']:,} resolves {plan['resolved_at_planned_n']:.3f}")
