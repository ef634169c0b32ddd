"""Metrics: torch-fidelity's numbers against independent computations, invariances and sensitivity."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity

from bench.spec.sections import DataSpec
from bench.data.datasets import load_dataset
from bench.evaluation.evaluator import WEIGHTS_DIR, load_evaluator
from bench.evaluation.features import INCEPTION_FILE, FeatureError, extract, get_extractor
from bench.evaluation.metrics import (MetricInputError, class_consistency, distribution_metrics, fid_and_stats,
                                      inception_score, kid)
from bench.infra.store import CorruptFileError


class _Images(torch.utils.data.Dataset):
    """In-memory uint8 images as torch-fidelity's own pipeline takes them: one uint8 tensor per item."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


@pytest.fixture(scope="module")
def mnist():
    return load_dataset(DataSpec("mnist5k"), "train"), load_dataset(DataSpec("mnist5k"), "heldout")


@pytest.fixture(scope="module")
def extractor():
    return get_extractor("evaluator", DataSpec("mnist5k"))


@pytest.fixture(scope="module")
def feats(mnist, extractor):
    train, held = mnist
    return extract(extractor, train.images), extract(extractor, held.images)


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID written independently of torch-fidelity and clean-fid."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def test_fid_of_a_set_against_itself_is_zero(feats):
    _, held = feats
    out = fid_and_stats(held["features"], held["features"])
    assert abs(out["fid"]) < 1e-6 and abs(out["fid_cleanfid"]) < 1e-6


def test_fid_matches_scipy_and_cleanfid(feats):
    train, held = feats
    out = fid_and_stats(held["features"], train["features"])
    independent = scipy_fid(held["features"].double().numpy(), train["features"].double().numpy())
    assert out["fid"] == pytest.approx(independent, rel=1e-4)
    assert out["fid_cleanfid"] == pytest.approx(out["fid"], rel=1e-4)
    assert out["fid"] > 0


def test_our_layered_metrics_equal_torch_fidelity_calculate_metrics(mnist, extractor, feats):
    train, held = mnist
    sample, reference = feats[1], feats[0]  # what scoring calls: bench/evaluation/scoring.py, score_features
    ours = {**distribution_metrics(sample[extractor.fid_layer], reference[extractor.fid_layer]),
            **inception_score(sample[extractor.isc_layer])}
    theirs = torch_fidelity.calculate_metrics(
        input1=_Images(held.images), input2=_Images(train.images), feature_extractor=extractor.name,
        feature_layer_fid="features", feature_layer_isc="logits", feature_layer_kid="features",
        fid=True, isc=True, kid=True, kid_subset_size=ours["kid_subset_size"], cuda=False, cache=False,
        verbose=False, save_cpu_ram=True)
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert ours["is_mean"] == pytest.approx(theirs["inception_score_mean"], rel=1e-4)
    assert ours["kid_mean"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-3, abs=1e-6)


def test_kid_agrees_with_cleanfid(feats):
    train, held = feats
    out = kid(held["features"], train["features"])
    assert out["kid_subset_size"] == 1000
    assert out["kid_cleanfid"] == pytest.approx(out["kid_mean"], abs=3 * out["kid_std"] / 10 + 1e-4)


def test_kid_subset_shrinks_to_small_sample_counts(feats):
    train, held = feats
    assert kid(held["features"][:100], train["features"])["kid_subset_size"] == 100


def test_too_few_samples_for_fid_is_a_clear_error(feats, extractor):
    train, held = feats
    small = {k: v[:40] for k, v in held.items()}
    with pytest.raises(MetricInputError, match="feature dimension 64"):
        distribution_metrics(small[extractor.fid_layer], train[extractor.fid_layer])


def test_inception_score_of_real_heldout_digits_is_near_ten(feats):
    """The committed mnist evaluator gives 9.18: a sharper network reaches 9.5-9.9, a random one ~1."""
    _, held = feats
    score = inception_score(held["logits"])["is_mean"]
    assert 9.0 < score <= 10.0


