"""The CI regression gate: compare a suite's fresh table with its committed baseline.

A regression is a change that is both real and large enough to matter: the paired 95% bootstrap
interval of current - baseline (the same seeds and bootstrap draws, bench/stats/paired.py) excludes 0,
and |current - baseline| exceeds the metric's practical size, the standard deviation measured
across independent sample-seed sets (a change smaller than another seed set would give is not one
a user could notice). A missing metric is a regression.

`results/<suite>/baseline.csv` holds the metrics of one run with the default seeds and
`baseline_replicates.npz` their bootstrap replicates; `results/<suite>/tolerances.csv` holds the
practical size per metric and the command that measured it.

    python -m bench.regression --suite ci --seeds 0 1000 2000 3000   # re-measure all three files
    python -m bench.run --suite ci --check                           # the gate
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.infra.store import read_replicates
from bench.spec.errors import BenchError
from bench.stats.intervals import paired_interval

REPO_RESULTS = Path(__file__).resolve().parents[2] / "results"
CHECKED_METRICS = ("fid", "is_mean", "class_accuracy", "precision", "recall")
BASELINE_REPLICATES = "baseline_replicates.npz"


def _key(cell: str, metric: str) -> str:
    return f"{cell}|{metric}"


def compare(current: pd.DataFrame, baseline: pd.DataFrame, tolerances: pd.DataFrame,
            current_replicates: dict[str, np.ndarray], baseline_replicates: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per (cell, metric): baseline, current, the paired interval of the difference, the
    practical size, and whether it regressed. Replicates are keyed `cell|metric`."""
    size = dict(zip(tolerances.metric, tolerances.practical_size))
    now = current.set_index("cell")
    rows = []
    for _, base in baseline.iterrows():
        for metric in size:
            value = now.at[base.cell, metric] if base.cell in now.index and metric in now else np.nan
            key = _key(base.cell, metric)
            if key in current_replicates and key in baseline_replicates and not np.isnan(value):
                diff, lo, hi = paired_interval(value, base[metric], current_replicates[key], baseline_replicates[key])
            else:
                diff, lo, hi = value - base[metric], np.nan, np.nan
            real = not (lo <= 0 <= hi)  # also True when there is no interval: then the size alone decides
            rows.append({"cell": base.cell, "metric": metric, "baseline": base[metric], "current": value,
                         "difference": diff, "lo": lo, "hi": hi, "practical_size": size[metric],
                         "regressed": bool(np.isnan(value) or (real and abs(diff) > size[metric]))})
    return pd.DataFrame(rows)


def suite_replicates(table: pd.DataFrame, suite_dir: Path) -> dict[str, np.ndarray]:
    """The replicates of a table's cells, keyed `cell|metric`."""
    out = {}
    for row in table.itertuples():
        for metric, values in read_replicates(suite_dir / "runs" / row.run_id).items():
            out[_key(row.cell, metric)] = values
    return out


class BaselineError(BenchError, ValueError):
    """A suite's baseline files are missing or unreadable; the message names the file and the repair."""


def read_baseline(suite: str, results: Path = REPO_RESULTS) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """baseline.csv, tolerances.csv and the baseline's replicates of `suite`, each checked before it is
    trusted (the gate runs them only after a fresh run, so this is called before any cell is run)."""
    folder = results / suite
    repair = f"create or repair them with: python -m bench.regression --suite {suite}"
    tables = {}
    for name, columns in (("baseline.csv", {"cell"}), ("tolerances.csv", {"metric", "practical_size"})):
        path = folder / name
        if not path.is_file():
            raise BaselineError(f"no baseline file {path}; {repair}")
        try:
            tables[name] = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
            raise BaselineError(f"{path} is not a readable CSV ({type(err).__name__}); {repair}") from None
        if not columns <= set(tables[name].columns) or tables[name].empty:
            raise BaselineError(f"{path} lacks its columns {sorted(columns)} or rows; {repair}")
    sizes = pd.to_numeric(tables["tolerances.csv"].practical_size, errors="coerce")
    if not (np.isfinite(sizes) & (sizes > 0)).all():
        raise BaselineError(f"{folder / 'tolerances.csv'}: every practical_size must be a finite number > 0; {repair}")
    replicates = {}
    if (folder / BASELINE_REPLICATES).exists():
        try:
            with np.load(folder / BASELINE_REPLICATES, allow_pickle=False) as stored:
                replicates = {key: stored[key] for key in stored.files}
        except Exception as err:
            raise BaselineError(f"{folder / BASELINE_REPLICATES} is not a readable .npz ({type(err).__name__}); {repair}") from None
    return tables["baseline.csv"], tables["tolerances.csv"], replicates


def check_against_baseline(suite: str, current: pd.DataFrame, suite_dir: Path, results: Path = REPO_RESULTS) -> int:
    folder = results / suite
    baseline, tolerances, baseline_replicates = read_baseline(suite, results)
    report = compare(current, baseline, tolerances, suite_replicates(current, suite_dir), baseline_replicates)
    bad = report[report.regressed]
    if len(bad):
        print(f"REGRESSION: {len(bad)} of {len(report)} checks changed by more than their practical size, "
              f"with a paired 95% interval that excludes 0")
        print(bad.to_string(index=False, float_format="%.4f"))
        return 1
    print(f"check passed: {len(report)} metrics against {folder / 'baseline.csv'}; largest |difference| / practical "
          f"size {np.nanmax(np.abs(report.difference) / report.practical_size):.2f}; "
          f"{int((~report.lo.isna()).sum())} with paired intervals")
    return 0
