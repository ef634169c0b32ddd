"""The suite's figures (seaborn, PNG), each a function of the table alone: quality against strength,
the FID-IS frontier, paired differences from unguided sampling, throughput, sample grids across w,
FID against steps, the paper's curves beside ours, and the classifier's accuracy by noise level."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.claims.sweeps import main_sweep, paper_rows  # noqa: E402
from bench.infra.store import atomic_write_bytes  # noqa: E402
from bench.report.table import throughput_table  # noqa: E402
from bench.stats.paired import differences_from_unguided  # noqa: E402

PAPER_TABLES = Path(__file__).resolve().parents[2] / "baselines" / "paper_tables.csv"

def save_figure(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())

def plot_classifier_accuracy(table: pd.DataFrame, path: Path) -> None:
    """Guidance-classifier held-out accuracy against the noise level (centre of each lambda bucket)."""
    data = table.assign(lam=(table.lambda_low.clip(-20, 20) + table.lambda_high.clip(-20, 20)) / 2)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.lineplot(data=data, x="lam", y="accuracy", hue="noise_aware", marker="o", ax=ax)
    ax.axhline(0.1, ls=":", c="grey", label="chance (10 classes)")
    ax.set(xlabel="log-SNR λ (bucket centre)", ylabel="held-out accuracy", ylim=(0, 1.02),
           title="guidance classifier accuracy by noise level")
    save_figure(fig, path)

def _has_interval(data: pd.DataFrame, metric: str) -> bool:
    return f"{metric}_lo" in data and data[f"{metric}_lo"].notna().all()

def _line_with_band(ax: plt.Axes, data: pd.DataFrame, x: str, metric: str, **style) -> None:
    """`metric` against `x`, with its 95% interval at N as a band where the cells have one."""
    data = data.sort_values(x)
    line, = ax.plot(data[x], data[metric], **style)
    if _has_interval(data, metric):
        ax.fill_between(data[x], data[f"{metric}_lo"], data[f"{metric}_hi"], color=line.get_color(), alpha=0.15, lw=0)

def _error_bars(data: pd.DataFrame, metric: str) -> np.ndarray | None:
    if not _has_interval(data, metric):
        return None
    return np.clip(np.vstack([data[metric] - data[f"{metric}_lo"], data[f"{metric}_hi"] - data[metric]]), 0, None)

def _curves(main: pd.DataFrame):
    """One curve per (method label, p_uncond), sorted by strength, labelled for a legend."""
    several = main.p_uncond.nunique() > 1
    for (label, p), group in main.groupby(["method_label", "p_uncond"], sort=True):
        yield (f"{label}, p_uncond={p:g}" if several else label), group.sort_values("strength")

def fig_quality_vs_strength(table: pd.DataFrame, path: Path) -> None:
    """Left: the paper's CFG sweep against w, one line per p_uncond. Right: every other method
    against its own strength parameter."""
    main, steps, _ = main_sweep(table)
    cfg = paper_rows(main)
    others = main.drop(cfg.index)
    others = others[others.strength.notna()]
    palette = dict(zip(sorted(cfg.p_uncond.unique()), sns.color_palette("viridis", cfg.p_uncond.nunique())))
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for row, metric, name in ((0, "fid", "FID (lower is better)"), (1, "is_mean", "IS")):
        for p, group in cfg.groupby("p_uncond"):
            _line_with_band(axes[row, 0], group, "w", metric, marker="o", color=palette[p], label=f"p_uncond={p:g}")
        axes[row, 0].set(xlabel="CFG guidance weight w (s = 1 + w)", ylabel=name)
        if len(cfg):
            axes[row, 0].legend(fontsize=7)
        for label, group in _curves(others):
            _line_with_band(axes[row, 1], group, "strength", metric, marker="s",
                            label=f"{label} ({group.strength_param.iloc[0]})")
        axes[row, 1].set(xlabel="the method's strength (its parameter in the legend)", ylabel=name)
        if len(others):
            axes[row, 1].legend(fontsize=6)
    fig.suptitle(f"sample quality vs guidance strength (T = {steps}); bands: 95% intervals at N")
    save_figure(fig, path)

def fig_frontier(table: pd.DataFrame, path: Path) -> None:
    main, steps, _ = main_sweep(table)
    fig, ax = plt.subplots(figsize=(7, 5))
    markers = "osD^v<>ph*X"
    for k, (label, group) in enumerate(_curves(main[main.strength.notna()])):
        ax.errorbar(group.is_mean, group.fid, xerr=_error_bars(group, "is_mean"), yerr=_error_bars(group, "fid"),
                    label=label, capsize=2, elinewidth=0.8, marker=markers[k % len(markers)], ls="-" if k < 10 else "--")
        for _, r in group.iloc[[0, -1]].iterrows():
            ax.annotate(f"{r.strength_param}={r.strength:g}", (r.is_mean, r.fid), fontsize=6, alpha=0.7)
    ax.set(xlabel="IS (evaluator logits)", ylabel="FID (evaluator features)",
           title=f"FID–IS frontier (T = {steps}); bars: 95% intervals at N")
    ax.legend(fontsize=6)
    save_figure(fig, path)

def fig_paired_differences(table: pd.DataFrame, path: Path) -> None:
    """FID(w) - FID(w=0) with its paired 95% interval: what guidance changes, with the shared noise removed."""
    main, steps, _ = main_sweep(table)
    panels = [m for m in ("fid", "fid_inception") if m in main and main[m].notna().any()]
    diffs = {m: differences_from_unguided(main, m) for m in panels}
    diffs = {m: d for m, d in diffs.items() if len(d)}
    if not diffs:
        return
    fig, axes = plt.subplots(1, len(diffs), figsize=(5.5 * len(diffs), 3.6), squeeze=False)
    for ax, (metric, d) in zip(axes[0], diffs.items()):
        for (method, p), group in d.groupby(["method", "p_uncond"]):
            group = group.sort_values("w")
            ax.errorbar(group.w, group.difference, yerr=np.vstack([group.difference - group.lo, group.hi - group.difference]),
                        marker="o", capsize=2, label=f"{method}, p_uncond={p:g}")
        ax.axhline(0, c="grey", ls=":")
        strengths = sorted(d.w.unique())
        ax.set(xscale="symlog", xlabel="strength", ylabel=f"{metric}(strength) − {metric}(0)")
        ax.set_xticks(strengths, [f"{w:g}" for w in strengths], fontsize=6, rotation=60)
        ax.minorticks_off()
        ax.legend(fontsize=7)
    fig.suptitle(f"paired differences from unguided sampling (T = {steps}), 95% paired bootstrap intervals")
    save_figure(fig, path)

def fig_throughput(table: pd.DataFrame, path: Path) -> None:
    data = throughput_table(table)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    sns.barplot(data=data, y="group", x="images_per_second", ax=axes[0], color="tab:blue")
    sns.barplot(data=data, y="group", x="cost_vs_unguided", ax=axes[1], color="tab:orange")
    axes[0].set(ylabel="", xlabel="images / s (median over cells)")
    axes[1].set(ylabel="", xlabel="cost per image relative to unguided")
    axes[1].axvline(1, c="grey", ls=":")
    save_figure(fig, path)

PANELS = 4


def fig_sample_grids(table: pd.DataFrame, path: Path) -> None:
    """The paper's qualitative figure: the same seeds at increasing w, at the strengths the suite has: its
    smallest and largest w and, between them, those nearest to evenly spaced ranks."""
    main, _, _ = main_sweep(table)
    cfg = paper_rows(main)
    if cfg.empty:
        return
    cfg = cfg[cfg.p_uncond == (0.2 if 0.2 in set(cfg.p_uncond) else cfg.p_uncond.iloc[0])].sort_values("w")
    ranks = sorted({int(round(r)) for r in np.linspace(0, len(cfg) - 1, min(PANELS, len(cfg)))})
    chosen = [cfg.iloc[r] for r in ranks]
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen), 3.4))
    for ax, row in zip(np.atleast_1d(axes), chosen):
        try:
            ax.imshow(plt.imread(row.grid), cmap="gray")
        except (OSError, ValueError, SyntaxError) as err:  # a missing or corrupt grid.png: say so, draw the rest
            print(f"note: {row.grid} is unreadable ({type(err).__name__}); its panel is left empty", file=sys.stderr)
            ax.text(0.5, 0.5, "grid.png unreadable", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=f"w = {row.w:g}  (p_uncond = {row.p_uncond:g})", xticks=[], yticks=[])
    fig.suptitle("same seeds, increasing CFG weight")
    save_figure(fig, path)

def fig_steps(table: pd.DataFrame, path: Path) -> None:
    seed = int(table.seed.min())
    cfg = paper_rows(table)
    cfg = cfg[cfg.seed == seed]
    counts = cfg.groupby(["p_uncond", "w"]).steps.nunique()
    if counts.empty or counts.max() < 2:
        return
    p, w = counts.idxmax()
    data = cfg[(cfg.p_uncond == p) & (cfg.w == w)].sort_values("steps")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    _line_with_band(ax, data, "steps", "fid", marker="o")
    ax.set(xscale="log", xlabel="sampling steps T", ylabel="FID", title=f"FID vs steps (w = {w:g}, p_uncond = {p:g})")
    ax.set_xticks(data.steps, [str(t) for t in data.steps])
    save_figure(fig, path)

def fig_published_vs_ours(table: pd.DataFrame, path: Path) -> None:
    """Shapes, not values: FID / min FID and IS / IS(w=0) against w, paper's ImageNet 64 vs ours."""
    paper = pd.read_csv(PAPER_TABLES)
    paper = paper[paper.table == 1].rename(columns={"is": "is_mean"}).assign(source="paper ImageNet 64")
    main, _, _ = main_sweep(table)
    ours = paper_rows(main)[["w", "p_uncond", "fid", "is_mean"]].assign(source="ours")
    both = pd.concat([paper[["w", "p_uncond", "fid", "is_mean", "source"]], ours])
    grouped = both.groupby(["source", "p_uncond"])
    both["fid_norm"] = both.fid / grouped.fid.transform("min")
    both["is_norm"] = both.is_mean / grouped.is_mean.transform("first")
    both["p_uncond"] = both.p_uncond.map(lambda p: f"{p:g}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, col, name in ((axes[0], "fid_norm", "FID / min FID"), (axes[1], "is_norm", "IS / IS at w = 0")):
        sns.lineplot(data=both, x="w", y=col, hue="p_uncond", style="source", markers=True, ax=ax)
        ax.set(ylabel=name, xlabel="w")
    save_figure(fig, path)

FIGURES = {"quality_vs_strength.png": fig_quality_vs_strength, "frontier.png": fig_frontier,
           "throughput.png": fig_throughput, "samples_across_w.png": fig_sample_grids,
           "fid_vs_steps.png": fig_steps, "published_vs_ours.png": fig_published_vs_ours,
           "paired_differences.png": fig_paired_differences}
