"""Protocol presets: the overrides they apply (the user's --set wins), EDM2's three seed sets, the presets
that follow ADM's protocol, the report's protocol section, and the refusals before any work."""
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bench.report.markdown import protocol_lines
from bench.spec.errors import SpecError
from bench.suites.cells import SUITES, select_cells
from bench.suites.protocols import PROTOCOLS


def test_adm_protocol_sets_its_evaluator_and_n_and_the_user_wins():
    cells = select_cells("smoke", protocol="adm", overrides=["sample.num_samples=512"])
    assert all(c.spec.eval.protocol == "adm" and c.spec.eval.features == "inception" for c in cells)
    assert {c.spec.sample.num_samples for c in cells} == {512}
    assert len(cells) == len(select_cells("smoke"))


def test_edm2_protocol_repeats_every_cell_over_three_disjoint_seed_sets():
    plain = select_cells("smoke")
    cells = select_cells("smoke", protocol="edm2", overrides=["sample.num_samples=300"])
    assert len(cells) == 3 * len(plain)
    seeds = sorted({c.spec.sample.seed for c in cells})
    assert seeds == [0, 300, 600] and len({c.name for c in cells}) == len(cells)
    assert all(c.spec.eval.protocol == "edm2" for c in cells)


def test_the_imagenet_presets_follow_adm():
    assert {SUITES[s].protocol for s in ("adm64", "dit256", "imagenet64")} == {"adm"}


def test_an_unknown_protocol_is_refused():
    with pytest.raises(SpecError, match="choose one of adm, edm2"):
        select_cells("smoke", protocol="tf1")


def test_edm2_without_dinov2_weights_exits_2_before_any_work(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.run", "--suite", "smoke", "--protocol", "edm2",
                          "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert out.returncode == 2 and "FD_DINOv2" in out.stderr and not (tmp_path / "r").exists()


def test_the_report_gives_edm2s_minimum_and_mean_over_seed_sets():
    table = pd.DataFrame({"cell": ["cfg_w1", "cfg_w1_seed300", "cfg_w1_seed600"], "protocol": ["edm2"] * 3,
                          "num_samples": [300] * 3, "fid": [2.0, 3.0, 4.0], "fd_dinov2": [50.0, 40.0, 60.0]})
    text = "\n".join(protocol_lines(table))
    assert re.search(r"\|\s*cfg_w1\s*\|\s*3\s*\|\s*300\s*\|\s*2\.000\s*\|", text)  # the minimum over the three sets
    assert "3.000 ± 1.000" in text and "50.000 ± 10.000" in text and "40" in text
    assert all(d in text for d in PROTOCOLS["edm2"].differences)
    assert protocol_lines(table.assign(protocol=np.nan)) == []
