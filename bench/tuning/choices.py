"""Tuning over one more choice: several methods on one model, or one more parameter of a method (the guidance
interval's bounds, the autoguidance guide's training length, p_uncond, the solver's steps) at a few values.

Each choice's strength is tuned by its own search (bench/tuning/cells.py: a profile of the metric's optimum
over the choice, the strength minimised out at each value). Each optimum is then scored again on fresh samples,
every choice at the same N (the largest N any search reached) from the same seed, one beyond every tuning
cell's, so no choice is judged on the samples its strength was picked on. The choices are then compared by
paired differences on those cells (bench/stats/paired.py): against the first method given, or, for the values
of a parameter, against the best value, where a value whose interval holds 0 cannot be told from the best
(the best was picked on these cells, so its lead over a close second is optimistic; the intervals of the
others are what to read). Every cell is an ordinary cell, cached and resumed like any suite's.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from bench.guidance.registry import resolved, with_parameter
from bench.infra.store import atomic_write_bytes, notes_section, results_folder
from bench.report.table import suite_table, write_table
from bench.runner.suite import run_cells
from bench.spec.errors import SpecError
from bench.spec.names import check_plain_name
from bench.spec.overrides import apply_overrides, field_types, parse_overrides
from bench.stats.paired import CellReplicates
from bench.suites.cells import Cell
from bench.tuning.best_against_best import verdict
from bench.tuning.cells import HIGHER_IS_BETTER, Source, cell_at, search_folder, strength_of, tune_cell, tuning_source


def method_parameters(method: str, params: dict[str, Any]) -> list[str]:
    """The parameters of `method` and of every method it wraps (as `params` set them), but their strengths and
    a wrapper's plumbing."""
    names = []
    for record, _ in resolved(method, params):
        names += [p for p in record.params() if p != record.strength and p not in ("inner", "inner_params")]
    return names


def with_choice(base: Cell, key: str, value: Any) -> Cell:
    """`base` with one more parameter set: a spec field ("guide.steps", as --set takes it) or a parameter of its
    guidance method or of a method it wraps ("lambda_low"); anything else is refused with the keys that would be right."""
    if key in field_types():
        return Cell(base.name, apply_overrides(base.spec, parse_overrides([f"{key}={value}"])))
    g = base.spec.guidance
    known = method_parameters(g.method, g.kwargs())
    if key not in known:
        raise SpecError(f"--vary {key}: neither a spec field (section.field, as --set takes) nor a parameter of "
                        f"{g.method!r} (its parameters: {', '.join(known) or 'none'}); its strength is what every "
                        "search tunes")
    params = with_parameter(g.method, g.kwargs(), key, _parsed(value))
    return Cell(base.name, replace(base.spec, guidance=replace(g, params=tuple(sorted(params.items())))))


