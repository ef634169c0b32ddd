"""guidance-bench: classifier-free guidance (Ho & Salimans) against noisy-classifier
guidance (Dhariwal & Nichol) under one harness: train, sample, measure, plot.

The Python API (for notebooks and scripts):

    from bench import run_suite, build_report, load_results
    table = run_suite("tiny", out="results")                  # pandas DataFrame, one row per cell
    table = run_suite("mnist", only="cfg_p0.2_*", overrides=["sample.num_samples=1024"], force=True)
    build_report("mnist", "results")                          # table.csv, figures/, report.md
    stored = load_results("results/mnist")                    # the stored cells, nothing recomputed

`run_cells(suite, cells, out)` runs cells you built yourself (bench.suites.select_cells, or
bench.suites.Cell(name, RunSpec(...))). The names are resolved on first use, so `import bench.metrics`
or `import bench.config` stays light (no training stack, no plotting library).
"""
from importlib import import_module

__version__ = "0.1.0"

_API = {
    "run_suite": ("bench.pipeline", "run_suite"),
    "run_cells": ("bench.pipeline", "run_cells"),
    "select_cells": ("bench.suites", "select_cells"),
    "load_results": ("bench.store", "load_runs"),
    "build_report": ("bench.figures", "build"),
    "BenchError": ("bench.errors", "BenchError"),
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    module, attribute = _API[name]
    return getattr(import_module(module), attribute)
