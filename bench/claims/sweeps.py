"""Which cells of a suite's table a claim or a figure is about: the paper's method, and the main
sweep (the suite's most common step count and its first sample-seed set)."""
from __future__ import annotations

import pandas as pd

PAPER_METHOD = "cfg"  # the method whose claims the paper makes


def paper_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The cells of the paper's method (CFG), whose sweeps the paper's figures and claims are about."""
    return table[table.method == PAPER_METHOD]


def main_sweep(table: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Cells at the suite's default steps and first seed set, with those steps and that seed."""
    steps = int(table.steps.mode().iloc[0])
    seed = int(table.seed.min())
    return table[(table.steps == steps) & (table.seed == seed)], steps, seed
