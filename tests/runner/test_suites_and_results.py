"""Suites, the results store, resume, figure regeneration, --set/--dry-run and the --check gate."""
import errno
import json
import shutil
import subprocess
import os
import signal
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from bench.runner import cli as runner
from bench.evaluation.evaluator import WEIGHTS_DIR
from bench.report.plots import FIGURES
from bench.report.build import build
from bench.claims.gate import BASELINE_REPLICATES, check_against_baseline, compare, suite_replicates
from bench.infra.stages import LEDGER, read_ledger
from bench.suites.cells import SUITES


def assert_kept(before: dict, suite_dir) -> dict:
    """Every file from before is unchanged, except that the stage ledger (append-only) may have grown by
    the failed invocation's measurements; returns the files now."""
    after = {p: p.read_bytes() for p in suite_dir.rglob("*") if p.is_file()}
    before = dict(before)
    ledger = suite_dir / "stages.jsonl"
    assert after[ledger].startswith(before.pop(ledger))
    assert {p: after.get(p) for p in before} == before
    return after


def tiny_cells():
    return SUITES["tiny"].build()


def test_suite_expansion_counts_and_unique_ids():
    from bench.guidance import METHODS
    examples = sum(len(m.examples) for m in METHODS.values())  # the methods suite: every record's examples
    expected = {"smoke": 5, "ci": 7, "mnist5k": 52, "mnist": 52, "fashion": 52, "methods": examples, "adm64": 8,
                "dit256": 8}
    for name, count in expected.items():
        cells = SUITES[name].build()
        assert len(cells) == count
        assert len({c.run_id for c in cells}) == count and len({c.name for c in cells}) == count


def test_the_methods_suite_puts_every_guidance_method_with_examples_on_its_frontier():
    from bench.guidance import METHODS
    used = {c.spec.guidance.method for c in SUITES["methods"].build()}
    assert used == {m.name for m in METHODS.values() if m.examples} == set(METHODS.names()) - {"cond", "uncond"}


def test_run_ids_are_stable_across_processes():
    code = "from bench.suites.cells import SUITES; print(' '.join(c.run_id for c in SUITES['mnist'].build()))"
    a = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    b = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    assert a == b and a.split() == [c.run_id for c in SUITES["mnist"].build()]


def run(*args):
    return runner.main(["--suite", "tiny", "--quiet", *args])


def test_results_store_layout(finished):
    suite = finished / "full" / "tiny"
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
    first = {p.parent.name: p.stat().st_mtime_ns for p in (out / "tiny" / "runs").glob("*/metrics.json")}
    capsys.readouterr()
    assert run("--out", str(out)) == 0
    assert capsys.readouterr().out.count("done already") == len(first)
    for p in (out / "tiny" / "runs").glob("*/metrics.json"):
        if p.parent.name in first:
            assert p.stat().st_mtime_ns == first[p.parent.name]
    cols = ["cell", "fid", "is_mean", "class_accuracy", "precision", "gap_confidence"]
    resumed = pd.read_csv(out / "tiny" / "table.csv")[cols].sort_values("cell").reset_index(drop=True)
    full = pd.read_csv(finished / "full" / "tiny" / "table.csv")[cols].sort_values("cell").reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, full)


def test_figures_regenerate_from_stored_results(finished, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished / "full" / "tiny", copy / "tiny",
                    ignore=shutil.ignore_patterns("figures", "report.md", "table.csv", "samples.npz"))
    written = build("tiny", copy)
    assert set(written) == set(FIGURES)
    for name in FIGURES:
        assert (copy / "tiny" / "figures" / name).stat().st_size > 1000
    report = (copy / "tiny" / "report.md").read_text()
    assert "Verdicts on the paper's claims" in report and "IS increases with w" in report


