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
from .store import atomic_write_bytes, load_runs, notes_section  # noqa: E402
from .verdicts import paper_claims  # noqa: E402

PAPER_TABLES = Path(__file__).resolve().parent.parent / "baselines" / "paper_tables.csv"
ID_COLUMNS = ["cell", "method", "base", "noise_aware", "p_uncond", "w", "scale", "sampler", "steps", "seed", "num_samples"]
METRIC_COLUMNS = ["fid", "fid_cleanfid", "fid_inception", "fid_inception_cleanfid", "fid_domain", "is_mean", "is_std", "kid_mean", "precision", "recall", "class_accuracy",
                  "evaluator_confidence", "guidance_classifier_accuracy", "guidance_classifier_confidence",
                  "gap_accuracy", "gap_confidence", "images_per_second", "nfe_per_image", "classifier_evals_per_image",
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


def _classifier_label(row: pd.Series) -> str:
    return f"{'noisy' if row.noise_aware else 'clean'} clf → {row.base}"


def fig_quality_vs_strength(table: pd.DataFrame, path: Path) -> None:
    main, steps, _ = _default(table)
    cfg, clf = main[main.method == "cfg"], main[main.method == "classifier"].copy()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for row, metric, name in ((0, "fid", "FID (lower is better)"), (1, "is_mean", "IS")):
        if len(cfg):
            sns.lineplot(data=cfg, x="w", y=metric, hue="p_uncond", marker="o", palette="viridis", ax=axes[row, 0])
        axes[row, 0].set(xlabel="CFG guidance weight w (s = 1 + w)", ylabel=name)
        if len(clf):
            clf["guide"] = clf.apply(_classifier_label, axis=1)
            sns.lineplot(data=clf, x="scale", y=metric, hue="guide", marker="s", ax=axes[row, 1])
            ref = cfg[(cfg.w == 0) & (cfg.p_uncond == clf.p_uncond.iloc[0])][metric]
            if len(ref):
                axes[row, 1].axhline(ref.iloc[0], ls=":", c="grey", label="unguided (cond)")
            axes[row, 1].set(xlabel="classifier guidance scale s", ylabel=name)
    fig.suptitle(f"sample quality vs guidance strength (T = {steps})")
    save_figure(fig, path)


def fig_frontier(table: pd.DataFrame, path: Path) -> None:
    main, steps, _ = _default(table)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    cfg = main[main.method == "cfg"].sort_values("w")
    for p, group in cfg.groupby("p_uncond"):
        ax.plot(group.is_mean, group.fid, marker="o", label=f"CFG p_uncond={p:g}")
        for _, r in group.iloc[[0, len(group) // 2, -1]].iterrows():
            ax.annotate(f"w={r.w:g}", (r.is_mean, r.fid), fontsize=7, alpha=0.7)
    clf = main[main.method == "classifier"]
    for (noise_aware, base), group in clf.groupby(["noise_aware", "base"]):
        group = group.sort_values("scale")
        ax.plot(group.is_mean, group.fid, marker="s", ls="--",
                label=f"{'noisy' if noise_aware else 'clean'} classifier → {base}")
    others = main[~main.method.isin(["cfg", "classifier"])]
    for method, group in others.groupby("method"):
        group = group.sort_values("w")
        ax.plot(group.is_mean, group.fid, marker="^", ls="-.", label=method)
    ax.set(xlabel="IS (evaluator logits)", ylabel="FID (evaluator features)", title=f"FID–IS frontier (T = {steps})")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def throughput_table(table: pd.DataFrame) -> pd.DataFrame:
    """images/s per method at the default steps, and cost per image relative to unguided (cfg w = 0)."""
    main, _, _ = _default(table)
    main = main.copy()
    main["group"] = main.apply(lambda r: "unguided (cfg w=0)" if r.method == "cfg" and r.w == 0 else
                               "cfg w>0" if r.method == "cfg" else
                               _classifier_label(r) if r.method == "classifier" else r.method, axis=1)
    out = main.groupby("group").agg(images_per_second=("images_per_second", "median"),
                                    nfe_per_image=("nfe_per_image", "median"),
                                    classifier_evals_per_image=("classifier_evals_per_image", "median"),
                                    overhead_fraction=("other_seconds", "sum")).reset_index()
    network = main.groupby("group")[["network_seconds", "classifier_seconds"]].sum().sum(axis=1).values
    out["overhead_fraction"] = out.overhead_fraction.values / np.maximum(network, 1e-12)
    unguided = out.loc[out.group == "unguided (cfg w=0)", "images_per_second"]
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
    cfg = main[main.method == "cfg"]
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
    cfg = table[(table.method == "cfg") & (table.seed == seed)]
    counts = cfg.groupby(["p_uncond", "w"]).steps.nunique()
    if counts.empty or counts.max() < 2:
        return
    p, w = counts.idxmax()
    data = cfg[(cfg.p_uncond == p) & (cfg.w == w)].sort_values("steps")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(data.steps, data.fid, marker="o")
    ax.set(xscale="log", xlabel="sampling steps T", ylabel="FID", title=f"FID vs steps (w = {w:g}, p_uncond = {p:g})")
    ax.set_xticks(data.steps, [str(t) for t in data.steps])
    save_figure(fig, path)


def fig_published_vs_ours(table: pd.DataFrame, path: Path) -> None:
    """Shapes, not values: FID / min FID and IS / IS(w=0) against w, paper's ImageNet 64 vs ours."""
    paper = pd.read_csv(PAPER_TABLES)
    paper = paper[paper.table == 1].rename(columns={"is": "is_mean"}).assign(source="paper ImageNet 64")
    main, _, _ = _default(table)
    ours = main[main.method == "cfg"][["w", "p_uncond", "fid", "is_mean"]].assign(source="ours")
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
           "fid_vs_steps.png": fig_steps, "published_vs_ours.png": fig_published_vs_ours}


def _markdown(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3f")


def write_report(suite: str, table: pd.DataFrame, suite_dir: Path, figures: list[str]) -> None:
    main, steps, seed = _default(table)
    cfg = main[main.method == "cfg"].pivot_table(index="w", columns="p_uncond", values=["fid", "is_mean"])
    cfg.columns = [f"{'FID' if m == 'fid' else 'IS'} p={p:g}" for m, p in cfg.columns]
    clf_cols = ["cell", "scale", "fid", "is_mean", "class_accuracy", "guidance_classifier_confidence",
                "evaluator_confidence", "gap_confidence", "images_per_second"]
    clf = main[main.method == "classifier"][[c for c in clf_cols if c in main]]
    lines = [f"# Suite `{suite}` — generated report",
             "",
             f"Generated by `python -m bench.figures --suite {suite}` from {len(table)} finished cells under "
             f"`{suite_dir}/runs/`; every number below comes from those runs' `metrics.json`. Metrics use the "
             f"extractor `{table.extractor.iloc[0]}` (N = {int(table.num_samples.iloc[0])} samples per cell, "
             f"reference split `{table.reference_split.iloc[0]}`), so they are comparable only within this suite.",
             "", "## Verdicts on the paper's claims", ""]
    for claim in paper_claims(table):
        lines.append(f"- **{claim['claim']}** — {claim['verdict']}. {claim['evidence']}")
    if "fid_inception" in table and table.fid_inception.notna().any():
        lines += ["", f"### The same claims on Inception FID (`{table.inception_extractor.dropna().iloc[0]}`, "
                      f"{int(table.fid_inception.notna().sum())} cells; IS from `{table.is_extractor.dropna().iloc[0]}`)", ""]
        lines += [f"- **{c['claim']}** — {c['verdict']}. {c['evidence']}" for c in paper_claims(table, "fid_inception")]
    lines += ["", f"## CFG: FID and IS by w and p_uncond (T = {steps}, seeds from {seed})", "",
              _markdown(cfg.reset_index()), ""]
    if len(clf):
        lines += ["## Classifier guidance and the adversarial gap", "",
                  "`gap_confidence` = the guidance classifier's mean confidence on the samples minus the independent "
                  "evaluator's.", "", _markdown(clf), ""]
    lines += ["## Throughput", "", _markdown(throughput_table(table)), ""]
    lines += notes_section(suite_dir)
    lines += ["## Figures", ""] + [f"![{name}](figures/{name})" for name in figures]
    atomic_write_bytes(suite_dir / "report.md", ("\n".join(lines) + "\n").encode())


def build(suite: str, out: str | Path, extra: list[Path] = ()) -> list[str]:
    """Rebuild table.csv, figures/ and report.md of a suite; returns the figure names written."""
    suite_dir = Path(out) / suite
    table = load_runs(suite_dir, *extra)
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
