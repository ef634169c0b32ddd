"""The stage ledger (bench/infra/stages.py): what a run measures, how it adds up, and the plan built from it."""
import json
from dataclasses import replace

import pandas as pd
import pytest

from bench.runner.plan import plan
from bench.infra.stages import LEDGER, STAGES, Stopwatch, breakdown, by_stage, rates, read_ledger
from bench.suites.cells import SUITES, Cell


def test_ledger_appends_across_invocations_and_sums_by_stage(tmp_path):
    path = tmp_path / LEDGER
    first, second = Stopwatch("cpu"), Stopwatch("cpu")
    first.record("train", "model a", 10.0, units=100, unit="images")
    first.record("sampling", "net", 4.0, units=8)
    first.flush(path)
    first.flush(path)  # nothing new: nothing appended
    second.record("train", "model a", 0.5, units=100, unit="images", cached=True)
    second.record("sampling", "net", 6.0, units=12)
    second.flush(path)
    ledger = read_ledger(path)
    assert len(ledger) == 4 and ledger.invocation.nunique() == 2
    table = breakdown(ledger).set_index(["stage", "item"])
    assert table.loc[("train", "model a"), "seconds"] == 10.5
    assert table.loc[("sampling", "net"), "units"] == 20
    assert not table.loc[("train", "model a"), "cached"]  # computed in one invocation, loaded in the other
    assert by_stage(ledger).share.sum() == pytest.approx(1.0)
    assert list(by_stage(ledger).stage) == ["train", "sampling"]  # stage order, not insertion or size order


def _measured(path, n: int = 2) -> None:
    watch = Stopwatch("cpu")
    for i in range(n):
        watch.record("sampling", f"net {i}", 1.0 + i, units=4)
    watch.flush(path)


@pytest.mark.parametrize("torn", [b'{"stage": "sampl', b"\x00\xff garbage", b'{"stage": "figures", "seconds": "x"}\n',
                                  b"[]\n", b'{"stage": "nope", "item": "", "key": "", "seconds": 1, "units": 0, "unit": "", '
                                           b'"cached": false, "invocation": "i", "machine": "m"}\n'])
def test_a_torn_or_foreign_ledger_line_is_skipped_said_once_and_cut_off_by_the_next_append(tmp_path, capsys, torn):
    path = tmp_path / LEDGER
    _measured(path)
    with open(path, "ab") as f:
        f.write(torn)
    assert len(read_ledger(path)) == 2 and len(read_ledger(path)) == 2
    assert capsys.readouterr().err.count("skipped 1 unreadable line") == 1
    _measured(path)  # the record after a torn tail is whole, not glued onto it
    assert len(read_ledger(path)) == 4


def test_a_full_disk_during_an_append_leaves_the_ledger_as_it_was(tmp_path, monkeypatch):
    import errno
    import os

    from bench.infra.store import OutOfDiskError
    path = tmp_path / LEDGER
    _measured(path)
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutOfDiskError, match="stages.jsonl"):
        _measured(path, 50)
    assert path.read_bytes() == before


def test_rates_use_only_real_work_on_the_same_machine():
    watch = Stopwatch("cpu")
    watch.record("sampling", "net", 6.0, units=12)
    watch.record("sampling", "net", 4.0, units=8)
    watch.record("train", "model", 0.1, units=100, cached=True)  # a cache load says nothing about training
    watch.record("data", "digits", 1.0)  # no units: no rate
    elsewhere = Stopwatch("cpu")
    elsewhere.machine = "cpu:another machine"
    elsewhere.record("sampling", "net", 100.0, units=1)
    got = rates([pd.DataFrame(watch.entries), pd.DataFrame(elsewhere.entries)], watch.machine)
    assert got == {("sampling", "net"): pytest.approx(0.5)}


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="stages are data"):
        with Stopwatch("cpu").stage("coffee"):
            pass


def test_a_suite_run_ledgers_every_stage_and_agrees_with_its_cells(finished):
    suite_dir = finished / "full" / "tiny"
    ledger = read_ledger(suite_dir / LEDGER)
    assert set(ledger.stage) == set(STAGES)
    cells = [json.loads(p.read_text()) for p in suite_dir.glob("runs/*/metrics.json")]
    sampling = ledger[ledger.stage == "sampling"]
    # the ledger and the cells record the same measurement of sampling, and count the same work
    assert sampling.seconds.sum() == pytest.approx(sum(c["sampling_seconds"] for c in cells))
    assert sampling.units.sum() == pytest.approx(sum(c["sampled_images"] * (c["nfe_per_image"] + 3 * c["classifier_evals_per_image"])
                                                     for c in cells))
    trained = ledger[(ledger.stage == "train") & ~ledger.cached]
    assert len(trained) == 3  # two diffusion models and one classifier, each trained once
    features = ledger[ledger.stage == "features"]
    assert features.units.sum() == sum(c["sampled_images"] for c in cells)
    assert "## Where the time went (stage ledger)" in (suite_dir / "report.md").read_text()


def test_the_plan_prices_unfinished_cells_at_the_ledger_rates(finished, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    ledger = read_ledger(finished / "full" / "tiny" / LEDGER)
    cells = SUITES["tiny"].build()
    table = plan(cells, "cpu", finished / "full", "tiny")
    assert table.done.all() and (table.est_seconds == 0).all()  # nothing left to run
    forced = plan(cells, "cpu", finished / "full", "tiny", force=True)  # --force --dry-run prices the rerun
    assert not forced.done.any() and forced.sampling_s.sum() == pytest.approx(
        ledger[ledger.stage == "sampling"].seconds.sum(), rel=1e-6)
    assert (forced.train_s == 0).all()  # cached models are not retrained by --force
    bigger = [Cell(c.name, replace(c.spec, sample=replace(c.spec.sample, num_samples=2 * c.spec.sample.num_samples)))
              for c in cells]
    table = plan(bigger, "cpu", finished / "full", "tiny")
    sampling = ledger[ledger.stage == "sampling"]
    assert not table.done.any() and table.basis.str.contains("sampling: ledger").all()
    assert table.sampling_s.sum() == pytest.approx(2 * sampling.seconds.sum(), rel=1e-6)  # one rate, twice the work
    assert (table.train_s == 0).all()  # the models are cached