def test_check_passes_on_its_own_baseline_and_fails_on_a_planted_regression(finished, tmp_path, capsys):
    suite_dir = finished / "full" / "tiny"
    table = pd.read_csv(suite_dir / "table.csv")
    (tmp_path / "tiny").mkdir()
    table[["cell", "fid", "is_mean"]].to_csv(tmp_path / "tiny" / "baseline.csv", index=False)
    pd.DataFrame({"metric": ["fid", "is_mean"], "practical_size": [0.5, 0.2]}).to_csv(tmp_path / "tiny" / "tolerances.csv", index=False)
    replicates = suite_replicates(table, suite_dir)
    np.savez(tmp_path / "tiny" / BASELINE_REPLICATES, **replicates)
    assert check_against_baseline("tiny", table, suite_dir, tmp_path) == 0
    assert "with paired intervals" in capsys.readouterr().out
    planted = table.copy()
    planted.loc[planted.cell == planted.cell.iloc[0], "fid"] += 0.6
    assert check_against_baseline("tiny", planted, suite_dir, tmp_path) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and planted.cell.iloc[0] in out
    key = f"{table.cell.iloc[0]}|fid"
    sizes = pd.DataFrame({"metric": ["fid"], "practical_size": [0.5]})
    shifted = {**replicates, key: replicates[key] + 0.6}  # a real shift: every draw moved
    report = compare(planted, table[["cell", "fid", "is_mean"]], sizes, shifted, replicates)
    assert report.regressed.sum() == 1 and report.difference.max() == pytest.approx(0.6)
    noisy = {**replicates, key: replicates[key] + np.random.default_rng(0).normal(0, 2.0, len(replicates[key]))}
    report = compare(planted, table[["cell", "fid", "is_mean"]], sizes, noisy, replicates)
    assert report.regressed.sum() == 0, "a shift inside its paired interval is noise, not a regression"


@pytest.mark.parametrize("args,message", [
    (["--set", "sample.stepz=3"], "unknown key 'sample.stepz'; valid keys: "),
    (["--set", "sample.steps=three"], "--set sample.steps=three: expected int"),
    (["--set", "sample.clip_x=maybe"], "expected bool"),
    (["--only", "nothing*"], "no cell of suite tiny matches"),
])
def test_bad_runner_input_is_a_clear_error(args, message, capsys, tmp_path):
    assert run("--out", str(tmp_path), *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "tiny").exists()


