"""Each loader on small files written here in the real on-disk format."""
import os
import pickle

import numpy as np
import pytest
import torch

from bench.config import DataSpec
from bench.data import DatasetError, load_dataset


def test_mnist_split_is_fixed_and_balanced():
    train, held = load_dataset(DataSpec("mnist"), "train"), load_dataset(DataSpec("mnist"), "heldout")
    assert train.images.shape == (4000, 1, 28, 28) and held.images.shape == (1000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.images.max() == 255
    assert torch.bincount(held.labels).tolist() == [100] * 10
    assert torch.equal(load_dataset(DataSpec("mnist"), "heldout").images, held.images)


def test_digits_split():
    train, held = load_dataset(DataSpec("digits"), "train"), load_dataset(DataSpec("digits"), "heldout")
    assert len(train) + len(held) == 1797 and train.shape == (1, 8, 8)
    assert train.images.max() == 255 and len(torch.unique(train.images)) == 17


def test_resize():
    assert load_dataset(DataSpec("digits", size=16), "heldout").shape == (1, 16, 16)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DatasetError, match="known datasets: cifar10, digits, folder, mnist, npz"):
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
