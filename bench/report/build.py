"""Rebuild a suite's table.csv, figures/ and report.md from its stored runs, recomputing nothing.
Several result folders (for example the shards of a cluster sweep) merge into one table."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.markdown import write_report
from bench.report.plots import FIGURES, plot_classifier_accuracy
from bench.report.table import suite_table, write_table
from bench.suites import cells as suite_cells


def build(suite: str, out: str | Path, extra: list[Path] = ()) -> list[str]:
    """Rebuild table.csv, figures/ and report.md of a suite; returns the figure names written."""
    suite_dir = Path(out) / suite
    table = suite_table(suite_dir, extra)
    write_table(table, suite_dir / "table.csv")
    written = []
    for name, fn in FIGURES.items():
        fn(table, suite_dir / "figures" / name)
        if (suite_dir / "figures" / name).exists():
            written.append(name)
    for accuracy in sorted(suite_dir.glob("classifiers/*/accuracy_by_lambda.csv")):
        plot_classifier_accuracy(pd.read_csv(accuracy), accuracy.with_suffix(".png"))
    beside = suite_cells.SUITES[suite].beside if suite in suite_cells.SUITES else ""
    other = suite_table(Path(out) / beside) if beside and (Path(out) / beside / "runs").is_dir() else None
    write_report(suite, table, suite_dir, written, beside=(beside, other) if other is not None else None)
    return written