def test_dry_run_prints_the_plan_and_trains_nothing(cache_dir, capsys, tmp_path):
    assert runner.main(["--suite", "tiny", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"plan: {len(tiny_cells())} cells" in out and "sampling NFE" in out
    assert "features: timed now (torch-eager)" in out and "metrics: timed now (random features)" in out
    assert not cache_dir.exists() and not (tmp_path / "tiny").exists()


@pytest.mark.slow
def test_a_cold_plan_prices_every_stage(cache_dir, capsys, tmp_path):
    """With an empty cache and no ledgers every stage of the mnist suite is timed here, none is left
    NaN or shown as 0.0 (the 10k Inception reference among them), and the plan trains nothing."""
    assert runner.main(["--suite", "mnist", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("plan: 52 cells"))
    assert "at least" not in line and "nan" not in line.split("nan = ")[0]
    stages = dict(part.rsplit(" ", 1) for part in line.split("minutes by stage: ")[1].split(";")[0].split(", "))
    assert all(float(minutes) > 0 for minutes in stages.values()), stages
    assert set(p.name for p in cache_dir.iterdir()) <= {"inception", "feature-runtimes"}  # measurements, no models


def test_set_overrides_reach_the_spec(finished, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    assert run("--out", str(tmp_path), "--only", "cfg_p0.1_w0_T4", "--set", "sample.num_samples=80", "--no-report") == 0
    spec = json.loads(next((tmp_path / "tiny" / "runs").glob("*/spec.json")).read_text())
    metrics = json.loads(next((tmp_path / "tiny" / "runs").glob("*/metrics.json")).read_text())
    assert spec["sample"]["num_samples"] == 80 and metrics["num_samples"] == 80


def test_shards_are_disjoint_and_cover_the_suite(capsys):
    names = []
    for i in (1, 2, 3):
        assert runner.main(["--suite", "tiny", "--dry-run", "--shard", f"{i}/3"]) == 0
        out = capsys.readouterr().out
        names.append({c.name for c in tiny_cells() if f" {c.name} " in f" {out} ".replace("\n", " ")})
    assert set.union(*names) == {c.name for c in tiny_cells()}
    assert sum(len(n) for n in names) == len(tiny_cells())


@pytest.mark.slow
def test_sigkill_mid_suite_then_rerun_gives_the_uninterrupted_table(finished, tmp_path):
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache")}  # cold cache: the kill can land in training too
    cmd = [sys.executable, "-m", "bench.run", "--suite", "tiny", "--out", str(tmp_path / "out"), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "out" / "tiny" / "runs"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(runs.glob("*/metrics.json"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(runs.glob("*/metrics.json")))
    assert 2 <= done < len(tiny_cells()), "the kill should land mid-suite"
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    cols = ["cell", "fid", "is_mean", "class_accuracy", "precision", "gap_confidence"]
    resumed = pd.read_csv(tmp_path / "out" / "tiny" / "table.csv")[cols].sort_values("cell").reset_index(drop=True)
    full = pd.read_csv(finished / "full" / "tiny" / "table.csv")[cols].sort_values("cell").reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, full)


def test_corrupt_metrics_file_is_recomputed_not_trusted(finished, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    out = tmp_path / "out"
    shutil.copytree(finished / "full" / "tiny", out / "tiny")
    victim = next((out / "tiny" / "runs").glob("cfg_p0.1_w0_*/metrics.json"))
    victim.write_text(victim.read_text()[:40])  # truncated, as by a full disk
    assert run("--out", str(out), "--no-report") == 0
    assert json.loads(victim.read_text())["cell"] == "cfg_p0.1_w0_T4"


@pytest.mark.parametrize("args,message", [
    (["--suite", "nope"], "known suites: "),
    (["--suite", "tiny", "--set", 'guidance.method=cfgg'], "known methods: "),
    (["--suite", "tiny", "--set", "data.name=imagenet"], "known datasets: "),
    (["--suite", "tiny", "--set", "eval.features=clip"], "known feature extractors: dinov2, evaluator, inception"),
    (["--suite", "tiny", "--set", "eval.features=inception", "--inception-weights", "/nonexistent.pth"],
     "weights-inception-2015-12-05-6726825d.pth"),
    (["--suite", "tiny", "--set", "sample.num_samples=40"], "feature dimension 64"),
    (["--suite", "tiny", "--set", "data.name=cifar10", "--set", "data.root=/nonexistent"], "does not exist"),
    (["--suite", "tiny", "--set", "sample.precision=fp16"], "sample.precision='fp16' is not valid: expected one of fp32, bf16"),
    (["--suite", "tiny", "--set", "train.lr=1e30", "--only", "cfg_p0.1_w0_T4"], "training loss became inf at step 1"),
    (["--suite", "tiny", "--set", "classifier.lr=1e30", "--only", "clf-*"], "guidance classifier loss became nan at step 1"),
    (["--suite", "tiny", "TAMPERED_EVALUATOR"], "the weights are corrupt or not the recorded ones"),
])
def test_bad_input_exits_2_with_one_clear_message_and_keeps_results(args, message, finished, tmp_path, monkeypatch):
    env = {**os.environ, "BENCH_CACHE": str(finished / "cache")}
    env.pop("BENCH_INCEPTION_WEIGHTS", None)
    if "TAMPERED_EVALUATOR" in args:  # an evaluator whose weights no longer match their recorded sha256
        args = [a for a in args if a != "TAMPERED_EVALUATOR"]
        env["BENCH_EVALUATOR_DIR"] = str(tmp_path / "evaluators")
        shutil.copytree(WEIGHTS_DIR, tmp_path / "evaluators")
        weights = tmp_path / "evaluators" / "digits.pt"
        blob = bytearray(weights.read_bytes())
        blob[-100] ^= 0xFF
        weights.write_bytes(bytes(blob))
    out = tmp_path / "out"
    shutil.copytree(finished / "full" / "tiny", out / "tiny")
    before = {p: p.read_bytes() for p in (out / "tiny").rglob("*") if p.is_file()}
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--out", str(out), "--quiet", "--force", *args],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert_kept(before, out / "tiny")


def test_out_of_disk_is_exit_2_and_leaves_no_partial_file(finished, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    out = tmp_path / "out"
    shutil.copytree(finished / "full" / "tiny", out / "tiny")
    before = {p: p.read_bytes() for p in (out / "tiny").rglob("*") if p.is_file()}
    calls = []

    def full_disk(fd):
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            return  # the stage ledger's append (tested in tests/infra/test_stages.py)
        calls.append(fd)
        if len(calls) >= 2:  # spec.json is written, samples.npz is not
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("bench.infra.store.os.fsync", full_disk)
    assert run("--out", str(out), "--force", "--only", "cfg_p0.1_w0.5_T4") == 2
    err = capsys.readouterr().err
    assert "out of disk space while writing" in err and "samples.npz" in err
    after = assert_kept(before, out / "tiny")
    assert not [p for p in after if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_concurrent_runners_into_one_folder_compute_each_cell_once(finished, tmp_path):
    env = {**os.environ, "BENCH_CACHE": str(finished / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bench.run", "--suite", "tiny", "--out", str(tmp_path / "out"), "--quiet"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    computed = sum(line.count(" img/s -> ") for out, _ in outputs for line in out.splitlines())
    assert computed == len(tiny_cells())
    cols = ["cell", "fid", "is_mean", "class_accuracy"]
    both = pd.read_csv(tmp_path / "out" / "tiny" / "table.csv")[cols].sort_values("cell").reset_index(drop=True)
    alone = pd.read_csv(finished / "full" / "tiny" / "table.csv")[cols].sort_values("cell").reset_index(drop=True)
    pd.testing.assert_frame_equal(both, alone)


def test_rescore_restores_the_intervals_of_cells_scored_before_them(finished, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    copy = tmp_path / "copy"
    shutil.copytree(finished / "full" / "tiny", copy / "tiny")
    metrics_files = sorted((copy / "tiny" / "runs").glob("*/metrics.json"))
    original = {p: json.loads(p.read_text()) for p in metrics_files}
    for path, metrics in original.items():  # as a cell stored before intervals existed
        (path.parent / "bootstrap.npz").unlink()
        path.write_text(json.dumps({k: v for k, v in metrics.items() if not k.endswith(("_lo", "_hi"))}))
    assert runner.main(["--suite", "tiny", "--out", str(copy), "--rescore", "--no-report"]) == 0
    assert f"{len(metrics_files)} cells rescored" in capsys.readouterr().out
    for path, metrics in original.items():
        again = json.loads(path.read_text())
        assert again["fid_lo"] == pytest.approx(metrics["fid_lo"]) and again["fid_hi"] == pytest.approx(metrics["fid_hi"])
        assert (path.parent / "bootstrap.npz").exists()
    assert runner.main(["--suite", "tiny", "--out", str(copy), "--rescore", "--no-report"]) == 0
    assert "0 cells rescored" in capsys.readouterr().out


def test_dry_run_plans_the_n_that_resolves_a_difference(finished, capsys):
    from bench.stats.power import power_plan
    plan = power_plan(finished / "full" / "tiny", planned_n=72, delta=0.5)
    assert plan["pairs"] >= 2 and plan["half_width"] > 0
    assert plan["needed_n"] == pytest.approx(72 * (2.8 / 1.96 * plan["half_width"] / 0.5) ** 2, rel=0.02, abs=1)
    assert plan["resolved_at_planned_n"] == pytest.approx(plan["half_width"] * (1.96 + 0.8416) / 1.96, rel=1e-3)
    assert runner.main(["--suite", "tiny", "--dry-run", "--out", str(finished / "full"), "--resolve", "0.5"]) == 0
    assert "power: from" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stopped:
        runner.main(["--suite", "tiny", "--dry-run", "--resolve", "-1"])
    assert stopped.value.code == 2 and "a finite number > 0" in capsys.readouterr().err


def test_method_ranking_reads_fid_at_matched_is_along_each_lower_envelope():
    """FID at matched IS is interpolated on the method's lower envelope (the best FID reachable at that IS
    or beyond), empty outside the IS range its cells cover; the best cell's interval is shown beside it."""
    from bench.claims.ranking import method_ranking
    rows = [("cfg", "CFG", w, fid, is_) for w, fid, is_ in ((0.0, 3.0, 8.0), (1.0, 2.0, 9.0), (2.0, 5.0, 10.0))]
    rows += [("apg", "APG", w, fid, is_) for w, fid, is_ in ((1.0, 4.0, 8.5), (2.0, 1.0, 9.5))]
    rows += [("interval", "interval", w, fid, is_) for w, fid, is_ in ((1.0, 6.0, 9.0), (2.0, 7.0, 9.2))]
    main = pd.DataFrame(rows, columns=["method", "method_label", "strength", "fid", "is_mean"])
    main["fid_lo"], main["fid_hi"] = main.fid - 0.5, main.fid + 0.25
    main["images_per_second"], main["nfe_per_image"] = 10.0, 64
    table = method_ranking(main).set_index("method")
    # CFG's IS quantiles are 8.5, 9, 9.5; APG's envelope is min(4, 1) = 1 up to IS 9.5, so 1 at 8.5 ... 9.5
    assert table.loc["APG", ["FID @ IS=8.5", "FID @ IS=9", "FID @ IS=9.5"]].tolist() == [1.0, 1.0, 1.0]
    # CFG's guided cells (w > 0) span IS 9 to 10: 8.5 lies outside; at 9 its envelope is min(2, 5) = 2
    assert np.isnan(table.loc["CFG", "FID @ IS=8.5"]) and table.loc["CFG", "FID @ IS=9"] == 2.0
    assert table.loc["CFG", "FID @ IS=9.5"] == pytest.approx(3.5)  # linear between (9, 2) and (10, 5)
    assert np.isnan(table.loc["interval", "FID @ IS=9.5"])  # beyond its largest IS
    assert list(table.index[:1]) == ["APG"] and table.loc["APG", "best FID's 95% interval"] == "[0.500, 1.250]"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the plan for a GPU written where there is none")
def test_a_gpu_plan_on_a_cpu_machine_leaves_unmeasured_rates_open(capsys, tmp_path):
    assert runner.main(["--suite", "imagenet64", "--dry-run", "--device", "cuda", "--out", str(tmp_path)]) == 0
    assert "sampling: unmeasured (no cuda here)" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where there is no CUDA device")
@pytest.mark.parametrize("device, says", [("cuda", "torch sees no CUDA device here"), ("cuda:x", "use cpu, cuda or cuda:N"),
                                          ("mps", "use cpu, cuda or cuda:N")])
def test_a_device_torch_cannot_use_is_refused_before_any_work(device, says, capsys, tmp_path):
    assert runner.main(["--suite", "tiny", "--device", device, "--out", str(tmp_path)]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "tiny").exists()


@pytest.mark.slow
def test_two_runners_on_a_cold_cache_train_each_model_once(tmp_path):
    """Two cells that share a model, two runners, an empty cache: one trains it, the other waits for
    its checkpoint and loads it (the ledger says which: cached or not)."""
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bench.run", "--suite", "tiny", "--out", str(tmp_path / "out"), "--quiet",
           "--no-report", "--only", "cfg_p0.1_w0*"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    ledger = read_ledger(tmp_path / "out" / "tiny" / LEDGER)
    trained = ledger[(ledger.stage == "train") & ledger["item"].str.startswith(("diffusion", "classifier"))]
    assert trained.groupby("item").cached.apply(lambda c: int((~c.astype(bool)).sum())).eq(1).all(), trained
