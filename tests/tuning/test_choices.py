"""One more choice: several methods on one model, or a method at several values of one more parameter, each
tuned in strength and compared at its optimum on fresh seeds; and a metric optimised at a bound on another."""
import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest

import bench
from bench.spec.errors import SpecError
from bench.suites.cells import Cell
from bench.suites.methods import example_cell
from bench.suites.paper import TINY_BASE
from bench.guidance.registry import METHODS
from bench.tuning.cells import base_cell, search_folder, tuning_source
from bench.tuning.choices import method_parameters, tune_choices, with_choice


def interval_cell():
    return example_cell(TINY_BASE, "interval", METHODS["interval"].examples[0])


def test_a_choice_sets_a_spec_field_a_parameter_of_the_method_or_of_the_method_it_wraps():
    base = interval_cell()
    assert with_choice(base, "guide.steps", "50").spec.guide.steps == 50
    assert dict(with_choice(base, "lambda_low", "-4").spec.guidance.params)["lambda_low"] == -4
    around_apg = replace(base.spec.guidance, params=(("inner", "apg"), ("inner_params", (("w", 1.0),))))
    wrapped = Cell(base.name, replace(base.spec, guidance=around_apg))
    inner = dict(dict(with_choice(wrapped, "eta", "0.5").spec.guidance.params)["inner_params"])
    assert inner["eta"] == 0.5 and inner["w"] == 1.0  # the inner method's strength is kept for the search to set
    assert "eta" in method_parameters("interval", dict(around_apg.params)) and "w" not in method_parameters("interval", {})


@pytest.mark.parametrize("key, message", [("w", "its strength is what every search tunes"),
                                          ("nope", "neither a spec field"), ("sample.nope", "neither a spec field")])
def test_a_choice_that_is_no_parameter_is_refused_with_the_right_ones(key, message):
    with pytest.raises(SpecError, match=message):
        with_choice(base_cell("tiny", "cfg", ())[0], key, "1")


def test_bad_comparisons_are_refused_before_any_work(tmp_path):
    with pytest.raises(SpecError, match="at least two values"):
        tune_choices("tiny", ["cfg"], vary=("train.p_uncond", ["0.1"]), out=tmp_path)
    with pytest.raises(SpecError, match="one method"):
        tune_choices("tiny", ["cfg", "classifier"], vary=("train.p_uncond", ["0.1", "0.5"]), out=tmp_path)
    with pytest.raises(SpecError, match="one bound"):
        bench.tune("tiny", "cfg", "is_mean", at_most=("fid", 1.0), at_least=("fid", 0.0), out=tmp_path)
    with pytest.raises(SpecError, match="the metric being optimised"):
        bench.tune("tiny", "cfg", "fid", at_most=("fid", 1.0), out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_each_search_keeps_its_own_folder_by_metric_and_bound():
    assert search_folder("tiny-tune-cfg", "fid") == "tiny-tune-cfg"
    assert search_folder("tiny-tune-cfg", "is_mean", ("fid", 5.5)) == "tiny-tune-cfg-is_mean-fid-at-most-5.5"
    assert search_folder("t", "precision", at_least=("class_accuracy", 0.9)) == "t-precision-class_accuracy-at-least-0.9"


@pytest.mark.slow
def test_a_parameter_varied_on_tiny_is_tuned_at_each_value_and_compared_on_fresh_seeds(tmp_path):
    table = bench.tune("tiny", "cfg", "fid", vary=("train.p_uncond", ["0.1", "0.5"]), out=tmp_path)
    assert list(table.choice) == ["train.p_uncond=0.1", "train.p_uncond=0.5"]
    best = table.loc[table.fid.idxmin()]
    assert (table.reference == best.choice).all() and pd.isna(best.fid_minus_reference)
    other = table[table.choice != best.choice].iloc[0]
    assert other.fid_minus_reference_lo <= other.fid_minus_reference <= other.fid_minus_reference_hi
    assert other.fid_minus_reference == pytest.approx(other.fid - best.fid)
    searches = table.attrs["searches"]
    tuning_seeds = max(int(s.n.max()) for s in searches.values())  # tiny's seed is 0: a cell at N uses 0 .. N - 1
    assert table.attrs["final_seed"] >= tuning_seeds
    stored = pd.read_csv(tmp_path / table.attrs["folder"] / "table.csv")
    assert set(stored.seed) == {table.attrs["final_seed"]} and set(stored.p_uncond) == {0.1, 0.5}
    for label, search in searches.items():
        assert (tmp_path / f"tiny-tune-cfg-{label}" / "tune.json").exists()
    report = (tmp_path / table.attrs["folder"] / "report.md").read_text()
    assert "python -m bench.tune --suite tiny --method cfg --metric fid --vary train.p_uncond=0.1,0.5" in report
    assert all(f"../tiny-tune-cfg-{label}/tune.png" in report for label in searches)


@pytest.mark.slow
def test_two_methods_at_a_floor_on_fid_print_each_optimum_and_their_comparison(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.tune", "--suite", "tiny", "--method", "cfg", "--method", "classifier",
                          "--metric", "is_mean", "--at-most", "fid=250", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("cfg on tiny: w* = ") and "argmax of is_mean where fid <= 250" in lines[0]
    assert lines[1].startswith("classifier on tiny: scale* = ")
    assert "against cfg on the same seeds" in out.stdout
    compared = pd.read_csv(tmp_path / "tiny-tune-cfg+classifier-compared-is_mean-fid-at-most-250" / "choices.csv")
    assert list(compared.choice) == ["cfg", "classifier"] and compared.verdict.iloc[1] in ("better", "worse", "not resolved")
    searched = pd.read_csv(tmp_path / "tiny-tune-cfg-is_mean-fid-at-most-250" / "tune.csv")
    assert {"is_mean", "fid"} <= set(searched.columns)


def test_the_command_line_refuses_a_malformed_bound_or_vary_in_one_line(tmp_path):
    for flags, message in ((["--at-most", "fid"], "expected METRIC=NUMBER"), (["--vary", "guide.steps"], "expected KEY=A,B"),
                           (["--final-n", "100"], "give several --method or --vary")):
        out = subprocess.run([sys.executable, "-m", "bench.tune", "--suite", "tiny", *flags, "--out", str(tmp_path)],
                             capture_output=True, text=True)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr


def test_the_searches_are_priced_before_any_work(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.tune", "--suite", "tiny", "--method", "cfg", "--vary",
                          "train.p_uncond=0.1,0.5", "--dry-run", "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "train.p_uncond0.1_search_budget" in out.stdout and "at most (every search spends its budget)" in out.stdout
    assert not list(tmp_path.glob("*/runs/*"))


def test_a_frontier_offers_every_method_on_its_model():
    source = tuning_source("methods-mnist", "autoguidance")
    assert source.cell.spec.guidance.method == "autoguidance" and source.cell.spec.data.name == "mnist"
    assert (source.lo, source.hi, source.n0, source.budget) == (0.0, 2.0, 500, 20_000)
    assert tuning_source("tiny", "cfg").budget == 64 * 72
