"""Tables, figures (seaborn, PNG) and the generated report of a suite, from stored results only.

`python -m bench.figures --suite NAME [--out results]` rebuilds results/<suite>/table.csv,
every figure under results/<suite>/figures/ and results/<suite>/report.md from the runs'
metrics.json and grid.png files, without recomputing anything. Several result folders
(for example the shards of a cluster sweep) merge into one table.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .errors import BenchError  # noqa: E402
from .config import RunSpec, from_dict  # noqa: E402
from .paired import differences_from_method, differences_from_unguided  # noqa: E402
from .pipeline import cell_columns  # noqa: E402
from .stages import LEDGER, breakdown, by_stage, read_ledger  # noqa: E402
from .store import atomic_write_bytes, load_runs, notes_section, read_json  # noqa: E402
from .suites import Cell  # noqa: E402
from .verdicts import PAPER_METHOD, paper_claims, paper_rows  # noqa: E402

PAPER_TABLES = Path(__file__).resolve().parent.parent / "baselines" / "paper_tables.csv"
ID_COLUMNS = ["cell", "method", "method_label", "strength_param", "strength", "base", "noise_aware", "p_uncond", "w", "scale", "sampler", "steps", "seed", "num_samples"]
INTERVAL_METRICS = ["fid", "fid_inception", "fid_domain", "is_mean", "kid_mean", "precision", "recall", "class_accuracy"]
EXTRAPOLATED = ["fid_inf", "fid_inf_se", "fid_inception_inf", "fid_inception_inf_se", "is_inf", "is_inf_se"]
METRIC_COLUMNS = [*(c for m in INTERVAL_METRICS for c in (m, f"{m}_lo", f"{m}_hi")), *EXTRAPOLATED,
                  "fid_cleanfid", "fid_inception_cleanfid", "is_std", "bootstrap_draws", "evaluator_confidence", "guidance_classifier_accuracy", "guidance_classifier_confidence",
                  "gap_accuracy", "gap_confidence", "images_per_second", "nfe_per_image", "classifier_evals_per_image", "guide_evals_per_image",
                  "sampling_seconds", "network_seconds", "classifier_seconds", "other_seconds", "model_seconds",
                  "metrics_seconds", "extractor", "is_extractor", "inception_extractor", "domain_extractor", "run_id"]


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


def _default(table: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Cells at the suite's default steps and first seed set (the main sweep)."""
    steps = int(table.steps.mode().iloc[0])
    seed = int(table.seed.min())
    return table[(table.steps == steps) & (table.seed == seed)], steps, seed


def _has_interval(data: pd.DataFrame, metric: str) -> bool:
    return f"{metric}_lo" in data and data[f"{metric}_lo"].notna().all()


def _line_with_band(ax: plt.Axes, data: pd.DataFrame, x: str, metric: str, **style) -> None:
    """`metric` against `x`, with its 95% bootstrap interval as a band where the cells have one."""
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
    main, steps, _ = _default(table)
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
    fig.suptitle(f"sample quality vs guidance strength (T = {steps}); bands: 95% bootstrap intervals")
    save_figure(fig, path)


def fig_frontier(table: pd.DataFrame, path: Path) -> None:
    main, steps, _ = _default(table)
    fig, ax = plt.subplots(figsize=(7, 5))
    markers = "osD^v<>ph*X"
    for k, (label, group) in enumerate(_curves(main[main.strength.notna()])):
        ax.errorbar(group.is_mean, group.fid, xerr=_error_bars(group, "is_mean"), yerr=_error_bars(group, "fid"),
                    label=label, capsize=2, elinewidth=0.8, marker=markers[k % len(markers)], ls="-" if k < 10 else "--")
        for _, r in group.iloc[[0, -1]].iterrows():
            ax.annotate(f"{r.strength_param}={r.strength:g}", (r.is_mean, r.fid), fontsize=6, alpha=0.7)
    ax.set(xlabel="IS (evaluator logits)", ylabel="FID (evaluator features)",
           title=f"FID–IS frontier (T = {steps}); bars: 95% bootstrap intervals")
    ax.legend(fontsize=6)
    save_figure(fig, path)


