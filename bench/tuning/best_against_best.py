"""Best against best: every guidance method at its own tuned optimum, scored again there on fresh samples
with the Inception FID as well, and compared with tuned CFG by paired differences.

A frontier is a record (bench/tuning/frontiers.py): the model, the methods, their search ranges and the
optimum cells' N and seeds. Per method:
  1. tune: bench.tuning.cells.tune_cell on the method's example cell on `base` (its record's first example,
     with the spec changes it names, e.g. autoguidance's guide), cells under <out>/<frontier>-tune-<method>/;
  2. score: the cell at w* with `final_n` samples from `final_seed`, with the Inception FID, under
     <out>/<frontier>/runs/. Its seeds lie beyond every tuning cell's (final_seed >= the budget), so choosing
     w* on the tuning samples does not favour a method on the samples it is judged on (a best-of-grid
     comparison on one sample set favours the noisier curve);
  3. compare: each optimum minus tuned CFG's on the tuned metric and on Inception FID, with the paired
     bootstrap interval (the optimum cells share seeds and draws; bench/stats/paired.py). A difference whose
     interval excludes 0 is a verdict; the bootstrap makes it an approximate test at final_n.
FID at matched IS reads each method's curve from its tuning cells at the first N (one seed set, the whole
range; bench/stats/envelope.py), at the 25/50/75% quantiles of tuned CFG's curve's IS.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bench.infra.store import atomic_write_bytes, notes_section, results_folder
from bench.report.table import model_prediction, suite_table, write_table
from bench.runner.suite import run_cells
from bench.stats.envelope import envelope_at
from bench.stats.paired import CellReplicates
from bench.suites.cells import Cell, with_inception
from bench.tuning.frontiers import FRONTIERS, Frontier
from bench.tuning.cells import cell_at, strength_of, tune_cell
from bench.tuning.search import LOCATED_MARGIN

COMPARED = (("fid", "FID"), ("fid_inception", "Inception FID"))  # (column, name) of the distances compared
MATCHED_IS_QUANTILES = (0.25, 0.5, 0.75)


def optimum_cell(frontier: Frontier, method: str, base: Cell, w: float) -> Cell:
    """The cell at the tuned strength with final_n samples from final_seed and the Inception FID."""
    param = strength_of(base)[0]
    cell = cell_at(base, param, w, frontier.final_n, frontier.final_seed, name=f"{method}_best_{param}{w:.4g}_N{frontier.final_n}")
    return with_inception(cell) if frontier.final_inception else cell


def run_frontier(name: str | Frontier, out: str | Path = "results", *, methods: Sequence[str] = (), device: str | None = None,
                 quiet: bool = True, say=print) -> pd.DataFrame:
    """Tune, score and compare every method of frontier `name` (all cells resumable: a rerun computes only
    what is missing), write <out>/<name>/{frontier.csv, report.md, figures/}, and return the verdict table."""
    frontier = name if isinstance(name, Frontier) else FRONTIERS[name]
    name = frontier.name
    chosen = list(methods) or frontier.method_names()
    if frontier.reference not in chosen:
        chosen.insert(0, frontier.reference)
    tuned, optima = {}, {}
    for method in chosen:
        base = frontier.tuning_base(method)
        lo, hi = frontier.search_range(method)
        table = tune_cell(base, frontier.metric, f"{name}-tune-{method}", lo=lo, hi=hi, n0=frontier.n0,
                          budget=frontier.budget, out=out, device=device, quiet=quiet)
        a = table.attrs
        say(f"{method}: {a['param']}* = {a['strength']:.4g} [{a['lo']:.4g}, {a['hi']:.4g}] ({a['stopped']}, "
            f"{a['samples']:,} samples)")
        tuned[method] = table
        optima[method] = optimum_cell(frontier, method, base, a["strength"])
    run_cells(name, list(optima.values()), out, device=device, quiet=quiet,
              say=(lambda *a, **k: None) if quiet else None)
    folder = results_folder(out) / name
    ids = {cell.run_id: method for method, cell in optima.items()}
    stored = suite_table(folder)  # every optimum cell stored (table.csv), of which the current ones are compared
    finals = stored[stored.run_id.isin(ids)].assign(tuned_method=lambda t: t.run_id.map(ids))
    verdicts = verdict_table(frontier, finals, tuned)
    write_table(stored, folder / "table.csv")
    atomic_write_bytes(folder / "frontier.csv", verdicts.to_csv(index=False).encode())
    write_report(frontier, folder, verdicts, matched_is(frontier, tuned), grid_check(frontier, tuned, out), tuned)
    return verdicts


def frontier_plan(frontier: Frontier, out: str | Path = "results", device: str = "cpu") -> pd.DataFrame:
    """The most a frontier costs, priced before any work, one row per cell: per method, its whole search
    budget spent at the middle of its range (a search that locates w* stops earlier) and its optimum cell,
    priced as a suite's plan is (bench/runner/plan.py: rates from the ledgers here, else timed now)."""
    from bench.runner.plan import plan
    cells = []
    for method in frontier.method_names():
        base = frontier.tuning_base(method)
        middle = sum(frontier.search_range(method)) / 2
        cells += [cell_at(base, strength_of(base)[0], middle, frontier.budget, name=f"{method}_search_budget"),
                  optimum_cell(frontier, method, base, middle)]
    return plan(cells, device, out)


