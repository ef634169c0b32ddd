"""Reference statistics from a file (`eval.reference_stats=PATH`), so FID is computed against the same
reference as a published number rather than against features the harness computes itself:

  ADM's reference batch  .npz with `mu`, `sigma` (Inception pool, 2048-d) and optionally `mu_s`,
                         `sigma_s` (sFID's spatial features); its `arr_0` images are not read;
  clean-fid's statistics .npz with `mu`, `sigma`;
  EDM2's reference       .pkl, a dict with `fid` and/or `fd_dinov2`, each a dict of `mu` and `sigma`
                         (and `num_images`), read with an unpickler that admits only plain containers
                         and numpy arrays (as the CIFAR-10 reader), so a tampered file runs nothing.

npz files are read with allow_pickle=False. `for_extractor` picks the block of a cell's main extractor:
`fd_dinov2` for DINOv2 features, else `fid`; its dimension must match the extractor's. With statistics
only, FID and sFID (and their intervals over the samples) are computed; KID, precision/recall and
density/coverage need the reference's features and are left out.
"""
from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np

from bench.spec.errors import BenchError

FORMATS = "ADM's or clean-fid's .npz (mu, sigma[, mu_s, sigma_s]) or EDM2's .pkl (fid / fd_dinov2: {mu, sigma})"
WITHOUT_FEATURES = ("KID, precision/recall and density/coverage need the reference features; a statistics file "
                    "holds only their mean and covariance")


class ReferenceStatsError(BenchError, ValueError):
    """A statistics file that is missing, malformed or of another feature space; the message says which."""


class _PlainOnly(pickle.Unpickler):
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise ReferenceStatsError(f"refusing to unpickle {module}.{name}: an EDM2 reference holds only dicts, "
                                      "numbers and numpy arrays")
        return super().find_class(module, name)


def _moments(block, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        mu, sigma = np.asarray(block["mu"], dtype=np.float64), np.asarray(block["sigma"], dtype=np.float64)
    except (KeyError, TypeError, ValueError, IndexError):
        raise ReferenceStatsError(f"{where} has no numeric mu and sigma; expected {FORMATS}") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)) or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ReferenceStatsError(f"{where}: mu {mu.shape} and sigma {sigma.shape} are not a finite d and d x d")
    return mu, sigma


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as f:
                blocks = {"fid": _moments(f, path)}
                if "mu_s" in f.files and "sigma_s" in f.files:
                    blocks["sfid"] = _moments({"mu": f["mu_s"], "sigma": f["sigma_s"]}, f"{path} (mu_s, sigma_s)")
                return blocks
        except (OSError, ValueError) as err:
            raise ReferenceStatsError(f"{path} is not a readable npz ({err}); expected {FORMATS}") from None
    if path.endswith(".pkl"):
        try:
            with open(path, "rb") as f:
                data = _PlainOnly(f).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as err:
            raise ReferenceStatsError(f"{path} is not a readable pickle ({err}); expected {FORMATS}") from None
        blocks = {key: _moments(data[key], f"{path} [{key!r}]") for key in ("fid", "fd_dinov2")
                  if isinstance(data, dict) and key in data}
        if not blocks:
            raise ReferenceStatsError(f"{path} holds no 'fid' or 'fd_dinov2' statistics; expected {FORMATS}")
        return blocks
    raise ReferenceStatsError(f"eval.reference_stats={path!r}: name a .npz or .pkl file, {FORMATS}")


def read(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{block: (mu, sigma)} of the file (`fid`, and `sfid` or `fd_dinov2` where it has them), read once per process."""
    given = Path(path).expanduser()
    if not given.is_file():
        raise ReferenceStatsError(f"eval.reference_stats={str(path)!r} does not exist; name {FORMATS}")
    stat = given.stat()
    return _read(str(given), stat.st_mtime_ns, stat.st_size)


def for_extractor(path: str | Path, kind: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The (mu, sigma) block for the main extractor of `kind` and feature dimension `dim`."""
    block = "fd_dinov2" if kind == "dinov2" else "fid"
    blocks = read(path)
    if block not in blocks:
        raise ReferenceStatsError(f"{path} has no {block!r} statistics for {kind} features (it has "
                                  f"{', '.join(blocks)})")
    mu, sigma = blocks[block]
    if len(mu) != dim:
        raise ReferenceStatsError(f"{path}: its {block!r} statistics are {len(mu)}-d but the {kind} extractor's "
                                  f"features are {dim}-d; name statistics of the same feature space")
    return mu, sigma
