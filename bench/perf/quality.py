"""Does the fast path change the science? The ci suite run with fp32 eager, with --fast, and with
bf16 forced: each variant minus fp32 with its paired 95% bootstrap interval, and in units of the
seed spread measured for the CI gate (results/ci/tolerances.csv)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from bench.infra.store import read_replicates
from bench.perf.workload import QUALITY_METRICS
from bench.runner.suite import run_suite
from bench.stats.intervals import paired_interval


def quality_comparison(results: Path) -> pd.DataFrame:
    """The ci suite with fp32, --fast and bf16 forced: each variant minus fp32 with its paired 95%
    bootstrap interval (same seeds, same draws), and in units of the metric's seed sd."""
    variants = {"fp32": {}, "fast": {"fast": True}, "bf16": {"fast": True, "overrides": ["sample.precision=bf16"]}}
    tables, replicates = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in variants.items():
            tables[name] = run_suite("ci", Path(tmp) / name, quiet=True, **options).set_index("cell")
            replicates[name] = {cell: read_replicates(Path(tmp) / name / "ci" / "runs" / run_id)
                                for cell, run_id in tables[name].run_id.items()}
    sd = pd.read_csv(results / "ci" / "tolerances.csv").set_index("metric").practical_size
    rows = []
    for cell in tables["fp32"].index:
        for metric in QUALITY_METRICS:
            row = {"cell": cell, "metric": metric, "fp32": tables["fp32"].at[cell, metric], "seed_sd": sd[metric]}
            for name in ("fast", "bf16"):
                diff, lo, hi = paired_interval(tables[name].at[cell, metric], row["fp32"],
                                               replicates[name][cell][metric], replicates["fp32"][cell][metric])
                row.update({name: tables[name].at[cell, metric], f"{name}_minus_fp32": diff,
                            f"{name}_minus_fp32_lo": lo, f"{name}_minus_fp32_hi": hi,
                            f"{name}_minus_fp32_in_sd": diff / sd[metric]})
            rows.append(row)
    for cell in tables["fp32"].index:  # throughput beside: the ratio to fp32, not in sd units
        row = {"cell": cell, "metric": "images_per_second", "fp32": tables["fp32"].at[cell, "images_per_second"]}
        for name in ("fast", "bf16"):
            row[name] = tables[name].at[cell, "images_per_second"]
            row[f"{name}_over_fp32"] = row[name] / row["fp32"]
        rows.append(row)
    return pd.DataFrame(rows)