def verdict(difference: dict | None, lower_is_better: bool = True) -> str:
    if difference is None:
        return ""
    lo, hi = (difference["lo"], difference["hi"]) if lower_is_better else (-difference["hi"], -difference["lo"])
    return "better" if hi < 0 else "worse" if lo > 0 else "not resolved"


def verdict_table(frontier: Frontier, finals: pd.DataFrame, tuned: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per method: where its optimum lies (w* and the 95% interval on the argmin), its metrics at
    the optimum (each at final_n with its interval at N), its paired differences from tuned CFG's optimum
    (`<metric>_minus_cfg`, `_lo`, `_hi`) with their verdicts, and its cost."""
    replicates = CellReplicates(finals)
    by_method = {row.tuned_method: row for _, row in finals.iterrows()}
    reference = by_method.get(frontier.reference)
    rows = []
    for method, table in tuned.items():
        a, row = table.attrs, by_method.get(method)
        if row is None:
            continue
        out = {"method": method, "strength_param": a["param"], "w_star": a["strength"], "w_star_lo": a["lo"],
               "w_star_hi": a["hi"], "range_lo": a["range"][0], "range_hi": a["range"][1], "search": a["stopped"],
               "tuning_samples": a["samples"], "tuning_cells": len(table), "run_id": row.run_id}
        for metric in (*(m for m, _ in COMPARED), "is_mean"):
            out.update({k: row.get(k) for k in (metric, f"{metric}_lo", f"{metric}_hi")})
        for metric, _ in COMPARED:
            found = None if reference is None or method == frontier.reference else replicates.difference(row, reference, metric)
            out.update({f"{metric}_minus_cfg": np.nan, f"{metric}_minus_cfg_lo": np.nan, f"{metric}_minus_cfg_hi": np.nan}
                       if found is None else {f"{metric}_minus_cfg": found["difference"],
                                              f"{metric}_minus_cfg_lo": found["lo"], f"{metric}_minus_cfg_hi": found["hi"]})
            out[f"{metric}_verdict"] = verdict(found)
        out.update({"nfe_per_image": row.get("nfe_per_image"), "images_per_second": row.get("images_per_second")})
        rows.append(out)
    return pd.DataFrame(rows)


def _with_interval(value: float, lo: float, hi: float, signed: bool = False) -> str:
    if pd.isna(value):
        return ""
    f = "{:+.3f}" if signed else "{:.3f}"
    return f.format(value) + ("" if pd.isna(lo) else f" [{f.format(lo)}, {f.format(hi)}]")


def shown_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdict table as the report prints it: each value with its interval."""
    out = pd.DataFrame({"method": verdicts.method, "strength": verdicts.strength_param,
                        "w* [95% CI]": [_with_interval(r.w_star, r.w_star_lo, r.w_star_hi) for r in verdicts.itertuples()],
                        "range": [f"[{r.range_lo:g}, {r.range_hi:g}]" for r in verdicts.itertuples()],
                        "search": verdicts.search, "tuning samples": verdicts.tuning_samples})
    for metric, words in (*COMPARED, ("is_mean", "IS")):
        out[f"{words} at w*"] = [_with_interval(*v) for v in verdicts[[metric, f"{metric}_lo", f"{metric}_hi"]].values]
        if metric != "is_mean":
            out[f"{words} − tuned CFG"] = [_with_interval(*v, signed=True) for v in
                                           verdicts[[f"{metric}_minus_cfg", f"{metric}_minus_cfg_lo", f"{metric}_minus_cfg_hi"]].values]
            out[f"{words} verdict"] = verdicts[f"{metric}_verdict"]
    return out.assign(**{"NFE/image": verdicts.nfe_per_image, "images/s": verdicts.images_per_second})


def matched_is(frontier: Frontier, tuned: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The tuned metric each method reaches at matched IS, along its curve at the first N (the lower envelope
    of its tuning cells there), at the 25/50/75% quantiles of tuned CFG's curve's IS; empty where its curve
    does not reach the level."""
    curves = {m: t[t.n == frontier.n0] for m, t in tuned.items() if "is_mean" in t and t.is_mean.notna().any()}
    reference = curves.get(frontier.reference)
    if reference is None or reference.empty:
        return pd.DataFrame()
    targets = np.quantile(reference.is_mean, MATCHED_IS_QUANTILES)
    rows = []
    for method, curve in curves.items():
        values = envelope_at(curve.is_mean.values, curve[frontier.metric].values, targets, outside=np.nan)
        rows.append({"method": method, "cells": len(curve),
                     **{f"{frontier.metric} @ IS={t:.4g} (CFG's q{q * 100:g})": v
                        for q, t, v in zip(MATCHED_IS_QUANTILES, targets, values)}})
    return pd.DataFrame(rows)


def grid_check(frontier: Frontier, tuned: dict[str, pd.DataFrame], out: str | Path) -> list[str]:
    """Whether tuned CFG's interval on w* holds the minimum of the stored CFG grid of `grid_suite` on the same
    model (p_uncond, prediction, dataset), sampler (name, time grid, steps) and sample seed (same N or not: the
    argmin of E[FID_N] moves little with N), and where it does not, the grid's lowest point inside the interval."""
    table_path = results_folder(out) / frontier.grid_suite / "table.csv" if frontier.grid_suite else None
    if table_path is None or not table_path.exists() or frontier.reference not in tuned:
        return []
    grid = pd.read_csv(table_path)
    b = frontier.base
    same = (grid.method == frontier.reference) & (grid.p_uncond == b.train.p_uncond) & (grid.steps == b.sample.steps) \
        & (grid.seed == b.sample.seed) & grid[frontier.metric].notna()
    setup = {"prediction": model_prediction(b), "sampler": b.sample.sampler, "time_grid": b.sample.grid, "dataset": b.data.name}
    for column, value in setup.items():  # a table may hold several models and samplers (the flow suite: eps and flow)
        if column in grid:
            same &= grid[column] == value
    grid = grid[same]
    if grid.empty:
        return []
    best = grid.loc[grid[frontier.metric].idxmin()]
    a = tuned[frontier.reference].attrs
    inside = a["lo"] <= best.strength <= a["hi"]
    within = grid[grid.strength.between(a["lo"], a["hi"])]
    nearest = within.loc[within[frontier.metric].idxmin()] if len(within) and not inside else None
    return [f"The `{frontier.grid_suite}` suite's CFG grid ({len(grid)} strengths at N = {int(best.num_samples):,}, "
            f"p_uncond = {b.train.p_uncond:g}, T = {b.sample.steps}) has its lowest {frontier.metric} at w = "
            f"{best.strength:g} ({best[frontier.metric]:.3f}); the tuner's w* = {a['strength']:.3g} with 95% interval "
            f"[{a['lo']:.3g}, {a['hi']:.3g}] {'holds' if inside else 'does not hold'} it: "
            f"**{'agrees' if inside else 'disagrees'}**."
            + ("" if nearest is None else f" The grid's lowest point inside the interval is w = {nearest.strength:g} "
               f"({nearest[frontier.metric]:.3f}, {nearest[frontier.metric] - best[frontier.metric]:+.3f} from the "
               "grid's minimum, on the same seeds).")]


def compared_count(verdicts: pd.DataFrame) -> int:
    """How many paired comparisons with tuned CFG the verdict table holds, over every compared metric."""
    return sum(int(verdicts[f"{metric}_verdict"].ne("").sum()) for metric, _ in COMPARED) if len(verdicts) else 0


def write_report(frontier: Frontier, folder: Path, verdicts: pd.DataFrame, matched: pd.DataFrame,
                 grid_lines: list[str], tuned: dict[str, pd.DataFrame]) -> None:
    from bench.tuning.best_plot import plot_differences
    figures = folder / "figures"
    plot_differences(verdicts, COMPARED, figures / "differences_from_cfg.png")
    shown = shown_verdicts(verdicts)
    counts = {words: verdicts[f"{metric}_verdict"].value_counts().to_dict() for metric, words in COMPARED}
    b = frontier.base
    lines = [f"# Frontier `{frontier.name}` — best against best", "",
             f"Generated by `python -m bench.tune --frontier {frontier.name}` from the stored cells under "
             f"`{folder.parent}/{frontier.name}-tune-*/` and `{folder}/runs/`; every number comes from those cells. "
             f"{frontier.description[:1].upper()}{frontier.description[1:]}. Model: {b.data.name}{f' {b.data.size}×{b.data.size}' if b.data.size else ''}, p_uncond = {b.train.p_uncond:g}, "
             f"{b.sample.sampler} T = {b.sample.steps}.", "",
             f"Each method's strength was tuned on `{frontier.metric}` (bench/tuning/search.py: a coarse grid of "
             f"N = {frontier.n0:,} per point, cubic fits in a span that must bracket the minimum and not move it, "
             f"refined around w* and N ×4 where the fit stops narrowing, until the 95% bootstrap interval on the argmin "
             f"is narrower than range / 20 (a located stop then widens it by {LOCATED_MARGIN:g} × range / 20 each side) or "
             f"{frontier.budget:,} samples are spent; its calibration on synthetic curves is results/tuning/report.md). The optimum was then scored on fresh samples (N = {frontier.final_n:,} from seed "
             f"{frontier.final_seed:,}, beyond every tuning seed, so w* was not picked on the samples it is judged on), "
             f"{'with the Inception FID too' if frontier.final_inception else 'on the tuned metric only'}. Differences are each optimum minus tuned CFG's on the same seeds, with the "
             "paired 95% bootstrap interval; **better** / **worse** where it excludes 0 (an approximate test at this N), "
             "else *not resolved*.", "",
             "## Verdicts: each method's optimum against tuned CFG's", "",
             "; ".join(f"{words}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k) for words, c in counts.items()
                       if any(c)) or "No method but the reference has been run yet.",
             *([f"Each verdict is a 5% test on its own. This table makes {n} such comparison{'s' if n != 1 else ''}: if no "
                f"method differed from tuned CFG, the expected number of verdicts reading better or worse by chance would "
                f"be {0.05 * n:.2g}, so a verdict whose interval ends near 0 is worth confirming on fresh seeds (another "
                "`final_seed`)."]
               if (n := compared_count(verdicts)) else []),
             *([f"Not run yet: {', '.join(missing)} (`python -m bench.tune --frontier {frontier.name}` runs them; finished "
                "cells are kept)."] if (missing := [m for m in frontier.method_names() if m not in tuned]) else []),
             "", shown.to_markdown(index=False, floatfmt=".3f"), ""]
    if grid_lines:
        lines += ["## Tuned CFG against the stored grid", "", *grid_lines, ""]
    if len(matched):
        lines += ["## FID at matched IS", "", f"`{frontier.metric}` each method reaches at the 25/50/75% quantiles of "
                  f"tuned CFG's IS, along its lower envelope over its tuning cells at N = {frontier.n0:,} (one seed set, "
                  "the whole range; empty where its curve does not reach the level).", "",
                  matched.to_markdown(index=False, floatfmt=".3f"), ""]
    lines += ["## The searches", "", "Each method's search path is in `tune.json` beside its cells; its figure "
              "(the metric against strength at each N, the last fit and the interval on w*):", "",
              *[f"- `{m}`: {len(t)} cells at N = {', '.join(f'{n:,}' for n in sorted(t.n.unique()))} — "
                f"![{m}](../{frontier.name}-tune-{m}/tune.png)" for m, t in tuned.items()], ""]
    lines += notes_section(folder)
    lines += ["## Figures", "", "![differences_from_cfg](figures/differences_from_cfg.png)"]
    atomic_write_bytes(folder / "report.md", ("\n".join(lines) + "\n").encode())
