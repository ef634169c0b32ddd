"""The tuner on a suite's model: every strength it asks for is scored by an ordinary cell (run, cached and
resumed by bench.runner like any suite's, under results/<suite>-tune-<method>/), and the search of
bench/tuning/search.py reads each cell's metric and its bootstrap replicates. Cells at one N share their
sample seeds and bootstrap draws, so the fit's comparisons are paired; N grows by the search's factor, and
the per-sample seed streams make a cell at 4N hold the samples of the cell at N.

`tune(suite, method, metric)` returns the evaluated cells as a DataFrame (attrs: w*, its interval, how the
search stopped) and writes tune.csv, tune.json (the search path) and tune.png beside the cells. With
`at_most=("fid", F)` (or `at_least`) the metric is optimised subject to a bound on a second one: IS or precision
maximised at a floor on FID.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bench.guidance.registry import METHODS, strength, with_strength
from bench.infra.store import atomic_write_bytes, read_replicates, results_folder
from bench.runner.suite import run_cells
from bench.spec.errors import SpecError
from bench.spec.overrides import apply_overrides, parse_overrides
from bench.suites.cells import SUITES, Cell, select_cells
from bench.tuning.frontiers import FRONTIERS
from bench.tuning.search import Evaluation, Result, Settings, fit_degree, locate

HIGHER_IS_BETTER = ("is_mean", "precision", "recall", "density", "coverage", "class_accuracy")
CURVE_COLUMNS = ("fid", "is_mean", "class_accuracy")  # kept beside the tuned metric: a method's FID-IS curve


def base_cell(suite: str, method: str, overrides: Sequence[str]) -> tuple[Cell, str, float]:
    """The suite's first cell guided by `method` (its model, sampler and N), the method's strength
    parameter, and the largest strength the suite gives it (the default search range is [0, that])."""
    if method not in METHODS:
        raise SpecError(f"method {method!r} is not registered; known: {', '.join(sorted(METHODS))}")
    cells = [c for c in select_cells(suite, overrides=overrides) if c.spec.guidance.method == method]
    if not cells:
        raise SpecError(f"suite {suite} has no {method} cell to take the model from; choose a suite that runs it")
    param = strength_of(cells[0])[0]
    return cells[0], param, float(max(strength_of(c)[1] or 0.0 for c in cells))


@dataclass(frozen=True)
class Source:
    """What a search runs on: the cell whose model, sampler and method it varies, its default strength range,
    first N and budget."""
    cell: Cell
    lo: float
    hi: float
    n0: int
    budget: int


def tuning_source(name: str, method: str, overrides: Sequence[str] = ()) -> Source:
    """The model a search runs on: a suite's first cell of `method` (range [0, the suite's largest strength],
    N0 the suite's N, budget 64 N0), or a frontier's (bench/tuning/frontiers.py: every method on its model,
    with its range, N0 and budget), so every method can be tuned on the frontiers' models."""
    if name in FRONTIERS and name not in SUITES:
        frontier = FRONTIERS[name]
        if method not in METHODS:
            raise SpecError(f"method {method!r} is not registered; known: {', '.join(sorted(METHODS))}")
        cell = frontier.tuning_base(method)
        cell = Cell(cell.name, apply_overrides(cell.spec, parse_overrides(list(overrides))))
        return Source(cell, *frontier.search_range(method), frontier.n0, frontier.budget)
    cell, _, top = base_cell(name, method, overrides)
    n0 = cell.spec.sample.num_samples
    return Source(cell, 0.0, top, n0, 64 * n0)


def strength_of(cell: Cell) -> tuple[str, float | None]:
    """(parameter, value) of the strength of a cell's guidance, through wrappers; refused for a method without one."""
    param, value = strength(cell.spec.guidance.method, cell.spec.guidance.kwargs())
    if param is None:
        raise SpecError(f"method {cell.spec.guidance.method!r} has no strength to tune")
    return param, value


def cell_at(base: Cell, param: str, strength_value: float, n: int, seed: int | None = None, name: str = "") -> Cell:
    """`base` with its strength at `strength_value` and N samples (from sample seed `seed`, default the base's)."""
    g = base.spec.guidance
    params = with_strength(g.method, g.kwargs(), strength_value)
    spec = replace(base.spec, guidance=replace(g, params=tuple(sorted(params.items()))),
                   sample=replace(base.spec.sample, num_samples=int(n),
                                  seed=base.spec.sample.seed if seed is None else int(seed)))
    return Cell(name or f"tune_{g.method}_{param}{strength_value:.6g}_N{n}", spec)


