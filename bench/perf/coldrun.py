"""What a cold-cache suite run shows, read from its stored folder (results/perf/mnist_cold/: the cells'
metrics.json and the stage ledger), against the stored suite and against the plan:

  cold_vs_stored   every cell's metrics beside the stored suite's cell of the same run id: the default path
                   (feature runtime included) must not change the science, so each difference is compared
                   with its tolerance (bitwise-equal samples give equal evaluator metrics; Inception FID may
                   move by the runtimes' RUNTIME_FID_TOLERANCE), and each cell's bootstrap share of its time;
  plan_vs_run      `--dry-run`'s price of the same suite from an empty cache and no ledgers (timed here, now)
                   beside what each stage took in the run (the ledger), and their ratio.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from bench.evaluation.runtime_choice import RUNTIME_FID_TOLERANCE

EQUAL = 1e-9  # relative: metrics of bitwise-equal samples and features
COMPARED = {"fid": EQUAL, "is_mean": EQUAL, "class_accuracy": EQUAL, "fid_inception": RUNTIME_FID_TOLERANCE}


def cold_vs_stored(cold: Path, stored: Path) -> pd.DataFrame:
    """One row per (cell, metric): cold-run value, stored value, difference, tolerance, within it; and the
    cell's bootstrap seconds and their share of its sampling + features + scoring seconds."""
    from bench.infra.store import load_runs
    runs, reference = load_runs(cold), load_runs(stored).set_index("run_id")
    rows = []
    for cell in runs.itertuples():
        if cell.run_id not in reference.index:
            continue
        old = reference.loc[cell.run_id]
        cell_seconds = cell.sampling_seconds + cell.metrics_seconds
        for metric, tolerance in COMPARED.items():
            new_value, old_value = getattr(cell, metric, float("nan")), old.get(metric, float("nan"))
            if pd.isna(new_value) or pd.isna(old_value):
                continue
            allowed = tolerance if metric == "fid_inception" else tolerance * max(1.0, abs(old_value))
            rows.append({"cell": cell.cell, "metric": metric, "cold": new_value, "stored": old_value,
                         "difference": new_value - old_value, "tolerance": allowed,
                         "within": abs(new_value - old_value) <= allowed,
                         "runtime": getattr(cell, "inception_runtime" if metric == "fid_inception" else "extractor_runtime"),
                         "bootstrap_seconds": cell.bootstrap_seconds, "cell_seconds": cell_seconds,
                         "bootstrap_share": cell.bootstrap_seconds / cell_seconds})
    return pd.DataFrame(rows)


def plan_vs_run(cold: Path, suite: str = "mnist") -> pd.DataFrame:
    """The plan of `suite` priced from an empty cache and no ledgers (so every rate is timed now) beside the
    cold run's stage ledger, per stage, with the ratio plan / run."""
    from bench.infra.stages import LEDGER, by_stage, read_ledger
    from bench.runner.plan import STAGE_COLUMNS, plan
    from bench.suites.cells import SUITES
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as results:
        previous = os.environ.get("BENCH_CACHE")
        os.environ["BENCH_CACHE"] = cache
        try:
            priced = plan(SUITES[suite].build(), "cpu", results, suite)
        finally:
            os.environ.pop("BENCH_CACHE") if previous is None else os.environ.__setitem__("BENCH_CACHE", previous)
    ledger = by_stage(read_ledger(cold / LEDGER)).set_index("stage").seconds
    stage_of = {"reference_s": ["reference"], "train_s": ["train"], "sampling_s": ["sampling"],
                "features_s": ["features"], "metrics_s": ["metrics"]}
    rows = [{"stage": column.removesuffix("_s"), "planned_minutes": priced[column].sum(skipna=False) / 60,
             "run_minutes": sum(ledger.get(s, 0.0) for s in stage_of[column]) / 60} for column in STAGE_COLUMNS]
    rows.append({"stage": "total (these stages)", "planned_minutes": sum(r["planned_minutes"] for r in rows),
                 "run_minutes": sum(r["run_minutes"] for r in rows)})
    other = ledger.drop([s for stages in stage_of.values() for s in stages], errors="ignore").sum()
    rows.append({"stage": "other ledger stages (data, figures)", "planned_minutes": float("nan"), "run_minutes": other / 60})
    table = pd.DataFrame(rows)
    table["plan_over_run"] = table.planned_minutes / table.run_minutes
    return table
