"""guidance-bench: classifier-free guidance (Ho & Salimans) against noisy-classifier
guidance (Dhariwal & Nichol) under one harness: train, sample, measure, plot.

The Python API (for notebooks and scripts):

    from bench import run_suite, build_report, load_results
    table = run_suite("tiny", out="results")                  # pandas DataFrame, one row per cell
    table = run_suite("mnist", only="cfg_p0.2_*", overrides=["sample.num_samples=1024"], force=True)
    build_report("mnist", "results")                          # table.csv, figures/, report.md
    stored = load_results("results/mnist")                    # the stored cells, nothing recomputed
    cells = tune("mnist", "cfg", "fid")                       # w* and its interval in cells.attrs
    best = tune("mnist", ["cfg", "apg"], "is_mean", at_most=("fid", 3.0))   # one row per method, compared
    by = tune("mnist", "interval", vary=("lambda_low", [-4, -2]))           # one row per value, compared

`run_cells(suite, cells, out)` runs cells you built yourself (bench.suites.cells.select_cells, or
bench.suites.cells.Cell(name, RunSpec(...))). The names are resolved on first use, so
`import bench.spec.sections` or `import bench.report.table` stays light (no training stack, no
plotting library).

The packages, in the order they import each other (each only those before it; `baselines` is the
top-level package of the noisy-classifier baseline, between the models it trains and the sources that
use it): LAYERS below, held by tests/test_layers_and_logs.py.
"""
from importlib import import_module

__version__ = "0.1.0"

LAYERS = ("spec", "infra", "data", "models", "baselines", "sources", "guidance", "sampling", "suites", "stats",
          "evaluation", "claims", "report", "runner", "tuning", "perf")
ENTRY_POINTS = ("run", "figures", "regression", "tune")  # python -m bench.<name>: thin modules over runner and report

_API = {
    "run_suite": ("bench.runner.suite", "run_suite"),
    "run_cells": ("bench.runner.suite", "run_cells"),
    "select_cells": ("bench.suites.cells", "select_cells"),
    "load_results": ("bench.infra.store", "load_runs"),
    "build_report": ("bench.report.build", "build"),
    "tune": ("bench.tuning.choices", "tune"),
    "BenchError": ("bench.spec.errors", "BenchError"),
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    module, attribute = _API[name]
    return getattr(import_module(module), attribute)
