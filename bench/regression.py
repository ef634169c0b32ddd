"""The CI regression gate: compare a suite's fresh table with its committed baseline.

`results/<suite>/baseline.csv` holds the metrics of one run with the default seeds;
`results/<suite>/tolerances.csv` holds, per metric, the standard deviation measured across
independent sample-seed sets (pooled over cells) and the tolerance, k times that sd.

    python -m bench.regression --suite ci --seeds 0 1000 2000 3000   # re-measure both files
    python -m bench.run --suite ci --check                           # the gate
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .pipeline import run_suite
from .store import atomic_write_bytes

REPO_RESULTS = Path(__file__).resolve().parent.parent / "results"
CHECKED_METRICS = ("fid", "is_mean", "class_accuracy", "precision", "recall")
TOLERANCE_SDS = 4.0


def compare(current: pd.DataFrame, baseline: pd.DataFrame, tolerances: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, metric): baseline, current, difference, tolerance, and whether it regressed."""
    tol = dict(zip(tolerances.metric, tolerances.tolerance))
    now = current.set_index("cell")
    rows = []
    for _, base in baseline.iterrows():
        for metric in tol:
            value = now.at[base.cell, metric] if base.cell in now.index else np.nan
            diff = value - base[metric]
            rows.append({"cell": base.cell, "metric": metric, "baseline": base[metric], "current": value,
                         "difference": diff, "tolerance": tol[metric],
                         "regressed": bool(np.isnan(value) or abs(diff) > tol[metric])})
    return pd.DataFrame(rows)


def check_against_baseline(suite: str, current: pd.DataFrame, results: Path = REPO_RESULTS) -> int:
    folder = results / suite
    if not (folder / "baseline.csv").exists():
        print(f"error: no baseline at {folder / 'baseline.csv'}; create it with "
              f"python -m bench.regression --suite {suite}", file=sys.stderr)
        return 2
    report = compare(current, pd.read_csv(folder / "baseline.csv"), pd.read_csv(folder / "tolerances.csv"))
    bad = report[report.regressed]
    if len(bad):
        print(f"REGRESSION: {len(bad)} of {len(report)} checks outside tolerance")
        print(bad.to_string(index=False, float_format="%.4f"))
        return 1
    print(f"check passed: {len(report)} metrics within tolerance of {folder / 'baseline.csv'} "
          f"(largest |difference| / tolerance {np.nanmax(np.abs(report.difference) / report.tolerance):.2f})")
    return 0


def measure(suite: str, seeds: list[int], results: Path = REPO_RESULTS) -> None:
    """Run the suite once per sample-seed set; write baseline.csv (first seed) and tolerances.csv."""
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            table = run_suite(suite, Path(tmp) / f"seed{seed}", overrides=[f"sample.seed={seed}"], quiet=True)
            tables.append(table.assign(seed_set=seed))
    both = pd.concat(tables)
    sd = both.groupby("cell")[list(CHECKED_METRICS)].std()
    pooled = np.sqrt((sd ** 2).mean())
    tolerances = pd.DataFrame({"metric": CHECKED_METRICS, "seed_sd": [pooled[m] for m in CHECKED_METRICS],
                               "tolerance": [TOLERANCE_SDS * pooled[m] for m in CHECKED_METRICS],
                               "seed_sets": len(seeds),
                               "command": f"python -m bench.regression --suite {suite} --seeds {' '.join(map(str, seeds))}"})
    baseline = tables[0][["cell", *CHECKED_METRICS]]
    atomic_write_bytes(results / suite / "baseline.csv", baseline.to_csv(index=False).encode())
    atomic_write_bytes(results / suite / "tolerances.csv", tolerances.to_csv(index=False).encode())
    print(tolerances.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.regression", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="ci")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1000, 2000, 3000])
    args = parser.parse_args(argv)
    measure(args.suite, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
