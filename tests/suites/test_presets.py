"""The paper-scale presets run end to end on CPU at toy scale, on small files in the released formats
(CIFAR-10 python batches, downsampled-ImageNet npz), with Inception features: the first GPU user
must not meet the first execution of this code."""
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from bench.runner import cli as runner

TOY = ["--set", "net.channels=8", "--set", "net.blocks_per_level=1", "--set", "train.steps=3",
       "--set", "train.batch_size=8", "--set", "sample.num_samples=6", "--set", "sample.batch_size=6",
       "--set", "sample.steps=2", "--set", "classifier.steps=2", "--set", "classifier.width=8",
       "--set", "classifier.batch_size=8"]


def _cifar_batches(root, monkeypatch):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}, f)
    import torchvision.datasets.cifar as cifar
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: True)  # md5s of the real release


def _imagenet64_npz(root, monkeypatch):
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(root / "train_data_batch_1.npz", data=rng.integers(0, 256, (12, 3 * 64 * 64), dtype=np.uint8),
             labels=np.arange(1, 13) % 4 + 1)  # 1-based, as released
    np.savez(root / "val_data.npz", data=rng.integers(0, 256, (6, 3 * 64 * 64), dtype=np.uint8),
             labels=np.arange(1, 7) % 4 + 1)


@pytest.mark.slow
@pytest.mark.parametrize("suite,make", [("cifar10", _cifar_batches), ("imagenet64", _imagenet64_npz)])
def test_preset_runs_end_to_end_at_toy_scale(suite, make, tmp_path, cache_dir, monkeypatch):
    monkeypatch.delenv("BENCH_INCEPTION_WEIGHTS", raising=False)
    data = tmp_path / "data"
    make(data, monkeypatch)
    for cells in ("cfg_p0.1_w0.1_T256", "clf-*s1_*"):
        assert runner.main(["--suite", suite, "--out", str(tmp_path / "out"), "--quiet", "--only", cells,
                            "--set", f"data.root={data}", *TOY]) == 0
    runs = sorted((tmp_path / "out" / suite / "runs").glob("*/metrics.json"))
    assert len(runs) == 2
    for path in runs:
        metrics = json.loads(path.read_text())
        assert metrics["extractor"].startswith("gb-inception-v3-compat-") and np.isfinite(metrics["fid"])
        assert metrics["num_samples"] == 6 and "is_mean" not in metrics  # no classifier in the FID Inception
    table = pd.read_csv(tmp_path / "out" / suite / "table.csv")
    assert len(table) == 2 and (tmp_path / "out" / suite / "report.md").exists()
