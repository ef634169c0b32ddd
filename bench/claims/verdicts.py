"""Generated verdicts on the CFG paper's claims, from a suite's table (never hand-written), each a
test stated with its confidence.

Claims (Ho & Salimans, sec. 4), and the test behind each verdict:
  FID is U-shaped in w, minimum at small w: at each p_uncond, the paired 95% interval of
      FID(w*) - FID(0) lies below 0 (the dip) and that of FID(w_max) - FID(w*) above 0 (the rise);
      w* is the argmin on the same samples, which favours finding a dip: the verdict says so.
  IS rises with w: Spearman's rank test per p_uncond curve, one-sided at 5%, its p-value from the
      exact permutation distribution at the curve's n (bench/stats/rank.py), never the asymptotic one.
  p_uncond = 0.5 is worse on the FID-IS frontier: the mean frontier FID over the shared IS range,
      recomputed on every bootstrap draw; the margin counts when its 95% interval lies above 0.
  More steps help, with diminishing returns: the paired interval of FID(T_max) - FID(T_min) below 0,
      and the last step doubling gaining less than the first.
Cells without bootstrap replicates (scored before intervals existed) are not tested.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.claims.sweeps import main_sweep, paper_rows
from bench.stats.envelope import envelope_at
from bench.stats.intervals import LEVEL, interval
from bench.stats.paired import CellReplicates
from bench.stats.rank import spearman_increasing

TEST = f"paired basic bootstrap, {LEVEL:.0%}"


def _fmt(d: dict) -> str:
    return f"{d['difference']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def _frontier_fid(fid: np.ndarray, is_mean: np.ndarray, is_grid: np.ndarray) -> float:
    """Mean FID over `is_grid` along the lower envelope of a curve."""
    return float(envelope_at(is_mean, fid, is_grid).mean())


def u_shape(cfg: pd.DataFrame, reps: CellReplicates, metric: str) -> dict:
    per_p, shape_ok, dips_clear, untested = [], True, True, False
    for p, g in cfg.groupby("p_uncond"):
        g = g.sort_values("w")
        best, first, last = g.loc[g[metric].idxmin()], g.iloc[0], g.iloc[-1]
        dip, rise = reps.difference(best, first, metric), reps.difference(last, best, metric)
        if first.w != 0 or best.w == 0 or dip is None or rise is None:
            untested |= dip is None or rise is None
            shape_ok &= bool(0 < best.w <= 1.0)
            per_p.append(f"p={p:g}: min FID {best[metric]:.3f} at w={best.w:g}")
            continue
        shape_ok &= bool(best.w <= 1.0 and rise["lo"] > 0)
        dips_clear &= bool(dip["hi"] < 0)
        per_p.append(f"p={p:g}: min FID {best[metric]:.3f} at w={best.w:g}; FID(w*) - FID(0) = {_fmt(dip)}; "
                     f"FID(w={last.w:g}) - FID(w*) = {_fmt(rise)}")
    claim = "FID is U-shaped in w with its minimum at small w"
    if untested:
        return {"claim": claim, "verdict": "not tested", "test": TEST,
                "evidence": "cells lack bootstrap replicates (add them: python -m bench.run --suite <suite> --rescore); " +
                            "; ".join(per_p)}
    verdict = ("reproduced" if shape_ok and dips_clear else
               "partly reproduced (minimum at small w and a clear rise, but a dip below w = 0 inside the noise)"
               if shape_ok else "not reproduced")
    return {"claim": claim, "verdict": verdict, "test": TEST + " on FID(w*) - FID(0) < 0 and FID(w_max) - FID(w*) > 0",
            "evidence": "; ".join(per_p) + ". w* is chosen on the same samples, which favours the dip."}


def is_trend(cfg: pd.DataFrame) -> dict:
    tests = {p: spearman_increasing(g.w.values, g.is_mean.values) for p, g in cfg.groupby("p_uncond")}
    rising = all(t.rho > 0 and t.pvalue < 0.05 for t in tests.values())
    methods = sorted({t.method for t in tests.values()})
    return {"claim": "IS increases with w", "verdict": "reproduced" if rising else "not reproduced",
            "test": f"Spearman rank correlation of IS with w, one-sided, 5% per curve; p-value: {' / '.join(methods)}",
            "evidence": ", ".join(f"p={p:g}: rho {t.rho:.2f} over {t.n} w values (p-value {t.pvalue:.2g})"
                                  for p, t in tests.items()) + "."}


def frontier(cfg: pd.DataFrame, reps: CellReplicates, metric: str) -> dict:
    claim = "p_uncond = 0.5 is worse than 0.1 / 0.2 on the FID–IS frontier"
    curves = {p: g.sort_values("w") for p, g in cfg.groupby("p_uncond")}
    lo, hi = max(g.is_mean.min() for g in curves.values()), min(g.is_mean.max() for g in curves.values())
    if hi <= lo:
        return {"claim": claim, "verdict": "not tested", "test": "", "evidence": "the IS ranges of the curves do not overlap."}
    grid = np.linspace(lo, hi, 25)
    draws = {p: [(reps.of(row, metric), reps.of(row, "is_mean")) for _, row in g.iterrows()] for p, g in curves.items()}
    if any(f is None or i is None for cells in draws.values() for f, i in cells):
        return {"claim": claim, "verdict": "not tested", "test": "", "evidence": "cells lack bootstrap replicates."}
    point = {p: _frontier_fid(g[metric].values, g.is_mean.values, grid) for p, g in curves.items()}
    per_draw = {p: np.array([_frontier_fid(np.array([f[b] for f, _ in cells]), np.array([i[b] for _, i in cells]), grid)
                             for b in range(len(cells[0][0]))]) for p, cells in draws.items()}
    margins = {}
    for p in (0.1, 0.2):
        diff = point[0.5] - point[p]
        margins[p] = (diff, *interval(diff, per_draw[0.5] - per_draw[p]))
    clear = [p for p, (_, m_lo, _) in margins.items() if m_lo > 0]
    verdict = ("reproduced" if len(clear) == 2 else
               f"partly reproduced (clearly worse than p={clear[0]:g} only)" if clear else
               "not reproduced" if all(m_hi < 0 for _, _, m_hi in margins.values()) else
               "not resolved (the margins' intervals include 0)")
    return {"claim": claim, "verdict": verdict,
            "test": f"{TEST} of the mean frontier FID margin over IS in [{lo:.2f}, {hi:.2f}], recomputed per draw",
            "evidence": "mean frontier FID: " + ", ".join(f"p={p:g}: {v:.3f}" for p, v in point.items()) + "; " +
                        ", ".join(f"FID(p=0.5) - FID(p={p:g}) = {d:+.3f} [{a:+.3f}, {b:+.3f}]"
                                  for p, (d, a, b) in margins.items()) + "."}


def more_steps(table: pd.DataFrame, reps: CellReplicates, metric: str) -> dict | None:
    seed = int(table.seed.min())
    runs = paper_rows(table)
    runs = runs[runs.seed == seed]
    counts = runs.groupby(["p_uncond", "w"]).steps.nunique()
    if counts.max() < 3:
        return None
    p, w = counts.idxmax()
    g = runs[(runs.p_uncond == p) & (runs.w == w)].sort_values("steps")
    gains = -np.diff(g[metric].values)
    total = reps.difference(g.iloc[-1], g.iloc[0], metric)
    claim = "more sampling steps help, with diminishing returns"
    curve = ", ".join(f"T={int(t)}: {f:.3f}" for t, f in zip(g.steps, g[metric]))
    if total is None:
        return {"claim": claim, "verdict": "not tested", "test": TEST, "evidence": f"w={w:g}, p={p:g}: {curve}; no replicates."}
    helps, diminishing = total["hi"] < 0, bool(len(gains) >= 2 and gains[-1] < gains[0])
    return {"claim": claim,
            "verdict": "reproduced" if helps and diminishing else "partly reproduced" if helps else "not reproduced",
            "test": f"{TEST} on FID(T_max) - FID(T_min) < 0; the last gain below the first",
            "evidence": f"w={w:g}, p={p:g}: {curve}; FID(T={int(g.steps.iloc[-1])}) - FID(T={int(g.steps.iloc[0])}) = "
                        f"{_fmt(total)}."}


def paper_claims(table: pd.DataFrame, metric: str = "fid") -> list[dict]:
    """The claims judged on the FID column `metric` (rows without it are left out)."""
    table = table[table[metric].notna()] if metric in table else table.iloc[:0]
    if table.empty:
        return [{"claim": "paper claims", "verdict": "not tested", "test": "", "evidence": f"no cell has {metric}"}]
    cfg = paper_rows(main_sweep(table)[0])
    if cfg.w.nunique() < 3:
        return [{"claim": "paper claims", "verdict": "not tested", "test": "", "evidence": "this suite has fewer than 3 w values"}]
    reps = CellReplicates(table)
    claims = [u_shape(cfg, reps, metric)]
    if cfg.is_mean.isna().any():
        claims.append({"claim": "IS increases with w; p_uncond on the FID–IS frontier", "verdict": "not tested", "test": "",
                       "evidence": "no Inception Score: the feature network has no classifier and the dataset no evaluator."})
    else:
        claims.append(is_trend(cfg))
        if {0.1, 0.2, 0.5} <= set(cfg.p_uncond):
            claims.append(frontier(cfg, reps, metric))
    if (steps := more_steps(table, reps, metric)) is not None:
        claims.append(steps)
    return claims
