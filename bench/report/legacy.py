"""Cells scored before every interval targeted its own value (no `interval_method` in metrics.json),
read into today's columns without recomputing anything:

  <fid>_cf_inf(_se)       their `<fid>_inf` columns, which held Chong & Forsyth's extrapolation;
  <fid>_inf, _inf_lo/_hi  their bootstrap interval was the basic one, an interval for the distance at
                          N -> inf: it moves to FID∞, with the bootstrap's bias-corrected estimate
                          2 t - mean(t*) from the cell's bootstrap.npz, where N > d (else NaN, as today);
  <metric>_lo/_hi         NaN for the metrics whose interval at N is now the jackknife's (Frechet, IS,
                          recall): it needs the features, which are not stored. Rerunning the cell
                          gives it.
The feature dimension of such a cell follows from its extractor's name: those cells used only the
domain evaluator (64-d features) and the FID Inception (2048-d pool features).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.infra.store import read_replicates

FRECHET = {"fid": "extractor", "fid_inception": "inception_extractor", "fid_domain": "domain_extractor"}
AT_N = ("is_mean", "recall")
DIMS = {"gb-inception": 2048, "gb-evaluator": 64}


def _dim(extractor) -> float:
    return next((d for prefix, d in DIMS.items() if isinstance(extractor, str) and extractor.startswith(prefix)), np.nan)


def _convert(row: pd.Series) -> pd.Series:
    row = row.copy()
    replicates = read_replicates(Path(row.run_dir)) if isinstance(row.get("run_dir"), str) else {}
    for metric, extractor in FRECHET.items():
        if pd.isna(row.get(metric)):
            continue
        row[f"{metric}_cf_inf"], row[f"{metric}_cf_inf_se"] = row.get(f"{metric}_inf"), row.get(f"{metric}_inf_se")
        draws = replicates.get(metric)
        dim = _dim(row.get(extractor))
        estimable = draws is not None and row.num_samples > dim
        row[f"{metric}_dim"] = dim
        row[f"{metric}_inf"] = max(2 * row[metric] - float(np.mean(draws)), 0.0) if estimable else np.nan
        row[f"{metric}_inf_lo"] = row.get(f"{metric}_lo") if estimable else np.nan
        row[f"{metric}_inf_hi"] = row.get(f"{metric}_hi") if estimable else np.nan
        row[f"{metric}_lo"] = row[f"{metric}_hi"] = np.nan
    if "is_inf" in row:
        row["is_cf_inf"], row["is_cf_inf_se"] = row.get("is_inf"), row.get("is_inf_se")
    for metric in AT_N:
        row[f"{metric}_lo"] = row[f"{metric}_hi"] = np.nan
    return row


def with_current_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its legacy rows converted; rows scored with today's intervals are left as they are."""
    legacy = table["interval_method"].isna() if "interval_method" in table else pd.Series(True, index=table.index)
    if not legacy.any():
        return table
    table = table.copy()
    for column in ("fid_cf_inf", "fid_inf_lo", "fid_inf_hi", "interval_method"):
        if column not in table:
            table[column] = np.nan
    table["interval_method"] = table["interval_method"].astype(object)
    converted = table[legacy].apply(_convert, axis=1)
    table = pd.concat([table[~legacy], converted]).loc[table.index]
    table.loc[legacy, "interval_method"] = "scored before intervals at N (bench/report/legacy.py)"
    return table