def fig_paired_differences(table: pd.DataFrame, path: Path) -> None:
    """FID(w) - FID(w=0) with its paired 95% interval: what guidance changes, with the shared noise removed."""
    main, steps, _ = _default(table)
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
        ax.set(xscale="symlog", xlabel="strength", ylabel=f"{metric}(strength) − {metric}(0)")
        ax.legend(fontsize=7)
    fig.suptitle(f"paired differences from unguided sampling (T = {steps}), 95% paired bootstrap intervals")
    save_figure(fig, path)


UNGUIDED = "unguided (strength 0)"


def throughput_table(table: pd.DataFrame) -> pd.DataFrame:
    """images/s per method at the default steps, and cost per image relative to the unguided cells
    (every method at strength 0, which evaluates the conditional model once per step)."""
    main, _, _ = _default(table)
    main = main.assign(group=np.where(main.strength.fillna(0) == 0, UNGUIDED, main.method_label))
    out = main.groupby("group").agg(images_per_second=("images_per_second", "median"),
                                    nfe_per_image=("nfe_per_image", "median"),
                                    classifier_evals_per_image=("classifier_evals_per_image", "median"),
                                    overhead_fraction=("other_seconds", "sum")).reset_index()
    network = main.groupby("group")[["network_seconds", "classifier_seconds"]].sum().sum(axis=1).values
    out["overhead_fraction"] = out.overhead_fraction.values / np.maximum(network, 1e-12)
    unguided = out.loc[out.group == UNGUIDED, "images_per_second"]
    out["cost_vs_unguided"] = unguided.iloc[0] / out.images_per_second if len(unguided) else np.nan
    return out.sort_values("cost_vs_unguided")


def fig_throughput(table: pd.DataFrame, path: Path) -> None:
    data = throughput_table(table)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    sns.barplot(data=data, y="group", x="images_per_second", ax=axes[0], color="tab:blue")
    sns.barplot(data=data, y="group", x="cost_vs_unguided", ax=axes[1], color="tab:orange")
    axes[0].set(ylabel="", xlabel="images / s (median over cells)")
    axes[1].set(ylabel="", xlabel="cost per image relative to unguided")
    axes[1].axvline(1, c="grey", ls=":")
    save_figure(fig, path)


def fig_sample_grids(table: pd.DataFrame, path: Path, ws=(0.0, 0.3, 1.0, 4.0)) -> None:
    """The paper's qualitative figure: the same seeds at increasing w."""
    main, _, _ = _default(table)
    cfg = paper_rows(main)
    if cfg.empty:
        return
    cfg = cfg[cfg.p_uncond == (0.2 if 0.2 in set(cfg.p_uncond) else cfg.p_uncond.iloc[0])]
    chosen = [cfg[np.isclose(cfg.w, w)].iloc[0] for w in ws if np.isclose(cfg.w, w).any()]
    if not chosen:
        chosen = [cfg.sort_values("w").iloc[i] for i in range(min(4, len(cfg)))]
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen), 3.4))
    for ax, row in zip(np.atleast_1d(axes), chosen):
        ax.imshow(plt.imread(row.grid), cmap="gray")
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
    main, _, _ = _default(table)
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


