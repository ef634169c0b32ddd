"""Verdicts of a solver comparison (the `solvers` suite, or any table with several solvers): at matched NFE, which
solver wins, and does the better of the suite's strengths move with the solver and with NFE?

Cells are matched by their network budget per image without guidance (NFE / 2 for CFG at w > 0), rounded up to a
power of two, so Heun's 2T - 1 evaluations meet the others' T. Both tests are paired basic bootstrap intervals on
the same samples' seeds (bench/stats/paired.py): a solver wins where its FID minus the runner-up's has its 95%
interval below 0, else it is tied with it within the noise; guidance helps (hurts) where FID(w) - FID(0) lies
below (above) 0.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.stats.paired import CellReplicates


def _fmt(d: dict | None) -> str:
    return "no replicates" if d is None else f"{d['difference']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def matched_nfe(table: pd.DataFrame) -> pd.Series:
    """The unguided network budget per image, rounded up to a power of two."""
    budget = table.nfe_per_image / np.where(table.strength.fillna(0) > 0, 2.0, 1.0)
    return budget.map(lambda b: 2 ** math.ceil(math.log2(max(b, 1.0) - 1e-9)))


def solver_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The CFG cells of a table with several solvers, with their matched NFE."""
    cells = table[(table.method == "cfg") & table.fid.notna()]
    cells = cells.iloc[:0] if cells.sampler.nunique() < 2 else cells
    return cells.assign(nfe=matched_nfe(cells) if len(cells) else [])


def solver_wins(table: pd.DataFrame, metric: str = "fid", replicates: CellReplicates | None = None) -> pd.DataFrame:
    """Per model prediction, strength and matched NFE: each solver's value, the winner and its paired margin."""
    cells = solver_rows(table)
    reps = replicates or CellReplicates(cells)
    rows = []
    for (prediction, w, nfe), g in cells.groupby(["prediction", "strength", "nfe"]):
        if g.sampler.nunique() < 2:
            continue
        g = g.sort_values(metric)
        best, second = g.iloc[0], g.iloc[1]
        margin = reps.difference(best, second, metric)
        verdict = ("no replicates" if margin is None else f"{best.sampler} wins" if margin["hi"] < 0
                   else f"{best.sampler} tied with {second.sampler} within the noise")
        rows.append({"model": prediction, "w": w, "NFE": int(nfe),
                     **{s: f"{v:.3f}" for s, v in zip(g.sampler, g[metric])},
                     "best minus runner-up": _fmt(margin), "verdict": verdict})
    return pd.DataFrame(rows)


def guidance_by_solver(table: pd.DataFrame, metric: str = "fid", replicates: CellReplicates | None = None) -> pd.DataFrame:
    """Per model, solver and matched NFE: FID(w) - FID(0) for each guided strength, and which is better."""
    cells = solver_rows(table)
    reps = replicates or CellReplicates(cells)
    rows = []
    for (prediction, sampler, nfe), g in cells.groupby(["prediction", "sampler", "nfe"]):
        unguided = g[g.strength == 0]
        for _, cell in g[g.strength > 0].iterrows():
            if unguided.empty:
                continue
            d = reps.difference(cell, unguided.iloc[0], metric)
            better = ("no replicates" if d is None else f"w={cell.strength:g}" if d["hi"] < 0
                      else "w=0" if d["lo"] > 0 else "within the noise")
            rows.append({"model": prediction, "sampler": sampler, "NFE": int(nfe), "w": cell.strength,
                         "FID(w) - FID(0)": _fmt(d), "better": better})
    return pd.DataFrame(rows)


def solver_answers(wins: pd.DataFrame, guidance: pd.DataFrame) -> list[str]:
    """The two questions answered in a sentence each, from the tables above."""
    lines = []
    for model, g in wins.groupby("model"):
        clear = g[g.verdict.str.endswith(" wins")]
        lines.append(f"- **{model} model, which solver wins at matched NFE:** "
                     + ("; ".join(f"NFE {r.NFE}, w={r.w:g}: {r.verdict}" for r in g.itertuples())) + ". "
                     + (f"{len(clear)} of {len(g)} comparisons have a winner outside the noise." if len(g) else ""))
    for model, g in guidance.groupby("model"):
        outcomes = g.better.value_counts().to_dict()
        moves = len({b for b in g.better if b != "within the noise" and b != "no replicates"}) > 1
        lines.append(f"- **{model} model, does the better strength move with solver and NFE:** "
                     + ("yes" if moves else "no clear move") + " (" + ", ".join(f"{k}: {v}" for k, v in outcomes.items())
                     + " of the solver × NFE cells).")
    return lines
