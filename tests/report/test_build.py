"""Reports come from stored results alone: every committed suite's table.csv is exactly what the code
builds from its stored runs (so a refactor that moves a number shows here), and rebuilding a report
loads neither torch nor timm."""
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report.table import ID_COLUMNS, METRIC_COLUMNS, suite_table

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted(p.parent.name for p in (ROOT / "results").glob("*/table.csv"))


def test_there_are_committed_suites():
    assert {"mnist", "methods"} <= set(COMMITTED)


@pytest.mark.parametrize("suite", COMMITTED)
def test_a_committed_table_is_what_its_stored_runs_give(suite):
    table = suite_table(ROOT / "results" / suite)
    built = table[[c for c in ID_COLUMNS + METRIC_COLUMNS if c in table]].to_csv(index=False)
    assert built == (ROOT / "results" / suite / "table.csv").read_text(), \
        f"python -m bench.figures --suite {suite} would change results/{suite}/table.csv"


@pytest.mark.slow
def test_a_report_rebuild_loads_neither_torch_nor_timm(finished, tmp_path):
    code = ("import sys; from bench.report.build import build; "
            f"build('tiny', {str(finished / 'full')!r}); "
            "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "[]", out.stdout
    assert (finished / "full" / "tiny" / "report.md").exists()
