"""Differences between two cells of a suite with their paired bootstrap interval.

Cells with the same N use the same bootstrap draws (bench/stats/bootstrap.py), and cells with the same
sample seed drew row i from the same noise, so the difference of their replicates, draw by draw,
estimates the sampling spread of the difference itself: FID(w) - FID(0), method A - method B at
matched strength, a fast path - fp32. The shared noise cancels, so a paired difference is resolved
far better than the two cells' own intervals suggest. Cells with different sample seeds still get
an interval (the draws are then independent), labelled unpaired.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.infra.store import read_replicates
from bench.stats.intervals import paired_interval


class CellReplicates:
    """The stored replicates of a table's cells, read once per cell."""

    def __init__(self, table: pd.DataFrame):
        self.by_run = {row.run_id: read_replicates(Path(row.run_dir)) for row in table.itertuples()
                       if isinstance(getattr(row, "run_dir", None), str)}

    def of(self, row: pd.Series, metric: str) -> np.ndarray | None:
        return self.by_run.get(row.run_id, {}).get(metric)

    def comparable(self, a: pd.Series, b: pd.Series, metric: str) -> bool:
        ra, rb = self.of(a, metric), self.of(b, metric)
        return (ra is not None and rb is not None and len(ra) == len(rb) and a.num_samples == b.num_samples
                and a.get("bootstrap_seed") == b.get("bootstrap_seed"))

    def difference(self, a: pd.Series, b: pd.Series, metric: str) -> dict | None:
        """a - b on `metric` with its 95% interval, or None where either cell lacks replicates."""
        if not self.comparable(a, b, metric):
            return None
        diff, lo, hi = paired_interval(a[metric], b[metric], self.of(a, metric), self.of(b, metric))
        return {"difference": diff, "lo": lo, "hi": hi, "paired": bool(a.seed == b.seed)}


def differences_from_unguided(table: pd.DataFrame, metric: str = "fid", replicates: CellReplicates | None = None) -> pd.DataFrame:
    """Every guided cell's `metric` minus that of its strength-0 partner (same method, p_uncond, model
    prediction, solver, grid, steps and sample seed), with the paired interval; empty where no cell has replicates."""
    replicates = replicates or CellReplicates(table)
    cells = table[table[metric].notna() & table.strength.notna()] if metric in table else table.iloc[:0]
    rows = []
    setup = [k for k in ("prediction", "sampler", "time_grid") if k in cells]  # columns of tables since solvers existed
    for (method, *_), g in cells.groupby(["method", "p_uncond", *setup, "steps", "seed"], dropna=False):
        unguided = g[g.strength == 0]
        if unguided.empty:
            continue
        base = unguided.iloc[0]
        for _, cell in g[g.strength > 0].iterrows():
            if (found := replicates.difference(cell, base, metric)) is not None:
                rows.append({"method": method, "p_uncond": cell.p_uncond, **{k: cell[k] for k in setup},
                             "steps": cell.steps, "seed": cell.seed,
                             "w": cell.strength, "metric": metric, **found})
    return pd.DataFrame(rows)


def differences_from_method(table: pd.DataFrame, reference: str, metric: str = "fid", higher_is_better: bool = False,
                            replicates: CellReplicates | None = None) -> pd.DataFrame:
    """Every other method against the `reference` method on the same p_uncond, model prediction, solver, grid,
    steps and sample seed:
    at each strength value both share (`at`: "strength 1"), and best against best (`at`: "best", each method's
    lowest `metric`, or highest where `higher_is_better`; both picks are made on these samples, which
    favours whichever curve is noisier).
    Each row is a - b with its paired interval; empty where no cell has replicates."""
    replicates = replicates or CellReplicates(table)
    cells = table[table[metric].notna() & table.strength.notna()] if metric in table else table.iloc[:0]
    label = "method_label" if "method_label" in cells else "method"
    rows = []
    setup = [k for k in ("prediction", "sampler", "time_grid") if k in cells]
    for _, g in cells.groupby(["p_uncond", *setup, "steps", "seed"], dropna=False):
        base = g[g.method == reference]
        if base.empty:
            continue
        by_strength = {s: row for s, row in base.set_index("strength", drop=False).iterrows()}
        pick = "idxmax" if higher_is_better else "idxmin"
        best_base = base.loc[getattr(base[metric], pick)()]
        for method, other in g[g.method != reference].groupby(label):
            pairs = [(f"strength {s:g}", row, by_strength[s]) for s, row in other.set_index("strength", drop=False).iterrows()
                     if s in by_strength]
            best = other.loc[getattr(other[metric], pick)()]
            pairs.append((f"best ({best.strength:g} vs {best_base.strength:g})", best, best_base))
            for at, a, b in pairs:
                if (found := replicates.difference(a, b, metric)) is not None:
                    rows.append({"method": method, "p_uncond": a.p_uncond, **{k: a[k] for k in setup}, "steps": a.steps,
                                 "seed": a.seed, "at": at, "metric": metric, **found})
    return pd.DataFrame(rows)
