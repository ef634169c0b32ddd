"""report.md of a suite: the verdicts on the paper's claims, the CFG table, paired differences, FID
without its bias in N, classifier guidance's adversarial gap, the method ranking, where the time went,
throughput, the suite's notes and its figures; every number read from the table and the ledger."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.claims.ranking import method_ranking
from bench.claims.sidebyside import best_beside
from bench.claims.solvers import guidance_by_solver, solver_answers, solver_wins
from bench.claims.sweeps import PAPER_METHOD, main_sweep, paper_rows
from bench.claims.verdicts import paper_claims
from bench.infra.stages import LEDGER, breakdown, by_stage, read_ledger
from bench.infra.store import atomic_write_bytes, notes_section
from bench.report.table import throughput_table
from bench.stats.paired import differences_from_method, differences_from_unguided
from bench.suites.protocols import PROTOCOLS


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

NAMES = {"fid": "FID", "fid_inception": "Inception FID", "sfid": "sFID", "fd_dinov2": "FD_DINOv2"}

def _extrapolated_table(main: pd.DataFrame) -> pd.DataFrame:
    """Each Frechet distance of the CFG cells at N with its interval at N, beside the distance at N -> inf
    with its own interval (empty where N <= d) and Chong & Forsyth's extrapolation (± the fit's error)."""
    cfg = paper_rows(main)
    metrics = [m for m in NAMES if m in cfg and cfg[m].notna().any()]
    if not metrics:
        return pd.DataFrame()
    out = cfg[["p_uncond", "w"]].copy()
    for m in metrics:
        out[f"{NAMES[m]} at N [95% CI at N]"] = cfg.apply(with_interval, axis=1, metric=m)
        out[f"{NAMES[m]}∞ [95% CI]"] = cfg.apply(with_interval, axis=1, metric=f"{m}_inf")
        cf, se = cfg.get(f"{m}_cf_inf"), cfg.get(f"{m}_cf_inf_se")
        out[f"{NAMES[m]}∞ Chong–Forsyth"] = ([f"{v:.3f} ± {e:.3f}" if pd.notna(v) else "" for v, e in zip(cf, se)]
                                            if cf is not None else "")
    return out.sort_values(["p_uncond", "w"])

def protocol_lines(table: pd.DataFrame) -> list[str]:
    """The published protocol the cells follow, its numbers as that evaluator reports them (over seed
    sets: the minimum and the mean ± sd), and every known difference from the original evaluator."""
    names = sorted(set(table.protocol.dropna()) - {""}) if "protocol" in table else []
    lines = []
    for name in names:
        record = PROTOCOLS[name]
        cells = table[table.protocol == name].assign(setting=lambda t: t.cell.str.replace(r"_seed\d+$", "", regex=True))
        metrics = [m for m in record.metrics if m in cells and cells[m].notna().any()]
        rows = []
        for setting, group in cells.groupby("setting", sort=False):
            row = {"cells": setting, "seed sets": len(group), "N": int(group.num_samples.iloc[0])}
            for m in metrics:
                values = group[m].dropna()
                row[f"{m} min"] = values.min()
                row[f"{m} mean ± sd"] = (f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1
                                         else f"{values.mean():.3f}")
            rows.append(row)
        lines += [f"## Protocol `{name}`: {record.evaluator}", "",
                  f"Reports {', '.join(record.metrics)} of N = {record.num_samples:,} samples"
                  + (f" over {record.seed_sets} seed sets (the minimum and the mean ± sd)" if record.seed_sets > 1 else "")
                  + f"; metrics not computed here are missing below.", "", _markdown(pd.DataFrame(rows)), "",
                  "Known differences from the original evaluator:", "", *[f"- {d}" for d in record.differences], ""]
    return lines

def _left_out(ranking: pd.DataFrame) -> str:
    left_out = ranking.attrs.get("left_out", [])
    return (f" Left out: {', '.join(f'`{c}`' for c in left_out)}, a level no method's curve reaches (every value "
            "would be empty)." if left_out else "")

def _other_metrics_table(main: pd.DataFrame) -> pd.DataFrame:
    """sFID, FD_DINOv2 and the k-NN metrics of the CFG cells, each at N with its interval, where scored."""
    cfg = paper_rows(main)
    metrics = [m for m in ("sfid", "fd_dinov2", "precision", "recall", "density", "coverage") if m in cfg and cfg[m].notna().any()]
    if not metrics:
        return pd.DataFrame()
    out = cfg[["p_uncond", "w"]].copy()
    for m in metrics:
        out[NAMES.get(m, m)] = cfg.apply(with_interval, axis=1, metric=m)
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

def write_report(suite: str, table: pd.DataFrame, suite_dir: Path, figures: list[str],
                 beside: tuple[str, pd.DataFrame] | None = None) -> None:
    """report.md of a suite; `beside` is (name, table) of the suite whose best cells are set beside its own."""
    main, steps, seed = main_sweep(table)
    clf_cols = ["cell", "scale", "fid", "is_mean", "class_accuracy", "guidance_classifier_confidence",
                "evaluator_confidence", "gap_confidence", "images_per_second"]
    clf = main[main.classifier_evals_per_image > 0]  # cells guided by the noisy classifier
    clf = clf.assign(**{m: clf.apply(with_interval, axis=1, metric=m) for m in ("fid", "is_mean", "class_accuracy")})
    clf = clf[[c for c in clf_cols if c in clf]]
    with_intervals = int(table.fid_lo.notna().sum()) if "fid_lo" in table else 0
    legacy = int(table.interval_method.astype(str).str.startswith("scored before").sum()) if "interval_method" in table else 0
    lines = [f"# Suite `{suite}` — generated report",
             "",
             f"Generated by `python -m bench.figures --suite {suite}` from {len(table)} finished cells under "
             f"`{suite_dir}/runs/`; every number below comes from those runs' `metrics.json`. Metrics use the "
             f"extractor `{table.extractor.iloc[0]}` (N = {int(table.num_samples.iloc[0])} samples per cell, "
             f"reference split `{table.reference_split.iloc[0]}`), so they are comparable only within this suite.",
             "",
             f"Numbers read `value [lo, hi]`: the value at this N and a 95% interval for the value at this N "
             f"({with_intervals} of {len(table)} cells have one): the delete-a-group jackknife's for FID, IS, recall "
             "and coverage, the basic bootstrap's for means and KID. The distance between the distributions "
             "(N → ∞), which FID at N overestimates by its bias, has its own column and interval (`fid_inf`, "
             "`fid_inf_lo`, `fid_inf_hi`; \"FID at N and FID∞\" below). See the README, \"Metrics, intervals and "
             "verdicts\"." + (f" {legacy} cells were scored before intervals at N existed and show FID at N without "
                               "one (bench/report/legacy.py); rerunning them gives it." if legacy else ""),
             "", "## Verdicts on the paper's claims", ""]
    lines += _claim_lines(paper_claims(table))
    if "fid_inception" in table and table.fid_inception.notna().any():
        lines += ["", f"### The same claims on Inception FID (`{table.inception_extractor.dropna().iloc[0]}`, "
                      f"{int(table.fid_inception.notna().sum())} cells; IS from `{table.is_extractor.dropna().iloc[0]}`)", ""]
        lines += _claim_lines(paper_claims(table, "fid_inception"))
    lines += ["", f"## CFG: FID and IS by w and p_uncond (T = {steps}, seeds from {seed})", "",
              _markdown(_cfg_table(main)), ""]
    ranking = method_ranking(main)
    sections = [
        ("Paired differences from unguided sampling", "Each guided cell minus the strength-0 cell of the same method, "
         "p_uncond and seeds, with the paired 95% bootstrap interval (the noise the two cells share cancels).",
         _differences_table(main)),
        ("FID at N and FID∞", "Each Fréchet distance at N with its interval at N, beside the distance between the "
         "distributions (N → ∞): the bootstrap's bias-corrected estimate 2t − mean(t*) with its basic interval, "
         "estimable only where N exceeds the feature dimension (the sample covariance has full rank; empty "
         "otherwise), and Chong & Forsyth's (2020) extrapolation (FID on subsets of 8 sizes from N/5 to N, fitted "
         "against 1/N and read at 1/N = 0; ± the fit's standard error; its points are in each cell's "
         "`metrics.json`, `fid_cf_inf_points`).", _extrapolated_table(main)),
        ("sFID, FD_DINOv2, precision, recall, density and coverage", "The CFG cells' other distribution metrics, each "
         "at N with its 95% interval at N (sFID: ADM's spatial Inception features; density and coverage: Naeem et "
         "al. 2020, k = 5).", _other_metrics_table(main)),
        ("Classifier guidance and the adversarial gap", "`gap_confidence` = the guidance classifier's mean confidence "
         "on the samples minus the independent evaluator's.", clf),
        ("Methods ranked", "FID each method reaches at matched IS and at matched class accuracy (the 25/50/75% "
         "quantiles of the CFG curve's values; read along the method's lower envelope, empty where its curve does not "
         "reach), sorted by FID at the middle IS; cost is the median over the method's cells." + _left_out(ranking),
         ranking),
        ("Paired differences from CFG", "Each method minus CFG on the same samples' seeds: at each strength value "
         "both were run at, and best against best (each method's lowest FID, highest IS, highest accuracy: the "
         "strengths of the two cells are named; the best picks are made on these samples, so they favour the "
         "noisier curve), with the paired 95% bootstrap interval. A strength is the method's own parameter (`strength_param` in table.csv), equal in value, "
         "not in effect.", _method_differences_table(main)),
    ]
    if beside is not None and len(pairs := best_beside(table, beside[1])):
        lines += [f"## Beside the `{beside[0]}` suite", "", f"Each suite's best CFG cell of the main sweep at each "
                  f"p_uncond, and this suite's minus `{beside[0]}`'s with the paired 95% bootstrap interval (same "
                  "sample seeds and draws; the best picks are made on these samples).", "", _markdown(pairs), ""]
    wins, guidance = solver_wins(table), guidance_by_solver(table)
    if len(wins):
        lines += ["## Solvers at matched NFE", "", "Cells matched by their network budget per image without guidance "
                  "(Heun's 2T - 1 evaluations beside the others' T); paired 95% bootstrap intervals on the same seeds "
                  "(bench/claims/solvers.py).", "", *solver_answers(wins, guidance), "", _markdown(wins), "",
                  _markdown(guidance), ""]
    sections += stage_sections(table, suite_dir)
    for title, text, frame in sections:
        if len(frame):
            lines += [f"## {title}", "", text, "", _markdown(frame), ""]
    lines += protocol_lines(table)
    lines += ["## Throughput", "", _markdown(throughput_table(table)), ""]
    lines += notes_section(suite_dir)
    lines += ["## Figures", ""] + [f"![{name}](figures/{name})" for name in figures]
    atomic_write_bytes(suite_dir / "report.md", ("\n".join(lines) + "\n").encode())