def _parsed(value: Any) -> Any:
    """A parameter value as the command line gives it: JSON (a number, true, false, null), else the name itself."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def choice_cells(suite: str, methods: Sequence[str], vary: tuple[str, Sequence[Any]] | None = None,
                 overrides: Sequence[str] = ()) -> dict[str, tuple[Cell, Source]]:
    """Each choice's label, the cell its search varies and its source (range, N0, budget): one per method, or one
    per value of `vary` for its one method; a bad method, key or value stops here, before any search runs."""
    if vary is not None and len(methods) != 1:
        raise SpecError(f"--vary tunes one method at each value of a parameter, got {len(methods)} methods")
    if vary is not None and len(vary[1]) < 2:
        raise SpecError(f"--vary {vary[0]}: give at least two values (e.g. {vary[0]}=a,b), got {list(vary[1])}")
    choices: dict[str, tuple[Cell, Source]] = {}
    for method in methods:
        source = tuning_source(suite, method, overrides)
        for value in (vary[1] if vary else [None]):
            label = method if vary is None else f"{vary[0]}={value}"
            choices[label] = (source.cell if vary is None else with_choice(source.cell, vary[0], value), source)
    for cell, _ in choices.values():
        strength_of(cell)
    return choices


def search_plan(suite: str, methods: Sequence[str], vary: tuple[str, Sequence[Any]] | None = None,
                overrides: Sequence[str] = (), budget: int | None = None, out: str | Path = "results",
                device: str = "cpu") -> pd.DataFrame:
    """The most the searches cost, priced before any work as a suite's plan is (bench/runner/plan.py): per
    choice, its whole budget spent at the middle of its range (a search that locates w* stops earlier)."""
    from bench.runner.plan import plan
    cells = [cell_at(cell, strength_of(cell)[0], (source.lo + source.hi) / 2, budget or source.budget,
                     name=f"{label.replace('=', '')}_search_budget")
             for label, (cell, source) in choice_cells(suite, methods, vary, overrides).items()]
    return plan(cells, device, out)


def tune_choices(suite: str, methods: Sequence[str], metric: str = "fid", *, vary: tuple[str, Sequence[Any]] | None = None,
                 lo: float | None = None, hi: float | None = None, final_n: int | None = None, overrides: Sequence[str] = (),
                 out: str | Path = "results", device: str | None = None, quiet: bool = True, **search) -> pd.DataFrame:
    """Tune each method (with `vary`: the one method at each value of the parameter) on `suite`'s model, score
    every optimum at one N on fresh seeds, and compare them paired. Returns one row per choice (its w* with the
    interval, its metric at the optimum with its interval, its difference from the reference with the paired
    interval and the verdict); attrs["searches"] holds each choice's tuning table. `search` takes the settings of
    bench.tuning.cells.tune (delta, n0, budget, at_most, at_least)."""
    if vary is None and len(methods) < 2:
        raise SpecError("tune_choices compares several methods, or one method at several values (vary=...)")
    choices = choice_cells(suite, methods, vary, overrides)
    folders = {label: search_folder(f"{suite}-tune-{label}" if vary is None else f"{suite}-tune-{methods[0]}-{label}",
                                    metric, search.get("at_most"), search.get("at_least")) for label in choices}
    searches = {}
    for label, (cell, source) in choices.items():
        name = folders[label]
        settings = {"n0": source.n0, "budget": source.budget, **{k: v for k, v in search.items() if v is not None}}
        searches[label] = tune_cell(cell, metric, check_plain_name(name, "tuning folder"), lo=source.lo if lo is None else lo,
                                    hi=source.hi if hi is None else hi, out=out, device=device, quiet=quiet, **settings)
    largest = max(int(t.n.max()) for t in searches.values())  # a tuning cell at N uses seeds seed .. seed + N - 1
    n, seed = final_n or largest, max(c.spec.sample.seed for c, _ in choices.values()) + largest
    finals = {label: cell_at(cell, strength_of(cell)[0], searches[label].attrs["strength"], n, seed,
                             name=f"{label.replace('=', '')}_best_N{n}")
              for label, (cell, _) in choices.items()}
    compared = search_folder(f"{suite}-tune-{'+'.join(methods)}" + (f"-by-{vary[0]}" if vary else "-compared"), metric,
                             search.get("at_most"), search.get("at_least"))
    run_cells(check_plain_name(compared, "tuning folder"), list(finals.values()), out, device=device, quiet=quiet,
              say=(lambda *a, **k: None) if quiet else None)
    folder = results_folder(out) / compared
    stored = suite_table(folder)
    write_table(stored, folder / "table.csv")
    table = comparison(stored, finals, searches, metric, by_best=vary is not None)
    atomic_write_bytes(folder / "choices.csv", table.to_csv(index=False).encode())
    table.attrs["searches"] = searches
    table.attrs.update(metric=metric, final_n=n, final_seed=seed, folder=compared)
    command = " ".join(["python -m bench.tune --suite", suite, *(f"--method {m}" for m in methods), f"--metric {metric}",
                        *([f"--vary {vary[0]}={','.join(map(str, vary[1]))}"] if vary else []),
                        *(f"--{k.replace('_', '-')} {b[0]}={b[1]:g}" for k in ("at_most", "at_least") if (b := search.get(k))),
                        *(f"--{k} {search[k]}" for k in ("delta", "n0", "budget") if search.get(k) is not None),
                        *([f"--final-n {final_n}"] if final_n else []), *(f"--set {o}" for o in overrides)])
    write_report(folder, table, command, folders)
    return table


def write_report(folder: Path, table: pd.DataFrame, command: str, search_folders: dict[str, str]) -> None:
    """report.md: each choice's optimum with its interval, its metric there and its paired difference from the
    reference, the cost, and each search's figure; then notes.md, where one is written by hand."""
    a, metric = table.attrs, table.attrs["metric"]
    shown = pd.DataFrame({
        "choice": table.choice, "w* [95% CI]": [f"{r.w_star:.3g} [{r.w_star_lo:.3g}, {r.w_star_hi:.3g}]" for r in table.itertuples()],
        "search": table.search, "tuning samples": table.tuning_samples,
        f"{metric} at w*": [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in table[[metric, f"{metric}_lo", f"{metric}_hi"]].values],
        f"− {table.reference.iloc[0]}": ["" if pd.isna(d) else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in
                                        table[[f"{metric}_minus_reference", f"{metric}_minus_reference_lo",
                                               f"{metric}_minus_reference_hi"]].values],
        "verdict": table.verdict, "NFE/image": table.nfe_per_image, "images/s": table.images_per_second})
    lines = [f"# Tuned choices: `{folder.name}`", "",
             f"Generated by `{command}` (bench/tuning/choices.py) from the cells under this folder and each search's. "
             f"Each choice's strength was tuned by its own search; its optimum was then scored on fresh samples, N = "
             f"{a['final_n']:,} from seed {a['final_seed']:,}, beyond every tuning seed, the same seeds for every choice. "
             f"Differences are each choice minus `{table.reference.iloc[0]}` on those seeds, with the paired 95% bootstrap "
             "interval; **better** / **worse** where it excludes 0 (an approximate test at this N), else *not resolved*. "
             "Where the reference is the best value, it was picked on these cells: read the others' intervals, not its lead.",
             "", shown.to_markdown(index=False, floatfmt=".3f"), "", "## The searches", "",
             *[f"- `{label}`: ![{label}](../{name}/tune.png)" for label, name in search_folders.items()], ""]
    atomic_write_bytes(folder / "report.md", ("\n".join(lines + notes_section(folder)) + "\n").encode())