def test_inception_score_of_uniform_noise_is_near_one(extractor):
    noise = torch.randint(0, 256, (1000, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert inception_score(extract(extractor, noise)["logits"])["is_mean"] < 1.5


def test_fid_grows_with_noise_strength(mnist, extractor, feats):
    """Noise sd from 0 to 64 grey levels. Beyond that the images are mostly noise and the evaluator's
    features saturate (measured: FID 943 at sd 64, 927 at sd 128), so larger sds are not a sensitivity test."""
    train_feats, _ = feats
    held = mnist[1].images.float()
    g = torch.Generator().manual_seed(0)
    base_noise = torch.randn(held.shape, generator=g)
    fids = []
    for strength in (0, 4, 8, 16, 32, 64):
        noisy = (held + strength * base_noise).round().clamp(0, 255).to(torch.uint8)
        fids.append(fid_and_stats(extract(extractor, noisy)["features"], train_feats["features"])["fid"])
    assert all(a < b for a, b in zip(fids, fids[1:])), fids


def test_every_metric_is_batch_size_independent(mnist, extractor, feats):
    train_feats, _ = feats
    images = mnist[1].images[:300]
    a, b = extract(extractor, images, batch_size=7), extract(extractor, images, batch_size=300)
    for layer in a:
        torch.testing.assert_close(a[layer], b[layer], rtol=1e-5, atol=1e-5)
    ma, mb = ({**distribution_metrics(f[extractor.fid_layer], train_feats[extractor.fid_layer]),
               **inception_score(f[extractor.isc_layer])} for f in (a, b))
    for key, value in ma.items():
        if isinstance(value, float):
            assert value == pytest.approx(mb[key], rel=1e-4, abs=1e-6), key


def test_class_consistency_on_real_labels(mnist, feats):
    out = class_consistency(feats[1]["logits"], mnist[1].labels)
    assert out["class_accuracy"] > 0.97 and 0 < out["evaluator_confidence"] <= 1
    shuffled = class_consistency(feats[1]["logits"], (mnist[1].labels + 1) % 10)
    assert shuffled["class_accuracy"] < 0.3


def test_evaluator_with_wrong_sha256_is_refused(tmp_path):
    shutil.copy(WEIGHTS_DIR / "digits.pt", tmp_path / "digits.pt")
    manifest = (WEIGHTS_DIR / "digits.json").read_text()
    sha = load_evaluator("digits")[1]["sha256"]
    (tmp_path / "digits.json").write_text(manifest.replace(sha, "0" * 64))
    with pytest.raises(CorruptFileError, match="corrupt or not the recorded ones"):
        load_evaluator("digits", tmp_path)


def test_evaluator_retrain_command_on_a_tiny_budget(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.evaluation.evaluator", "--dataset", "digits", "--epochs", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    model, manifest = load_evaluator("digits", tmp_path)
    assert manifest["heldout_accuracy"] > 0.1 and model(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)).shape == (2, 10)


def test_committed_evaluators_meet_their_recorded_accuracy():
    from bench.evaluation.evaluator import accuracy
    for dataset in ("mnist5k", "digits"):
        model, manifest = load_evaluator(dataset)
        assert accuracy(model, load_dataset(DataSpec(dataset), "heldout")) == pytest.approx(manifest["heldout_accuracy"], abs=1e-9)


def test_inception_without_a_weights_file_is_the_packaged_one_and_a_missing_file_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    packaged = get_extractor("inception", DataSpec("mnist5k"))
    assert packaged.isc_layer is None and packaged.fid_layer == "2048"  # no classifier: IS comes from the evaluator
    with pytest.raises(FeatureError, match=f"does not exist. Name torch-fidelity's weights file {INCEPTION_FILE}"):
        get_extractor("inception", DataSpec("mnist5k"), str(tmp_path / INCEPTION_FILE))


def test_unknown_feature_extractor():
    with pytest.raises(FeatureError, match="known feature extractors: dinov2, evaluator, inception"):
        get_extractor("clip", DataSpec("mnist5k"))


def test_inception_plumbing_with_random_weights(tmp_path, monkeypatch, mnist):
    """Random weights in the right shapes: the values are meaningless, the flow is real."""
    import torch_fidelity.feature_extractor_inceptionv3 as inc
    with monkeypatch.context() as patch:
        patch.setattr(inc, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(inc.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        torch.manual_seed(0)  # PyTorch's default initialisation: random weights, valid BatchNorm buffers
        state = inc.FeatureExtractorInceptionV3("shape-probe", ["2048"]).state_dict()
    path = tmp_path / INCEPTION_FILE
    torch.save(state, path)
    monkeypatch.setenv("BENCH_INCEPTION_WEIGHTS", str(path))
    ex = get_extractor("inception", DataSpec("mnist5k"))
    assert ex.name.startswith("gb-inception-v3-compat-") and (ex.fid_layer, ex.isc_layer) == ("2048", "logits_unbiased")
    out = extract(ex, mnist[1].images[:6], batch_size=3)
    assert out["2048"].shape == (6, 2048) and out["logits_unbiased"].shape == (6, 1008)
    assert torch.isfinite(out["2048"]).all()
    # sFID's layer: Mixed_6d's first 1x1 convolution (after BN + ReLU), its first 7 channels, flattened
    from bench.evaluation.features import _module
    module, captured = _module(ex, "cpu"), []
    hook = module.Mixed_6d.branch1x1.register_forward_hook(lambda m, args, y: captured.append(y))
    with torch.no_grad():
        module(mnist[1].images[:6])
    hook.remove()
    assert out["spatial"].shape == (6, 7 * 17 * 17)
    assert torch.allclose(out["spatial"], captured[0][:, :7].flatten(1), atol=1e-4)
