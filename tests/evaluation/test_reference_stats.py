"""Reference statistics from a file: the harness's own statistics written as ADM's npz, clean-fid's npz
and EDM2's pkl give back the same FID to 1e-9; a file of another feature space or a pickle that asks
to run code is refused with one line."""
import os
import pickle

import numpy as np
import pytest
import torch

from bench.evaluation import reference_stats
from bench.evaluation.metrics import fid_against_moments, fid_and_stats
from bench.stats.bootstrap import FrechetReplicates


@pytest.fixture
def features():
    g = torch.Generator().manual_seed(0)
    return torch.randn(400, 16, generator=g) + 0.2, torch.randn(2000, 16, generator=g)


def moments(ref: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x = ref.double().numpy()
    return x.mean(0), np.cov(x.T)


def write(path, fmt: str, mu, sigma) -> None:
    if fmt == "adm":
        np.savez(path, mu=mu, sigma=sigma, mu_s=mu[:4], sigma_s=sigma[:4, :4], arr_0=np.zeros((2, 8, 8, 3), np.uint8))
    elif fmt == "cleanfid":
        np.savez(path, mu=mu, sigma=sigma)
    else:
        with open(path, "wb") as f:
            pickle.dump({"num_images": 2000, "fid": {"mu": mu, "sigma": sigma}, "fd_dinov2": {"mu": mu, "sigma": sigma}}, f)


@pytest.mark.parametrize("fmt, suffix", [("adm", ".npz"), ("cleanfid", ".npz"), ("edm2", ".pkl")])
def test_a_written_reference_gives_the_same_fid(tmp_path, features, fmt, suffix):
    sample, ref = features
    path = tmp_path / f"ref{suffix}"
    write(path, fmt, *moments(ref))
    mu, sigma = reference_stats.for_extractor(path, "evaluator", 16)
    assert fid_against_moments(sample, mu, sigma)["fid"] == pytest.approx(fid_and_stats(sample, ref)["fid"], abs=1e-9)
    at_moments = FrechetReplicates(sample, ref_moments=(mu, sigma))(torch.ones(1, 400, dtype=torch.float64))[0]
    assert at_moments == pytest.approx(FrechetReplicates(sample, ref)(torch.ones(1, 400, dtype=torch.float64))[0], abs=1e-9)
    assert ("sfid" in reference_stats.read(path)) == (fmt == "adm")
    if fmt == "edm2":
        assert reference_stats.for_extractor(path, "dinov2", 16)[0].shape == (16,)


def test_a_file_of_another_feature_space_is_refused_naming_both_dimensions(tmp_path, features):
    path = tmp_path / "ref.npz"
    write(path, "cleanfid", *moments(features[1]))
    with pytest.raises(reference_stats.ReferenceStatsError, match="16-d but the inception extractor's features are 2048-d"):
        reference_stats.for_extractor(path, "inception", 2048)


class Payload:
    def __reduce__(self):
        return os.system, ("touch should-not-exist",)


def test_a_pickle_that_runs_code_is_refused_unrun(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ref.pkl"
    path.write_bytes(pickle.dumps({"fid": {"mu": Payload(), "sigma": np.eye(2)}}))
    with pytest.raises(reference_stats.ReferenceStatsError, match="refusing to unpickle"):
        reference_stats.read(path)
    assert not (tmp_path / "should-not-exist").exists()


@pytest.mark.parametrize("name, content", [("ref.npz", b"junk"), ("ref.txt", b"")])
def test_malformed_or_unknown_files_are_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(reference_stats.ReferenceStatsError):
        reference_stats.read(path)


def test_a_cell_against_adms_npz_of_its_own_reference_gives_the_same_fid(tmp_path, monkeypatch):
    """The issue's check: a tiny cell scored against an ADM-format npz written from the harness's own
    reference features gives the FID of the same cell scored against the features (its own cache and
    results, so no other test's state is touched)."""
    import json

    from bench.infra.checkpoints import load_checkpoint
    from bench.runner import cli as runner
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cell = "cfg_p0.1_w0.5_T4"
    run = ["--suite", "tiny", "--only", cell, "--quiet", "--no-report"]
    assert runner.main([*run, "--out", str(tmp_path / "features")]) == 0
    [path] = (tmp_path / "cache" / "reference").glob("digits-heldout-*-gb-evaluator-*.pt")
    feats = load_checkpoint(path)["state_dict"]["features"].double().numpy()
    np.savez(tmp_path / "ref.npz", mu=feats.mean(0), sigma=np.cov(feats.T))
    assert runner.main([*run, "--out", str(tmp_path / "stats"), "--set", f"eval.reference_stats={tmp_path / 'ref.npz'}"]) == 0
    [new] = (tmp_path / "stats" / "tiny" / "runs").glob(f"{cell}-*/metrics.json")
    [old] = (tmp_path / "features" / "tiny" / "runs").glob(f"{cell}-*/metrics.json")
    a, b = json.loads(new.read_text()), json.loads(old.read_text())
    assert a["fid"] == pytest.approx(b["fid"], abs=1e-9) and a["reference_stats"].endswith("ref.npz")
    assert a["fid_lo"] <= a["fid"] <= a["fid_hi"] and "kid_mean" not in a
