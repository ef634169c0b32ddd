"""The frontier of tuned methods: which methods join, where their searches run, the optimum cells' seeds,
the verdicts, the check against a stored grid, and a whole frontier on the tiny model (resumable)."""
import json
import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest

from bench.guidance import METHODS
from bench.guidance.registry import strength
from bench.tuning.best_against_best import compared_count, grid_check, optimum_cell, run_frontier, verdict
from bench.tuning.frontiers import FRONTIERS


def test_every_method_with_a_strength_joins_wrappers_too():
    names = FRONTIERS["methods-mnist"].method_names()
    expected = {m.name for m in METHODS.values() if m.examples and strength(m.name, dict(m.examples[0].params))[0]}
    assert set(names) == expected and {"interval", "schedule", "cfg", "classifier"} <= set(names)
    assert not {"cond", "uncond"} & set(names)


def test_search_ranges_come_from_the_record_or_the_examples():
    frontier = FRONTIERS["methods-mnist"]
    assert frontier.search_range("cfgpp") == (0.0, 1.0) and frontier.search_range("classifier") == (0.0, 4.0)
    bare = replace(frontier, ranges=())
    assert bare.search_range("cfg") == (0.0, max(dict(e.params)["w"] for e in METHODS["cfg"].examples))
    inner = max(dict(dict(e.params)["inner_params"])["w"] for e in METHODS["interval"].examples)
    assert bare.search_range("interval") == (0.0, inner)


def test_the_optimum_cells_draw_from_seeds_no_tuning_cell_used():
    frontier = FRONTIERS["methods-mnist"]
    with pytest.raises(ValueError, match="final_seed"):
        replace(frontier, final_seed=frontier.budget - 1)
    shifted = replace(frontier.base, sample=replace(frontier.base.sample, seed=frontier.final_seed))
    with pytest.raises(ValueError, match="sample.seed \\+ budget"):
        replace(frontier, base=shifted)  # tuning seeds start at the base's seed, not at 0
    base = frontier.tuning_base("autoguidance")
    assert base.spec.guide.steps == 300 and base.spec.guide.channels == 8  # the example's spec changes
    cell = optimum_cell(frontier, "autoguidance", base, 1.25)
    s = cell.spec
    assert (s.sample.seed, s.sample.num_samples, s.eval.inception_fid) == (frontier.final_seed, frontier.final_n, True)
    assert dict(s.guidance.params)["w"] == 1.25 and s.train == frontier.base.train and s.guide == base.spec.guide
    wrapped = optimum_cell(frontier, "interval", frontier.tuning_base("interval"), 0.7)
    assert strength("interval", wrapped.spec.guidance.kwargs()) == ("w", 0.7)


@pytest.mark.parametrize("lo, hi, lower_is_better, expected", [(-2, -1, True, "better"), (1, 2, True, "worse"),
                                                               (-1, 1, True, "not resolved"), (1, 2, False, "better")])
def test_a_verdict_needs_an_interval_that_excludes_zero(lo, hi, lower_is_better, expected):
    assert verdict({"difference": (lo + hi) / 2, "lo": lo, "hi": hi}, lower_is_better) == expected
    assert verdict(None) == ""


def test_the_report_counts_only_the_comparisons_that_were_made():
    table = pd.DataFrame({"method": ["cfg", "apg", "cfgpp"], "fid_verdict": ["", "better", "not resolved"],
                          "fid_inception_verdict": ["", "", "worse"]})
    assert compared_count(table) == 3
    assert compared_count(table.iloc[:1]) == 0 and compared_count(table.iloc[:0]) == 0