def tune(suite: str, method: str = "cfg", metric: str = "fid", *, lo: float | None = None, hi: float | None = None,
         delta: float | None = None, n0: int | None = None, budget: int | None = None, overrides: Sequence[str] = (),
         at_most: tuple[str, float] | None = None, at_least: tuple[str, float] | None = None,
         out: str | Path = "results", device: str | None = None, quiet: bool = True) -> pd.DataFrame:
    """Locate the strength of `method` that optimises `metric` (minimised, or maximised for IS, precision,
    recall, density, coverage and accuracy) on the model of `suite` (a suite, or a frontier: tuning_source),
    subject to `at_most=(metric, bound)` or `at_least=...` where given; see bench/tuning/search.py."""
    source = tuning_source(suite, method, overrides)
    return tune_cell(source.cell, metric, search_folder(f"{suite}-tune-{method}", metric, at_most, at_least),
                     lo=source.lo if lo is None else lo, hi=source.hi if hi is None else hi, delta=delta,
                     n0=n0 or source.n0, budget=budget or source.budget, at_most=at_most, at_least=at_least, out=out,
                     device=device, quiet=quiet)


def search_folder(stem: str, metric: str, at_most: tuple[str, float] | None = None,
                  at_least: tuple[str, float] | None = None) -> str:
    """The folder of a search: `stem` for FID, else with the metric and the bound it was optimised at (each
    search's tune.csv, tune.json and figure are its own; the cells underneath are cached by their specs)."""
    bounds = [f"{name}-at-{side}-{value:g}" for side, given in (("most", at_most), ("least", at_least))
              if given is not None for name, value in [given]]
    return "-".join([stem, *([metric] if metric != "fid" or bounds else []), *bounds])


def _bound(metric: str, at_most: tuple[str, float] | None, at_least: tuple[str, float] | None) -> tuple[str, float, bool] | None:
    """(constraint metric, bound, whether it is an upper bound), checked before any work."""
    if at_most is not None and at_least is not None:
        raise SpecError("give one bound, at_most or at_least, not both")
    chosen = at_most if at_most is not None else at_least
    if chosen is None:
        return None
    name, value = chosen
    if name == metric:
        raise SpecError(f"the bound is on {name!r}, the metric being optimised; bound a second metric (e.g. "
                        "optimise is_mean with at_most=('fid', 10))")
    if not np.isfinite(float(value)):
        raise SpecError(f"the bound on {name!r} must be a finite number, got {value!r}")
    return name, float(value), at_most is not None


def tune_cell(base: Cell, metric: str, folder: str, *, lo: float, hi: float, delta: float | None = None,
              n0: int | None = None, budget: int | None = None, at_most: tuple[str, float] | None = None,
              at_least: tuple[str, float] | None = None, out: str | Path = "results",
              device: str | None = None, quiet: bool = True) -> pd.DataFrame:
    """The search on `base`'s model, sampler and method, its cells under <out>/<folder>/: the evaluated
    cells as a DataFrame, with w*, its interval and how the search stopped in `attrs`."""
    param = strength_of(base)[0]
    n0 = n0 or base.spec.sample.num_samples
    bound = _bound(metric, at_most, at_least)
    settings = Settings(lo=lo, hi=hi, delta=delta or (hi - lo) / 20, n0=n0, budget=budget or 64 * n0,
                        maximise=metric in HIGHER_IS_BETTER, bound=None if bound is None else bound[1],
                        at_most=bound is None or bound[2])
    scored: list[dict] = []
    read = (metric,) if bound is None else (metric, bound[0])

    def evaluate(strengths: Sequence[float], n: int) -> list[Evaluation]:
        cells = [cell_at(base, param, w, n) for w in strengths]
        table = run_cells(folder, cells, out, device=device, quiet=quiet, say=(lambda *a, **k: None) if quiet else None)
        found = []
        for w, cell, (_, row) in zip(strengths, cells, table.iterrows()):
            stored = read_replicates(results_folder(out) / folder / "runs" / cell.run_id)
            values = [_metric_of(cell, row, stored, name) for name in read]
            found.append(Evaluation(float(w), n, *values[0], *(values[1] if bound else ())))
            scored.append({"strength": float(w), "n": n, **{k: row.get(k) for k in CURVE_COLUMNS if k in row},
                           **{name: v[0] for name, v in zip(read, values)}, "cell": cell.name, "run_id": cell.run_id})
        return found
    result = locate(evaluate, settings)
    table = pd.DataFrame(scored)
    table.attrs.update(strength=result.fit.strength, lo=result.fit.lo, hi=result.fit.hi, stopped=result.stopped,
                       samples=result.samples, param=param, metric=metric, maximise=settings.maximise,
                       range=(lo, hi), delta=settings.delta,
                       bound=None if bound is None else {"metric": bound[0], "value": bound[1], "at_most": bound[2]})
    write_outputs(results_folder(out) / folder, table, result, settings)
    return table


