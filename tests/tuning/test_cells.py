"""The tuner on a suite's cells: points are ordinary cells (a rerun finds them finished), the search reads
their metric and replicates, and bad requests exit 2 before any work."""
import json
import subprocess
import sys

import pandas as pd
import pytest

import bench
from bench.spec.errors import SpecError
from bench.tuning.cells import base_cell, cell_at


def test_a_point_is_the_suites_cell_at_that_strength_and_n():
    base, param, top = base_cell("tiny", "cfg", ())
    cell = cell_at(base, param, 1.25, 144)
    assert param == "w" and top == 2.0
    assert dict(cell.spec.guidance.params)["w"] == 1.25 and cell.spec.sample.num_samples == 144
    assert cell.spec.train == base.spec.train and cell.spec.sample.seed == base.spec.sample.seed


@pytest.mark.parametrize("method, message", [("nope", "not registered"), ("apg", "no apg cell")])
def test_bad_requests_are_refused(method, message):
    with pytest.raises(SpecError, match=message):
        base_cell("tiny", method, ())


def test_the_command_line_refuses_a_method_without_cells_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.tune", "--suite", "tiny", "--method", "apg", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "no apg cell" in out.stderr


@pytest.mark.slow
def test_tune_on_tiny_prints_w_star_with_its_interval_and_stores_cells(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.tune", "--suite", "tiny", "--method", "cfg", "--metric", "fid",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "w* = " in out.stdout and "95% interval on the argmin of fid" in out.stdout
    folder = tmp_path / "tiny-tune-cfg"
    record = json.loads((folder / "tune.json").read_text())
    assert record["interval"][0] <= record["strength"] <= record["interval"][1]
    cells = pd.read_csv(folder / "tune.csv")
    assert (folder / "tune.png").exists() and len(list((folder / "runs").glob("*/metrics.json"))) == len(cells)
    again = bench.tune("tiny", "cfg", "fid", out=tmp_path)  # every point is a finished cell now
    assert again.attrs["strength"] == record["strength"]