def comparison(stored: pd.DataFrame, finals: dict[str, Cell], searches: dict[str, pd.DataFrame], metric: str,
               by_best: bool) -> pd.DataFrame:
    """One row per choice: w* and its interval, the optimum cell's metric with its interval, and its paired
    difference from the reference choice (the first, or with `by_best` the best at its optimum) with a verdict."""
    found = {label: stored[stored.run_id == cell.run_id].iloc[0] for label, cell in finals.items()}
    higher = metric in HIGHER_IS_BETTER
    values = {label: row[metric] for label, row in found.items()}
    reference = (max if higher else min)(values, key=values.get) if by_best else next(iter(finals))
    replicates = CellReplicates(pd.DataFrame(found.values()))
    out = []
    for label, row in found.items():
        a = searches[label].attrs
        difference = None if label == reference else replicates.difference(row, found[reference], metric)
        out.append({"choice": label, "reference": reference, "strength_param": a["param"], "w_star": a["strength"],
                    "w_star_lo": a["lo"], "w_star_hi": a["hi"], "search": a["stopped"], "tuning_samples": a["samples"],
                    metric: row[metric], f"{metric}_lo": row.get(f"{metric}_lo"), f"{metric}_hi": row.get(f"{metric}_hi"),
                    **{f"{metric}_minus_reference{end}": np.nan if difference is None else difference[key]
                       for end, key in (("", "difference"), ("_lo", "lo"), ("_hi", "hi"))},
                    "verdict": verdict(difference, lower_is_better=not higher),
                    "nfe_per_image": row.get("nfe_per_image"), "images_per_second": row.get("images_per_second")})
    return pd.DataFrame(out)


def tune(suite: str, method: str | Sequence[str] = "cfg", metric: str = "fid", *,
         vary: tuple[str, Sequence[Any]] | None = None, **settings) -> pd.DataFrame:
    """`bench.tune(...)`: one method's search (bench.tuning.cells.tune: its evaluated cells), or with several
    methods or `vary=(key, values)` their comparison at their optima (tune_choices: one row per choice)."""
    from bench.tuning.cells import tune as tune_one
    methods = [method] if isinstance(method, str) else list(method)
    if vary is None and len(methods) == 1:
        return tune_one(suite, methods[0], metric, **settings)
    return tune_choices(suite, methods, metric, vary=vary, **settings)
