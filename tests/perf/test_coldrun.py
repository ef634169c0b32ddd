"""The cold-run comparison (bench/perf/coldrun.py) on the tiny suite: a run compared with itself is
equal within every tolerance, and a planted change is flagged."""
import json
import shutil

from bench.perf.coldrun import cold_vs_stored


def test_a_run_against_itself_is_within_tolerance_and_a_planted_change_is_not(finished, tmp_path):
    suite = finished / "full" / "tiny"
    table = cold_vs_stored(suite, suite)
    assert len(table) and table.within.all() and (table.difference == 0).all()
    assert ((table.bootstrap_share > 0) & (table.bootstrap_share < 1)).all()
    copy = tmp_path / "tiny"
    shutil.copytree(suite, copy)
    victim = sorted((copy / "runs").glob("*/metrics.json"))[0]
    metrics = json.loads(victim.read_text())
    metrics["fid"] += 1e-3
    victim.write_text(json.dumps(metrics))
    changed = cold_vs_stored(copy, suite)
    flagged = changed[~changed.within]
    assert list(flagged.metric) == ["fid"] and flagged.cell.iloc[0] == metrics["cell"]
