"""Suites, the results store, resume, figure regeneration, --set/--dry-run and the --check gate."""
import json
import shutil
import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest

from bench import run as runner
from bench.config import ClassifierSpec, DataSpec, NetSpec, RunSpec, SampleSpec, TrainSpec
from bench.figures import FIGURES, build
from bench.regression import check_against_baseline, compare
from bench.suites import SUITES, cfg_cell, classifier_cell, register_suite, with_p, with_steps

TINY = RunSpec(data=DataSpec("digits"), net=NetSpec(channels=8, channel_mult=(1, 2), attention_levels=()),
               train=TrainSpec(steps=20, batch_size=32), sample=SampleSpec(steps=4, num_samples=72, batch_size=40),
               classifier=ClassifierSpec(width=8, steps=10, batch_size=32))


def tiny_cells():
    cells = [cfg_cell(with_p(TINY, p), w) for p in (0.1, 0.5) for w in (0.0, 0.5, 2.0)]
    return cells + [cfg_cell(with_steps(with_p(TINY, 0.1), 8), 0.5), classifier_cell(with_p(TINY, 0.1), 1.0)]


if "tiny-test" not in SUITES:
    register_suite("tiny-test", "a few seconds of everything, for tests")(tiny_cells)


def test_suite_expansion_counts_and_unique_ids():
    expected = {"smoke": 5, "ci": 7, "mnist": 52}
    for name, count in expected.items():
        cells = SUITES[name].build()
        assert len(cells) == count
        assert len({c.run_id for c in cells}) == count and len({c.name for c in cells}) == count


def test_run_ids_are_stable_across_processes():
    code = "from bench.suites import SUITES; print(' '.join(c.run_id for c in SUITES['mnist'].build()))"
    a = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    b = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    assert a == b and a.split() == [c.run_id for c in SUITES["mnist"].build()]


def run(*args):
    return runner.main(["--suite", "tiny-test", "--quiet", *args])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The tiny suite run without interruption (models cached in a private folder)."""
    root = tmp_path_factory.mktemp("tiny")
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE", str(root / "cache"))
    assert run("--out", str(root / "full")) == 0
    yield root
    mp.undo()


def test_results_store_layout(finished):
    suite = finished / "full" / "tiny-test"
    runs = list((suite / "runs").iterdir())
    assert len(runs) == len(tiny_cells())
    for folder in runs:
        assert {"spec.json", "metrics.json", "env.json", "grid.png", "samples.npz"} <= {p.name for p in folder.iterdir()}
        env = json.loads((folder / "env.json").read_text())
        assert env["extractor_sha256"] and env["packages"]["torch"]
    table = pd.read_csv(suite / "table.csv")
    assert len(table) == len(runs) and {"fid", "is_mean", "p_uncond", "w", "gap_confidence"} <= set(table)
    assert not list(suite.rglob("*.tmp"))


def test_interrupted_suite_resumes_and_matches(finished, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    out = finished / "resumed"
    assert run("--out", str(out), "--only", "cfg_p0.1_*") == 0
    first = {p.parent.name: p.stat().st_mtime_ns for p in (out / "tiny-test" / "runs").glob("*/metrics.json")}
    capsys.readouterr()
    assert run("--out", str(out)) == 0
    assert capsys.readouterr().out.count("done already") == len(first)
    for p in (out / "tiny-test" / "runs").glob("*/metrics.json"):
        if p.parent.name in first:
            assert p.stat().st_mtime_ns == first[p.parent.name]
    cols = ["cell", "fid", "is_mean", "class_accuracy", "precision", "gap_confidence"]
    resumed = pd.read_csv(out / "tiny-test" / "table.csv")[cols].sort_values("cell").reset_index(drop=True)
    full = pd.read_csv(finished / "full" / "tiny-test" / "table.csv")[cols].sort_values("cell").reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, full)


def test_figures_regenerate_from_stored_results(finished, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished / "full" / "tiny-test", copy / "tiny-test",
                    ignore=shutil.ignore_patterns("figures", "report.md", "table.csv", "samples.npz"))
    written = build("tiny-test", copy)
    assert set(written) == set(FIGURES)
    for name in FIGURES:
        assert (copy / "tiny-test" / "figures" / name).stat().st_size > 1000
    report = (copy / "tiny-test" / "report.md").read_text()
    assert "Verdicts on the paper's claims" in report and "IS increases with w" in report


def test_check_passes_on_its_own_baseline_and_fails_on_a_planted_regression(finished, tmp_path, capsys):
    table = pd.read_csv(finished / "full" / "tiny-test" / "table.csv")
    (tmp_path / "tiny-test").mkdir()
    table[["cell", "fid", "is_mean"]].to_csv(tmp_path / "tiny-test" / "baseline.csv", index=False)
    pd.DataFrame({"metric": ["fid", "is_mean"], "tolerance": [0.5, 0.2]}).to_csv(tmp_path / "tiny-test" / "tolerances.csv", index=False)
    assert check_against_baseline("tiny-test", table, tmp_path) == 0
    planted = table.copy()
    planted.loc[planted.cell == planted.cell.iloc[0], "fid"] += 0.6
    assert check_against_baseline("tiny-test", planted, tmp_path) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and planted.cell.iloc[0] in out and "0.5" in out
    report = compare(planted, table[["cell", "fid", "is_mean"]], pd.DataFrame({"metric": ["fid"], "tolerance": [0.5]}))
    assert report.regressed.sum() == 1 and report.difference.max() == pytest.approx(0.6)


@pytest.mark.parametrize("args,message", [
    (["--set", "sample.stepz=3"], "unknown key 'sample.stepz'; valid keys: "),
    (["--set", "sample.steps=three"], "--set sample.steps=three: expected int"),
    (["--set", "sample.clip_x=maybe"], "expected bool"),
    (["--only", "nothing*"], "no cell of suite tiny-test matches"),
])
def test_bad_runner_input_is_a_clear_error(args, message, capsys, tmp_path):
    assert run("--out", str(tmp_path), *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "tiny-test").exists()


def test_dry_run_prints_the_plan_and_trains_nothing(cache_dir, capsys, tmp_path):
    assert runner.main(["--suite", "mnist", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "plan: 52 cells" in out and "sampling NFE" in out
    assert not cache_dir.exists() and not (tmp_path / "mnist").exists()


def test_set_overrides_reach_the_spec(finished, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    assert run("--out", str(tmp_path), "--only", "cfg_p0.1_w0_T4", "--set", "sample.num_samples=80", "--no-report") == 0
    spec = json.loads(next((tmp_path / "tiny-test" / "runs").glob("*/spec.json")).read_text())
    metrics = json.loads(next((tmp_path / "tiny-test" / "runs").glob("*/metrics.json")).read_text())
    assert spec["sample"]["num_samples"] == 80 and metrics["num_samples"] == 80


def test_shards_are_disjoint_and_cover_the_suite(capsys):
    names = []
    for i in (1, 2, 3):
        assert runner.main(["--suite", "tiny-test", "--dry-run", "--shard", f"{i}/3"]) == 0
        out = capsys.readouterr().out
        names.append({c.name for c in tiny_cells() if f" {c.name} " in f" {out} ".replace("\n", " ")})
    assert set.union(*names) == {c.name for c in tiny_cells()}
    assert sum(len(n) for n in names) == len(tiny_cells())
