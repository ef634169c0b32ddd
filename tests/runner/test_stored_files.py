"""Stored files are checked before they are trusted: every corruption of every file a finished cell
needs makes the cell count as unfinished, so the next run recomputes it (and the files come back
byte-identical, timings aside), and a report build leaves the cell out, naming it and the command
that repairs it, instead of dying. Bad values and bad destinations stop before any work."""
import json
import shutil

import pytest

from bench.infra.store import REPLICATES_FILE, RUN_FILES, load_runs, run_problem
from bench.report.build import build
from bench.runner import cli as runner

CORRUPTIONS = {
    "garbage": b"\x00\xffnot what it should be",
    "truncated": None,  # the first half of the file
    "empty object": b"{}",
    "a list": b"[]",
    "empty": b"",
}
STORED = [*RUN_FILES, REPLICATES_FILE]
CELL = "cfg_p0.1_w0.5_T4"


def corrupt(path, how: str) -> None:
    blob = CORRUPTIONS[how]
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2] if blob is None else blob)


def cell_dir(suite_dir):
    return next((suite_dir / "runs").glob(f"{CELL}-*"))


@pytest.fixture
def copy(finished, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    shutil.copytree(finished / "full" / "tiny", tmp_path / "out" / "tiny")
    return tmp_path / "out" / "tiny"


@pytest.mark.parametrize("name", STORED)
@pytest.mark.parametrize("how", CORRUPTIONS)
def test_every_corruption_of_every_stored_file_is_found(copy, name, how):
    run_dir = cell_dir(copy)
    assert run_problem(run_dir) is None
    corrupt(run_dir / name, how)
    problem = run_problem(run_dir)
    assert problem and name in problem, problem


@pytest.mark.parametrize("name", ["spec.json", "metrics.json", REPLICATES_FILE])
def test_a_report_build_leaves_out_the_bad_cell_and_names_its_repair(copy, capsys, name):
    corrupt(cell_dir(copy) / name, "garbage")
    table = load_runs(copy)
    assert CELL not in set(table.cell) and len(table) == len(list((copy / "runs").iterdir())) - 1
    err = capsys.readouterr().err
    assert f"--suite tiny --only '{CELL}'" in err and name in err
    build("tiny", copy.parent)  # never dies on one bad cell


def test_a_report_build_draws_around_a_corrupt_sample_grid(copy, capsys):
    for grid in (copy / "runs").glob("cfg_p0.1_w0*/grid.png"):
        grid.write_bytes(b"not a png")
    build("tiny", copy.parent)
    assert "is unreadable" in capsys.readouterr().err


def test_a_spec_json_of_another_spec_is_found(copy):
    run_dir = cell_dir(copy)
    spec = json.loads((run_dir / "spec.json").read_text())
    spec["sample"]["steps"] = 64
    (run_dir / "spec.json").write_text(json.dumps(spec))
    assert "is not the spec metrics.json was computed for" in run_problem(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["spec.json", REPLICATES_FILE, "env.json"])
def test_the_next_run_recomputes_the_cell_and_restores_it(copy, capsys, name):
    run_dir = cell_dir(copy)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    corrupt(run_dir / name, "truncated")
    assert runner.main(["--suite", "tiny", "--quiet", "--no-report", "--out", str(copy.parent), "--only", CELL]) == 0
    assert f"recomputing {CELL}" in capsys.readouterr().err
    assert run_problem(run_dir) is None
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    for kept in ("spec.json", REPLICATES_FILE, "grid.png", "samples.npz"):
        assert after[kept] == before[kept], kept
    timing = ("seconds", "per_second", "device", "world_size")
    m_before, m_after = json.loads(before["metrics.json"]), json.loads(after["metrics.json"])
    assert {k: v for k, v in m_after.items() if not any(t in k for t in timing)} == \
           {k: v for k, v in m_before.items() if not any(t in k for t in timing)}


def test_a_rescore_of_a_cell_with_corrupt_samples_names_the_file_and_the_repair(copy, capsys):
    corrupt(cell_dir(copy) / "samples.npz", "garbage")
    (cell_dir(copy) / REPLICATES_FILE).unlink()
    assert runner.main(["--suite", "tiny", "--rescore", "--no-report", "--out", str(copy.parent), "--only", CELL]) == 2
    err = capsys.readouterr().err
    assert "samples.npz is not a readable .npz" in err and f"--only '{CELL}' --force" in err and err.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["--set", 'guidance.params={"w": Infinity}'], "every number finite"),
    (["--set", 'guidance.params={"w": 1e308}'], "within +-1e+06"),
    (["--set", "train.batch_size=100000000"], "expected an integer in [1, 4,096]"),
    (["--set", "sample.steps=100000000000000000000"], "expected an integer in [1, 1,000,000,000]"),
    (["--set", "sample.num_samples=1000000000"], "expected an integer in [1, 10,000,000]"),
    (["--inception-weights", "/nonexistent/weights.pth"], "does not exist"),
    (["--resolve", "inf"], "finite number > 0"),
])
def test_bad_values_stop_before_any_work(tmp_path, capsys, args, message):
    try:
        code = runner.main(["--suite", "tiny", "--quiet", "--out", str(tmp_path / "out"), *args])
    except SystemExit as exit_:  # argparse's own errors (a bad flag value) exit 2 themselves
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "tiny" / "runs").exists()


def test_an_out_under_a_file_or_read_only_stops_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert runner.main(["--suite", "tiny", "--quiet", "--out", str(tmp_path / "file" / "sub")]) == 2
    assert "cannot write results to" in capsys.readouterr().err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not _can_write(ro):  # root writes anywhere: then only the file case is tested
            assert runner.main(["--suite", "tiny", "--quiet", "--out", str(ro)]) == 2
            assert "cannot write results to" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def _can_write(folder) -> bool:
    try:
        (folder / ".t").write_text("")
        (folder / ".t").unlink()
        return True
    except OSError:
        return False


def test_check_without_a_baseline_stops_before_any_cell(tmp_path, capsys):
    assert runner.main(["--suite", "smoke", "--quiet", "--check", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no baseline file" in err and "python -m bench.regression --suite smoke" in err
    assert not (tmp_path / "out" / "smoke" / "runs").exists()


def test_a_run_priced_over_a_day_needs_yes(tmp_path, capsys, monkeypatch):
    from bench.runner import cli
    monkeypatch.setattr("bench.runner.plan.plan", lambda *a, **k: __import__("pandas").DataFrame(
        {c: [30 * 3600.0] for c in ("reference_s", "train_s", "sampling_s", "features_s", "metrics_s")}))
    assert cli.main(["--suite", "tiny", "--quiet", "--out", str(tmp_path / "out")]) == 2
    assert "pass --yes to start it" in capsys.readouterr().err
    assert not (tmp_path / "out" / "tiny" / "runs").exists()
