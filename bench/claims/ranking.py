"""Methods ranked by the FID they reach at matched quality: read along each method's lower envelope
(bench/stats/envelope.py) at the 25/50/75% quantiles of the paper's CFG curve's IS and class
accuracy, with the best cell's FID interval and the cost per image."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.claims.sweeps import paper_rows
from bench.stats.envelope import envelope_at


def _best_interval(group: pd.DataFrame) -> str:
    """The bootstrap interval of the cell with the lowest FID ("" when the cell has none)."""
    best = group.loc[group.fid.idxmin()]
    return f"[{best.fid_lo:.3f}, {best.fid_hi:.3f}]" if pd.notna(best.get("fid_lo", np.nan)) else ""

def method_ranking(main: pd.DataFrame) -> pd.DataFrame:
    """Methods ranked by FID at matched IS and at matched class accuracy (three levels each, spread
    over the range the paper's CFG curve covers), with their cost (images/s and NFE per image)."""
    guided = main[main.strength.fillna(0) > 0]
    reference = paper_rows(main)
    if guided.method_label.nunique() < 3 or reference.empty:
        return pd.DataFrame()
    rows = {label: {"method": label, "cells": len(g), "best FID": g.fid.min(), "best FID's 95% interval": _best_interval(g),
                    "images/s": g.images_per_second.median(), "NFE/image": g.nfe_per_image.median()}
            for label, g in guided.groupby("method_label")}
    for x, name in (("is_mean", "IS"), ("class_accuracy", "acc")):
        if x not in main or main[x].isna().all():
            continue
        targets = np.quantile(reference[x], [0.25, 0.5, 0.75])
        for label, g in guided.groupby("method_label"):
            for t, value in zip(targets, envelope_at(g[x].values, g.fid.values, targets, outside=np.nan)):
                rows[label][f"FID @ {name}={t:.4g}"] = value
    out = pd.DataFrame(list(rows.values()))
    key = [c for c in out.columns if c.startswith("FID @ IS=")][1:2] or ["best FID"]
    out = out.sort_values(key + ["best FID"], na_position="last").reset_index(drop=True)
    empty = [c for c in out.columns if c.startswith("FID @ ") and out[c].isna().all()]
    out = out.drop(columns=empty)
    out.attrs["left_out"] = empty  # levels no method's curve reaches (the report says so)
    return out