def _markdown(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3f")


def with_interval(row: pd.Series, metric: str) -> str:
    """`value [lo, hi]` where the cell has an interval, else the value alone."""
    value = row.get(metric)
    if value is None or pd.isna(value):
        return ""
    lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    return f"{value:.3f}" if lo is None or pd.isna(lo) else f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


def _claim_lines(claims: list[dict]) -> list[str]:
    return [f"- **{c['claim']}** — {c['verdict']}. {c['evidence']}" + (f" *Test: {c['test']}.*" if c.get("test") else "")
            for c in claims]


def _cfg_table(main: pd.DataFrame) -> pd.DataFrame:
    cfg = paper_rows(main)
    metrics = [m for m in ("fid", "fid_inception", "is_mean") if m in cfg and cfg[m].notna().any()]
    names = {"fid": "FID", "fid_inception": "Inception FID", "is_mean": "IS"}
    cells = cfg.assign(**{m: cfg.apply(with_interval, axis=1, metric=m) for m in metrics})
    out = cells.pivot_table(index="w", columns="p_uncond", values=metrics, aggfunc="first", fill_value="")
    out.columns = [f"{names[m]} p={p:g}" for m, p in out.columns]
    return out.reset_index()


def _differences_table(main: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for metric in ("fid", "fid_inception"):
        d = differences_from_unguided(main, metric)
        if len(d):
            parts.append(d.assign(value=[f"{r.difference:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]" for r in d.itertuples()]))
    if not parts:
        return pd.DataFrame()
    both = pd.concat(parts)
    out = both.pivot_table(index=["method", "p_uncond", "w"], columns="metric", values="value", aggfunc="first", fill_value="")
    return out.rename(columns=lambda m: f"{m}(w) − {m}(0)").reset_index()


def _method_differences_table(main: pd.DataFrame) -> pd.DataFrame:
    """Each method minus CFG, paired, at shared strengths and best against best: FID (each feature space),
    IS and class accuracy."""
    parts = [d.assign(value=[f"{r.difference:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]" for r in d.itertuples()])
             for d in (differences_from_method(main, PAPER_METHOD, m, higher) for m, higher in
                       (("fid", False), ("fid_inception", False), ("is_mean", True), ("class_accuracy", True))) if len(d)]
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts).pivot_table(index=["method", "at"], columns="metric", values="value", aggfunc="first",
                                       fill_value="", sort=False)
    return out.rename(columns=lambda m: f"{m} − CFG's").reset_index()


def _matched(group: pd.DataFrame, x: str, targets: np.ndarray) -> np.ndarray:
    """FID of a curve at given values of `x` (IS or class accuracy) along its lower envelope: the best
    FID the method reaches at x or beyond; NaN outside the x range the curve covers."""
    g = group.sort_values(x)
    envelope = np.minimum.accumulate(g.fid.values[::-1])[::-1]
    out = np.interp(targets, g[x].values, envelope)
    return np.where((targets >= g[x].min()) & (targets <= g[x].max()), out, np.nan)


def _best_interval(group: pd.DataFrame) -> str:
    """The bootstrap interval of the cell with the lowest FID ("" when the cell has none)."""
    best = group.loc[group.fid.idxmin()]
    return f"[{best.fid_lo:.3f}, {best.fid_hi:.3f}]" if pd.notna(best.get("fid_lo", np.nan)) else ""


def method_ranking(main: pd.DataFrame) -> pd.DataFrame:
    """Methods ranked by FID at matched IS and at matched class accuracy (three levels each, spread
    over the range the paper's CFG curve covers), with their cost (images/s and NFE per image)."""
    guided = main[main.strength.fillna(0) > 0]
    reference = paper_rows(main)
    if guided.method_label.nunique() < 3 or reference.empty:
        return pd.DataFrame()
    rows = {label: {"method": label, "cells": len(g), "best FID": g.fid.min(), "best FID's 95% interval": _best_interval(g),
                    "images/s": g.images_per_second.median(), "NFE/image": g.nfe_per_image.median()}
            for label, g in guided.groupby("method_label")}
    for x, name in (("is_mean", "IS"), ("class_accuracy", "acc")):
        if x not in main or main[x].isna().all():
            continue
        targets = np.quantile(reference[x], [0.25, 0.5, 0.75])
        for label, g in guided.groupby("method_label"):
            for t, value in zip(targets, _matched(g, x, targets)):
                rows[label][f"FID @ {name}={t:.4g}"] = value
    out = pd.DataFrame(list(rows.values()))
    key = [c for c in out.columns if c.startswith("FID @ IS=")][1:2] or ["best FID"]
    return out.sort_values(key + ["best FID"], na_position="last").reset_index(drop=True)


def _extrapolated_table(main: pd.DataFrame) -> pd.DataFrame:
    """FID at N beside FID extrapolated to N -> infinity (± the fit's standard error), CFG cells."""
    cfg = paper_rows(main)
    pairs = [(m, f"{m}_inf") for m in ("fid", "fid_inception") if f"{m}_inf" in cfg and cfg[f"{m}_inf"].notna().any()]
    if not pairs:
        return pd.DataFrame()
    out = cfg[["p_uncond", "w"]].copy()
    for metric, inf in pairs:
        out[f"{metric} at N"] = cfg[metric].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        out[f"{metric}∞"] = [f"{v:.3f} ± {e:.3f}" if pd.notna(v) else "" for v, e in zip(cfg[inf], cfg[f"{inf}_se"])]
    return out.sort_values(["p_uncond", "w"])


CELL_STAGE_COLUMNS = {"train (in the cell that trained the model)": "model_seconds", "sampling": "sampling_seconds",
                      "features + metrics": "metrics_seconds", "rescore (features + metrics again)": "rescore_seconds"}


def cell_stage_table(table: pd.DataFrame) -> pd.DataFrame:
    """Stage seconds summed from the cells' own metrics.json: available for every finished cell, also
    for suites run before the stage ledger existed (no data or reference stages there)."""
    rows = [{"stage": stage, "minutes": table[column].fillna(0).sum() / 60, "cells": int(table[column].notna().sum())}
            for stage, column in CELL_STAGE_COLUMNS.items() if column in table]
    frame = pd.DataFrame(rows)
    frame["share"] = frame["minutes"] / frame["minutes"].sum()
    return frame


def stage_sections(table: pd.DataFrame, suite_dir: Path) -> list[tuple[str, str, pd.DataFrame]]:
    """Where the suite's time went: the stage ledger (every invocation's measurements) by stage and by
    item, and the same stages as recorded in the cells themselves."""
    ledger = read_ledger(suite_dir / LEDGER)
    sections = []
    if not ledger.empty:
        stages = by_stage(ledger).assign(minutes=lambda t: t.seconds / 60)[["stage", "minutes", "share"]]
        items = breakdown(ledger).assign(minutes=lambda t: t.seconds / 60)
        items = items[["stage", "item", "minutes", "share", "units", "unit", "cached", "invocations"]]
        sections += [("Where the time went (stage ledger)", f"Wall time per stage from `{LEDGER}`: every invocation of "
                      f"the suite appends what it measured ({ledger.invocation.nunique()} invocations; machines: "
                      f"{'; '.join(sorted(set(ledger.machine)))}). `cached` items were loaded, not computed.", stages),
                     ("Time by item", "The same ledger by model, extractor and network.", items)]
    sections.append(("Time recorded in the cells", "Summed from each cell's `metrics.json` (every cell, including "
                     "those run before the ledger existed).", cell_stage_table(table)))
    return sections


def write_report(suite: str, table: pd.DataFrame, suite_dir: Path, figures: list[str]) -> None:
    main, steps, seed = _default(table)
    clf_cols = ["cell", "scale", "fid", "is_mean", "class_accuracy", "guidance_classifier_confidence",
                "evaluator_confidence", "gap_confidence", "images_per_second"]
    clf = main[main.classifier_evals_per_image > 0]  # cells guided by the noisy classifier
    clf = clf.assign(**{m: clf.apply(with_interval, axis=1, metric=m) for m in ("fid", "is_mean", "class_accuracy")})
    clf = clf[[c for c in clf_cols if c in clf]]
    with_intervals = int(table.fid_lo.notna().sum()) if "fid_lo" in table else 0
    lines = [f"# Suite `{suite}` — generated report",
             "",
             f"Generated by `python -m bench.figures --suite {suite}` from {len(table)} finished cells under "
             f"`{suite_dir}/runs/`; every number below comes from those runs' `metrics.json`. Metrics use the "
             f"extractor `{table.extractor.iloc[0]}` (N = {int(table.num_samples.iloc[0])} samples per cell, "
             f"reference split `{table.reference_split.iloc[0]}`), so they are comparable only within this suite.",
             "",
             f"Numbers read `value [lo, hi]`: the value at this N and the 95% basic bootstrap interval "
             f"({with_intervals} of {len(table)} cells have one; see the README, \"Reading an interval and a verdict\"). "
             "For FID the interval is for the distance between the distributions (N → ∞), which FID at N "
             "overestimates by its bias; the `fid_inf` column of table.csv estimates the same quantity.",
             "", "## Verdicts on the paper's claims", ""]
    lines += _claim_lines(paper_claims(table))
    if "fid_inception" in table and table.fid_inception.notna().any():
        lines += ["", f"### The same claims on Inception FID (`{table.inception_extractor.dropna().iloc[0]}`, "
                      f"{int(table.fid_inception.notna().sum())} cells; IS from `{table.is_extractor.dropna().iloc[0]}`)", ""]
        lines += _claim_lines(paper_claims(table, "fid_inception"))
    lines += ["", f"## CFG: FID and IS by w and p_uncond (T = {steps}, seeds from {seed})", "",
              _markdown(_cfg_table(main)), ""]
    sections = [
        ("Paired differences from unguided sampling", "Each guided cell minus the strength-0 cell of the same method, "
         "p_uncond and seeds, with the paired 95% bootstrap interval (the noise the two cells share cancels).",
         _differences_table(main)),
        ("FID without its bias in N", "FID at N beside FID∞ (Chong & Forsyth 2020: FID on subsets of 8 sizes from "
         "N/5 to N, fitted against 1/N and read at 1/N = 0; ± the fit's standard error). The fit's points are in each "
         "cell's `metrics.json` (`fid_inf_points`).", _extrapolated_table(main)),
        ("Classifier guidance and the adversarial gap", "`gap_confidence` = the guidance classifier's mean confidence "
         "on the samples minus the independent evaluator's.", clf),
        ("Methods ranked", "FID each method reaches at matched IS and at matched class accuracy (the 25/50/75% "
         "quantiles of the CFG curve's values; read along the method's lower envelope, empty where its curve does not "
         "reach), sorted by FID at the middle IS; cost is the median over the method's cells.", method_ranking(main)),
        ("Paired differences from CFG", "Each method minus CFG on the same samples' seeds: at each strength value "
         "both were run at, and best against best (each method's lowest FID, highest IS, highest accuracy: the "
         "strengths of the two cells are named; the best picks are made on these samples, so they favour the "
         "noisier curve), with the paired 95% bootstrap interval. A strength is the method's own parameter (`strength_param` in table.csv), equal in value, "
         "not in effect.", _method_differences_table(main)),
    ]
    sections += stage_sections(table, suite_dir)
    for title, text, frame in sections:
        if len(frame):
            lines += [f"## {title}", "", text, "", _markdown(frame), ""]
    lines += ["## Throughput", "", _markdown(throughput_table(table)), ""]
    lines += notes_section(suite_dir)
    lines += ["## Figures", ""] + [f"![{name}](figures/{name})" for name in figures]
    atomic_write_bytes(suite_dir / "report.md", ("\n".join(lines) + "\n").encode())


def with_record_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Method label and strength of every cell from its stored spec and the method records, so
    cells stored before the records existed are labelled as new ones are."""
    columns = [cell_columns(Cell(row.cell, from_dict(RunSpec, read_json(Path(row.run_dir) / "spec.json"))))
               for row in table.itertuples()]
    for key in ("method_label", "strength_param", "strength"):
        table[key] = [c[key] for c in columns]
    return table


def build(suite: str, out: str | Path, extra: list[Path] = ()) -> list[str]:
    """Rebuild table.csv, figures/ and report.md of a suite; returns the figure names written."""
    suite_dir = Path(out) / suite
    table = with_record_columns(load_runs(suite_dir, *extra))
    for column in METRIC_COLUMNS:  # metrics a suite's networks do not give (e.g. IS without a classifier) stay empty
        if column not in table:
            table[column] = np.nan
    columns = [c for c in ID_COLUMNS + METRIC_COLUMNS if c in table]
    atomic_write_bytes(suite_dir / "table.csv", table[columns].to_csv(index=False).encode())
    written = []
    for name, fn in FIGURES.items():
        fn(table, suite_dir / "figures" / name)
        if (suite_dir / "figures" / name).exists():
            written.append(name)
    for accuracy in sorted(suite_dir.glob("classifiers/*/accuracy_by_lambda.csv")):
        plot_classifier_accuracy(pd.read_csv(accuracy), accuracy.with_suffix(".png"))
    write_report(suite, table, suite_dir, written)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--out", default="results", help="results root holding <suite>/runs")
    parser.add_argument("--merge", nargs="*", default=[], help="more results roots whose <suite>/runs to merge in")
    args = parser.parse_args(argv)
    try:
        written = build(args.suite, Path(args.out), [Path(m) / args.suite for m in args.merge])
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {Path(args.out) / args.suite}/table.csv, report.md and figures: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
