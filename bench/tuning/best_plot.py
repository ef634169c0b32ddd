"""The frontier's figure: each method's optimum minus tuned CFG's, one panel per distance, with the paired
95% interval (bench/tuning/best_against_best.py); a dashed line at 0, so a verdict reads as an interval off it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.plots import plt, save_figure


def plot_differences(verdicts: pd.DataFrame, compared: tuple[tuple[str, str], ...], path: Path) -> None:
    """`compared`: (column, name) of the distances, each a panel of `<column>_minus_cfg` with its interval."""
    columns = [f"{metric}_minus_cfg" for metric, _ in compared]
    rows = verdicts[verdicts[columns].notna().any(axis=1)].reset_index(drop=True)  # one row per method, every panel
    fig, axes = plt.subplots(1, len(compared), figsize=(4.2 * len(compared) + 1, 0.45 * len(rows) + 1.5), squeeze=False,
                             sharey=True)
    for ax, (metric, words) in zip(axes[0], compared):
        for y, r in rows.iterrows():
            diff, lo, hi = r[f"{metric}_minus_cfg"], r[f"{metric}_minus_cfg_lo"], r[f"{metric}_minus_cfg_hi"]
            if pd.isna(diff):
                continue
            color = "tab:green" if hi < 0 else "tab:red" if lo > 0 else "tab:gray"
            ax.errorbar(diff, y, xerr=[[diff - lo], [hi - diff]], fmt="o", color=color, capsize=3)
        ax.axvline(0, color="k", ls="--", lw=0.8)
        ax.set(xlabel=f"{words} − tuned CFG's (paired 95% CI)")
    axes[0][0].set_yticks(range(len(rows)), rows.method)
    fig.suptitle("each method at its tuned optimum against tuned CFG (lower is better)", fontsize=9)
    save_figure(fig, path)