def test_tuned_cfg_is_checked_against_the_stored_grid(tmp_path):
    frontier = replace(FRONTIERS["methods-mnist"], grid_suite="grid")
    b = frontier.base
    rows = [{"method": "cfg", "p_uncond": b.train.p_uncond, "steps": b.sample.steps, "seed": b.sample.seed,
             "prediction": "eps", "sampler": b.sample.sampler, "time_grid": b.sample.grid,
             "strength": w, "fid": (w - 0.3) ** 2 + 1, "num_samples": 1000} for w in (0, 0.1, 0.3, 0.5, 1)]
    rows.append({**rows[0], "p_uncond": 0.5, "strength": 2.0, "fid": 0.0})  # another model: not the grid
    rows.append({**rows[0], "prediction": "flow", "strength": 1.0, "fid": 0.0})  # another objective: not the grid
    rows.append({**rows[0], "sampler": "heun", "strength": 1.0, "fid": 0.0})  # another sampler: not the grid
    (tmp_path / "grid").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "grid" / "table.csv", index=False)
    tuned = pd.DataFrame()
    tuned.attrs.update(strength=0.28, lo=0.2, hi=0.4)
    assert "**agrees**" in grid_check(frontier, {"cfg": tuned}, tmp_path)[0]
    tuned.attrs.update(lo=0.35, hi=0.6)
    assert "**disagrees**" in grid_check(frontier, {"cfg": tuned}, tmp_path)[0]
    assert "inside the interval is w = 0.5 (1.040, +0.040 from" in grid_check(frontier, {"cfg": tuned}, tmp_path)[0]
    assert grid_check(replace(frontier, grid_suite="absent"), {"cfg": tuned}, tmp_path) == []


def test_the_command_line_refuses_settings_the_record_holds(tmp_path):
    run = [sys.executable, "-m", "bench.tune", "--out", str(tmp_path)]
    for extra, message in ((["--frontier", "methods-tiny", "--n0", "50"], "--n0 would change"),
                           (["--frontier", "methods-tiny", "--suite", "tiny"], "--suite NAME (one method) or"),
                           (["--frontier", "nope"], "nope"),
                           (["--suite", "tiny", "--method", "cfg", "--method", "apg"], "no apg cell")):
        out = subprocess.run(run + extra, capture_output=True, text=True)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr
    via_run = subprocess.run([sys.executable, "-m", "bench.run", "--suite", "methods-tiny", "--n0", "50"],
                             capture_output=True, text=True)  # bench.run hands a frontier's name to bench.tune
    assert via_run.returncode == 2 and "--n0 would change the frontier methods-tiny" in via_run.stderr
    listed = subprocess.run(run + ["--list"], capture_output=True, text=True)
    assert listed.returncode == 0 and {"methods-mnist", "methods-fashion"} <= {l.split()[0] for l in listed.stdout.splitlines()}


@pytest.mark.slow
def test_a_frontier_on_the_tiny_model_writes_its_verdicts_and_a_rerun_computes_nothing(tmp_path):
    verdicts = run_frontier("methods-tiny", tmp_path, say=lambda *a: None)
    frontier = FRONTIERS["methods-tiny"]
    assert list(verdicts.method) == ["cfg", "cfg_zero_star"]
    assert (verdicts.w_star_lo <= verdicts.w_star).all() and (verdicts.w_star <= verdicts.w_star_hi).all()
    other = verdicts.iloc[1]
    assert other.fid_minus_cfg_lo <= other.fid_minus_cfg <= other.fid_minus_cfg_hi and other.fid_verdict
    folder = tmp_path / "methods-tiny"
    report = (folder / "report.md").read_text()
    assert "## Verdicts: each method's optimum against tuned CFG's" in report and "## FID at matched IS" in report
    assert "This table makes 1 such comparison:" in report  # cfg_zero_star's evaluator FID; no Inception here
    assert (folder / "figures" / "differences_from_cfg.png").exists()
    specs = [json.loads(p.read_text()) for p in folder.glob("runs/*/spec.json")]
    assert {s["sample"]["seed"] for s in specs} == {frontier.final_seed}
    tuning_seeds = {json.loads(p.read_text())["sample"]["seed"] for p in tmp_path.glob("methods-tiny-tune-*/runs/*/spec.json")}
    assert max(tuning_seeds) + frontier.budget <= frontier.final_seed
    ledger = (folder / "stages.jsonl").read_text()
    again = run_frontier("methods-tiny", tmp_path, say=lambda *a: None)
    pd.testing.assert_frame_equal(again, verdicts)
    added = (folder / "stages.jsonl").read_text()[len(ledger):]
    assert '"stage": "sampling"' not in added
