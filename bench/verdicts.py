"""Generated verdicts on the CFG paper's claims, from a suite's table (never hand-written).

Claims (Ho & Salimans, sec. 4): FID is U-shaped in w with its minimum at small w; IS rises
monotonically with w; p_uncond = 0.5 is worse than 0.1 / 0.2 on the FID-IS frontier; more
sampling steps help with diminishing returns. Each verdict is judged against the seed spread
measured by the suite's repeated cells (same cell, other sample seeds).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr


def _main(table: pd.DataFrame) -> pd.DataFrame:
    steps, seed = int(table.steps.mode().iloc[0]), int(table.seed.min())
    return table[(table.method == "cfg") & (table.steps == steps) & (table.seed == seed)]


def seed_spread(table: pd.DataFrame) -> float | None:
    """Largest standard deviation of FID across sample-seed sets of the same cell, or None."""
    cfg = table[table.method == "cfg"]
    groups = cfg.groupby(["p_uncond", "w", "steps"]).fid
    spreads = groups.std()[groups.count() > 1]
    return float(spreads.max()) if len(spreads) else None


def paired_gain(table: pd.DataFrame) -> dict | None:
    """FID(w) - FID(w=0) for each sample-seed set where both were run at the same p_uncond and
    steps: a paired difference, far less noisy than either FID because the cells share seeds."""
    cfg = table[table.method == "cfg"]
    for (p, steps), g in cfg.groupby(["p_uncond", "steps"]):
        per_seed = g.pivot_table(index="seed", columns="w", values="fid")
        guided = [w for w in per_seed.columns if w > 0 and per_seed[w].notna().sum() > 1]
        if 0.0 in per_seed.columns and guided:
            w = guided[0]
            diffs = (per_seed[w] - per_seed[0.0]).dropna()
            if len(diffs) > 1:
                return {"p": p, "w": w, "steps": steps, "diffs": diffs.tolist(),
                        "mean": float(diffs.mean()), "sd": float(diffs.std())}
    return None


def _frontier_fid(group: pd.DataFrame, is_grid: np.ndarray) -> np.ndarray:
    """FID interpolated at given IS values along the lower envelope of a curve."""
    g = group.sort_values("is_mean")
    return np.interp(is_grid, g.is_mean.values, np.minimum.accumulate(g.fid.values[::-1])[::-1])


def paper_claims(table: pd.DataFrame, metric: str = "fid") -> list[dict]:
    """The claims judged on the FID column `metric` (rows without it are left out)."""
    table = table[table[metric].notna()] if metric in table else table.iloc[:0]
    if table.empty:
        return [{"claim": "paper claims", "verdict": "not tested", "evidence": f"no cell has {metric}"}]
    table = table.assign(fid=table[metric])  # the helpers below read `fid`
    cfg = _main(table)
    spread = seed_spread(table)
    noise = f"seed spread (sd of FID over sample-seed sets) {spread:.3f}" if spread is not None else "no seed spread measured"
    claims = []
    if cfg.w.nunique() < 3:
        return [{"claim": "paper claims", "verdict": "not tested", "evidence": "this suite has fewer than 3 w values"}]

    per_p = []
    small_minimum, dips_clear = True, True
    paired = paired_gain(table)
    dip_noise = 2 * paired["sd"] if paired else (spread or 0.0)
    for p, g in cfg.groupby("p_uncond"):
        g = g.sort_values("w")
        best = g.loc[g.fid.idxmin()]
        rise = g.fid.iloc[-1] - best.fid
        dip = g.fid.iloc[0] - best.fid
        small_minimum &= bool(0 < best.w <= 1.0 and rise > (spread or 0))
        dips_clear &= bool(dip > dip_noise)
        per_p.append(f"p={p:g}: min FID {best.fid:.3f} at w={best.w:g} (w=0: {g.fid.iloc[0]:.3f}, w={g.w.max():g}: {g.fid.iloc[-1]:.3f})")
    if paired:
        per_p.append(f"paired FID(w={paired['w']:g}) - FID(w=0) at p={paired['p']:g} over {len(paired['diffs'])} "
                     f"sample-seed sets: " + ", ".join(f"{d:+.3f}" for d in paired["diffs"]))
    verdict = ("reproduced" if small_minimum and dips_clear else
               "partly reproduced (minimum at small w, but some dips below w = 0 are within the noise)" if small_minimum
               else "not reproduced")
    claims.append({"claim": "FID is U-shaped in w with its minimum at small w", "verdict": verdict,
                   "evidence": "; ".join(per_p) + f"; {noise}; a dip counts when larger than {dip_noise:.3f}."})

    if cfg.is_mean.isna().any():
        return claims + [{"claim": "IS increases with w; p_uncond on the FID–IS frontier", "verdict": "not tested",
                          "evidence": "no Inception Score: the feature network has no classifier and the dataset no evaluator."}]
    rhos = {p: spearmanr(g.w, g.is_mean).statistic for p, g in cfg.groupby("p_uncond")}
    monotone = all(r > 0.9 for r in rhos.values())
    claims.append({"claim": "IS increases with w",
                   "verdict": "reproduced" if monotone else "not reproduced",
                   "evidence": "Spearman rank correlation of IS with w: " +
                               ", ".join(f"p={p:g}: {r:.2f}" for p, r in rhos.items()) + "."})

    if {0.1, 0.2, 0.5} <= set(cfg.p_uncond):
        curves = {p: g for p, g in cfg.groupby("p_uncond")}
        lo = max(g.is_mean.min() for g in curves.values())
        hi = min(g.is_mean.max() for g in curves.values())
        if hi > lo:
            grid = np.linspace(lo, hi, 25)
            mean_fid = {p: float(_frontier_fid(g, grid).mean()) for p, g in curves.items()}
            margins = {p: mean_fid[0.5] - mean_fid[p] for p in (0.1, 0.2)}
            clear = [p for p, m in margins.items() if m > (spread or 0.0)]
            verdict = ("reproduced" if len(clear) == 2 else
                       f"partly reproduced (worse than p={clear[0]:g} by more than the seed spread, not than the other)"
                       if clear else "not reproduced" if min(margins.values()) <= 0 else
                       "not resolved (p=0.5 is worse, but by less than the seed spread)")
            claims.append({"claim": "p_uncond = 0.5 is worse than 0.1 / 0.2 on the FID–IS frontier",
                           "verdict": verdict,
                           "evidence": f"mean frontier FID over the shared IS range [{lo:.2f}, {hi:.2f}]: " +
                                       ", ".join(f"p={p:g}: {v:.3f}" for p, v in mean_fid.items()) + f"; {noise}."})
        else:
            claims.append({"claim": "p_uncond = 0.5 is worse on the frontier", "verdict": "not tested",
                           "evidence": "the IS ranges of the p_uncond curves do not overlap."})

    seed = int(table.seed.min())
    steps = table[(table.method == "cfg") & (table.seed == seed)]
    counts = steps.groupby(["p_uncond", "w"]).steps.nunique()
    if counts.max() >= 3:
        p, w = counts.idxmax()
        g = steps[(steps.p_uncond == p) & (steps.w == w)].sort_values("steps")
        gains = -np.diff(g.fid.values)
        helps = bool(g.fid.values[-1] < g.fid.values[0])
        diminishing = bool(len(gains) >= 2 and gains[-1] < gains[0])
        claims.append({"claim": "more sampling steps help, with diminishing returns",
                       "verdict": "reproduced" if helps and diminishing else "partly reproduced" if helps else "not reproduced",
                       "evidence": f"w={w:g}, p={p:g}: " + ", ".join(f"T={int(t)}: {f:.3f}" for t, f in zip(g.steps, g.fid)) + "."})
    return claims