def _metric_of(cell: Cell, row: pd.Series, stored: dict, metric: str) -> tuple[float, np.ndarray]:
    """A cell's value of `metric` and its bootstrap replicates, refused where the cell has either missing."""
    if metric not in row or pd.isna(row[metric]):
        raise SpecError(f"the cells give no {metric!r}; choose a metric their extractor computes (e.g. fid)")
    if stored.get(metric) is None:
        raise SpecError(f"{cell.name} stored no bootstrap replicates of {metric}: the search needs them")
    return float(row[metric]), np.asarray(stored[metric])


def write_outputs(folder: Path, table: pd.DataFrame, result: Result, settings: Settings) -> None:
    """tune.csv (every evaluated cell), tune.json (settings, search path, result) and tune.png."""
    atomic_write_bytes(folder / "tune.csv", table.to_csv(index=False).encode())
    record = {"settings": settings.__dict__, "bound": table.attrs.get("bound"), "stopped": result.stopped, "samples": result.samples,
              "strength": result.fit.strength, "interval": [result.fit.lo, result.fit.hi],
              "path": [{"n": f.n, "strength": f.strength, "lo": f.lo, "hi": f.hi, "resolved": f.resolved,
                        "brackets": f.brackets, "shift": f.shift, "window": list(f.window)} for f in result.path]}
    atomic_write_bytes(folder / "tune.json", json.dumps(record, indent=1).encode())
    plot(folder / "tune.png", table, result)


def plot(path: Path, table: pd.DataFrame, result: Result) -> None:
    """The metric against strength at each N, the last fit's polynomial and the interval on w*; with a bound,
    the bounded metric on a second axis, its last fit and the bound."""
    from bench.report.plots import plt, save_figure
    metric, bound = table.attrs["metric"], table.attrs.get("bound")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for n, group in table.groupby("n"):
        group = group.sort_values("strength")
        ax.plot(group.strength, group[metric], "o-", ms=4, lw=0.8, label=f"N = {n}")
    last = table[table.n == result.fit.n].set_index("strength")
    _last_fit(ax, result.fit.window, last, metric, "k--", "last fit")
    ax.axvspan(result.fit.lo, result.fit.hi, color="tab:red", alpha=0.15, label="95% interval on w*")
    ax.axvline(result.fit.strength, color="tab:red", lw=1)
    title = f"{metric}: w* = {result.fit.strength:.3g} [{result.fit.lo:.3g}, {result.fit.hi:.3g}] ({result.stopped})"
    ax.set(xlabel=f"strength ({table.attrs['param']})", ylabel=metric)
    if bound is not None:
        other, sign = ax.twinx(), "<=" if bound["at_most"] else ">="
        bounded = table.sort_values("strength")
        other.plot(bounded.strength, bounded[bound["metric"]], "s", ms=3, color="tab:gray", alpha=0.6)
        _last_fit(other, result.fit.window, last, bound["metric"], ":", f"{bound['metric']}, last fit", color="tab:gray")
        other.axhline(bound["value"], color="tab:gray", lw=1, ls="-.", label=f"bound: {bound['metric']} {sign} {bound['value']:g}")
        other.set_ylabel(bound["metric"])
        other.legend(fontsize=7, loc="lower right")
        title += f", {bound['metric']} {sign} {bound['value']:g}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def _last_fit(ax, window: Sequence[float], last: pd.DataFrame, column: str, style: str, label: str, **kwargs) -> None:
    """The polynomial the search fitted to `column` on the last fit's window, drawn across it."""
    xs = np.array(window)
    ys = last[column].reindex(xs).values
    if len(xs) >= 3 and np.isfinite(ys).all():
        grid = np.linspace(xs.min(), xs.max(), 100)
        ax.plot(grid, np.polyval(np.polyfit(xs, ys, fit_degree(len(xs))), grid), style, lw=1, label=label, **kwargs)
