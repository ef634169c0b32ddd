"""Two suites' best cells side by side (a flow model beside the diffusion model of the same data, N and reference):
at each p_uncond both swept, each suite's best CFG cell of the main sweep by a FID column, and their difference
with its paired 95% bootstrap interval. The cells share sample seeds and bootstrap draws, so the difference is
bootstrapped draw by draw (bench/stats/paired.py) as within one suite."""
from __future__ import annotations

import pandas as pd

from bench.claims.sweeps import main_sweep, paper_rows
from bench.stats.paired import CellReplicates


def best_beside(table: pd.DataFrame, other: pd.DataFrame, metrics: tuple[str, ...] = ("fid", "fid_inception"),
                replicates: CellReplicates | None = None) -> pd.DataFrame:
    """Per p_uncond and FID column: this suite's best cell, the other's, and this minus the other."""
    ours, theirs = paper_rows(main_sweep(table)[0]), paper_rows(main_sweep(other)[0])
    reps = replicates or CellReplicates(pd.concat([ours, theirs]))
    rows = []
    for metric in metrics:
        if metric not in ours or metric not in theirs:
            continue
        a_all, b_all = ours[ours[metric].notna()], theirs[theirs[metric].notna()]
        for p in sorted(set(a_all.p_uncond) & set(b_all.p_uncond)):
            a_p, b_p = a_all[a_all.p_uncond == p], b_all[b_all.p_uncond == p]
            a, b = a_p.loc[a_p[metric].idxmin()], b_p.loc[b_p[metric].idxmin()]
            d = reps.difference(a, b, metric)
            rows.append({"metric": metric, "p_uncond": p, "this suite's best": f"{a.cell} ({a[metric]:.3f})",
                         "the other's best": f"{b.cell} ({b[metric]:.3f})",
                         "this minus the other": "no replicates" if d is None else
                         f"{d['difference']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]",
                         "verdict": "no replicates" if d is None else "lower" if d["hi"] < 0 else "higher" if d["lo"] > 0
                         else "equal within the noise"})
    return pd.DataFrame(rows)
