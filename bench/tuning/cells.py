"""The tuner on a suite's model: every strength it asks for is scored by an ordinary cell (run, cached and
resumed by bench.runner like any suite's, under results/<suite>-tune-<method>/), and the search of
bench/tuning/search.py reads each cell's metric and its bootstrap replicates. Cells at one N share their
sample seeds and bootstrap draws, so the fit's comparisons are paired; N grows by the search's factor, and
the per-sample seed streams make a cell at 4N hold the samples of the cell at N.

`tune(suite, method, metric)` returns the evaluated cells as a DataFrame (attrs: w*, its interval, how the
search stopped) and writes tune.csv, tune.json (the search path) and tune.png beside the cells.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bench.guidance.registry import METHODS
from bench.infra.store import atomic_write_bytes, read_replicates, results_folder
from bench.runner.suite import run_cells
from bench.spec.errors import SpecError
from bench.spec.sections import GuidanceSpec
from bench.suites.cells import Cell, select_cells
from bench.tuning.search import Evaluation, Result, Settings, locate

HIGHER_IS_BETTER = ("is_mean", "precision", "recall", "density", "coverage", "class_accuracy")


def base_cell(suite: str, method: str, overrides: Sequence[str]) -> tuple[Cell, str, float]:
    """The suite's first cell guided by `method` (its model, sampler and N), the method's strength
    parameter, and the largest strength the suite gives it (the default search range is [0, that])."""
    if method not in METHODS:
        raise SpecError(f"method {method!r} is not registered; known: {', '.join(sorted(METHODS))}")
    param = METHODS[method].strength
    if param is None:
        raise SpecError(f"method {method!r} has no strength to tune")
    cells = [c for c in select_cells(suite, overrides=overrides) if c.spec.guidance.method == method]
    if not cells:
        raise SpecError(f"suite {suite} has no {method} cell to take the model from; choose a suite that runs it")
    strengths = [dict(c.spec.guidance.params).get(param, 0.0) for c in cells]
    return cells[0], param, float(max(strengths))


def cell_at(base: Cell, param: str, strength: float, n: int) -> Cell:
    params = dict(base.spec.guidance.params)
    params[param] = float(strength)
    spec = replace(base.spec, guidance=replace(base.spec.guidance, params=tuple(sorted(params.items()))),
                   sample=replace(base.spec.sample, num_samples=int(n)))
    return Cell(f"tune_{base.spec.guidance.method}_{param}{strength:.6g}_N{n}", spec)


def tune(suite: str, method: str = "cfg", metric: str = "fid", *, lo: float = 0.0, hi: float | None = None,
         delta: float | None = None, n0: int | None = None, budget: int | None = None, overrides: Sequence[str] = (),
         out: str | Path = "results", device: str | None = None, quiet: bool = True) -> pd.DataFrame:
    """Locate the strength of `method` that optimises `metric` (minimised, or maximised for IS, precision,
    recall, density, coverage and accuracy) on `suite`'s model; see bench/tuning/search.py."""
    base, param, top = base_cell(suite, method, overrides)
    hi = top if hi is None else hi
    n0 = n0 or base.spec.sample.num_samples
    settings = Settings(lo=lo, hi=hi, delta=delta or (hi - lo) / 20, n0=n0, budget=budget or 64 * n0,
                        maximise=metric in HIGHER_IS_BETTER)
    folder = f"{suite}-tune-{method}"
    scored: list[dict] = []

    def evaluate(strengths: Sequence[float], n: int) -> list[Evaluation]:
        cells = [cell_at(base, param, w, n) for w in strengths]
        table = run_cells(folder, cells, out, device=device, quiet=quiet, say=(lambda *a, **k: None) if quiet else None)
        found = []
        for w, cell, (_, row) in zip(strengths, cells, table.iterrows()):
            if metric not in row or pd.isna(row[metric]):
                raise SpecError(f"the cells give no {metric!r}; choose a metric their extractor computes (e.g. fid)")
            replicates = read_replicates(results_folder(out) / folder / "runs" / cell.run_id).get(metric)
            if replicates is None:
                raise SpecError(f"{cell.name} stored no bootstrap replicates of {metric}: the search needs them")
            found.append(Evaluation(float(w), n, float(row[metric]), np.asarray(replicates)))
            scored.append({"strength": float(w), "n": n, metric: float(row[metric]), "cell": cell.name,
                           "run_id": cell.run_id})
        return found
    result = locate(evaluate, settings)
    table = pd.DataFrame(scored)
    table.attrs.update(strength=result.fit.strength, lo=result.fit.lo, hi=result.fit.hi, stopped=result.stopped,
                       samples=result.samples, param=param, metric=metric)
    write_outputs(results_folder(out) / folder, table, result, settings)
    return table


def write_outputs(folder: Path, table: pd.DataFrame, result: Result, settings: Settings) -> None:
    """tune.csv (every evaluated cell), tune.json (settings, search path, result) and tune.png."""
    atomic_write_bytes(folder / "tune.csv", table.to_csv(index=False).encode())
    record = {"settings": settings.__dict__, "stopped": result.stopped, "samples": result.samples,
              "strength": result.fit.strength, "interval": [result.fit.lo, result.fit.hi],
              "path": [{"n": f.n, "strength": f.strength, "lo": f.lo, "hi": f.hi, "resolved": f.resolved,
                        "window": list(f.window)} for f in result.path]}
    atomic_write_bytes(folder / "tune.json", json.dumps(record, indent=1).encode())
    plot(folder / "tune.png", table, result)


def plot(path: Path, table: pd.DataFrame, result: Result) -> None:
    """The metric against strength at each N, the last fit's quadratic and the interval on w*."""
    from bench.report.plots import plt, save_figure
    metric = table.attrs["metric"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for n, group in table.groupby("n"):
        group = group.sort_values("strength")
        ax.plot(group.strength, group[metric], "o-", ms=4, lw=0.8, label=f"N = {n}")
    last = table[table.n == result.fit.n]
    xs = np.array(result.fit.window)
    ys = last.set_index("strength").reindex(xs)[metric].values
    if len(xs) >= 3 and np.isfinite(ys).all():
        grid = np.linspace(xs.min(), xs.max(), 100)
        ax.plot(grid, np.polyval(np.polyfit(xs, ys, 2), grid), "k--", lw=1, label="last fit")
    ax.axvspan(result.fit.lo, result.fit.hi, color="tab:red", alpha=0.15, label="95% interval on w*")
    ax.axvline(result.fit.strength, color="tab:red", lw=1)
    ax.set(xlabel=f"strength ({table.attrs['param']})", ylabel=metric,
           title=f"{metric}: w* = {result.fit.strength:.3g} [{result.fit.lo:.3g}, {result.fit.hi:.3g}] ({result.stopped})")
    ax.legend(fontsize=7)
    save_figure(fig, path)
