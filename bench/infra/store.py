"""The results store and the files it trusts only when complete.

Every write goes to a temporary file in the same folder and is renamed into place, so a
killed process never leaves a half-written file under the final name; a full disk is an
OutOfDiskError naming the file. Checkpoints (bench/infra/checkpoints.py) and weights caches check
the sha256 written beside each file before trusting it. `load_runs` reads a suite's finished cells
back as one table.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.spec.errors import BenchError


class CorruptFileError(BenchError, RuntimeError):
    """A file failed its integrity check; it is never trusted."""


class OutOfDiskError(BenchError, OSError):
    """The disk filled while a file was written; no partial file is left under its name."""


class ResultsError(BenchError, FileNotFoundError):
    """A results folder that is not one (a file, or no finished runs)."""


def cache_root() -> Path:
    """Where trained models, converted weights and reference features live (git-ignored): $BENCH_CACHE, default ./.cache."""
    return Path(os.environ.get("BENCH_CACHE", ".cache"))


def atomic_write_bytes(path: str | os.PathLike, blob: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise _out_of_disk(path) from err
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _out_of_disk(path: str | os.PathLike) -> OutOfDiskError:
    return OutOfDiskError(f"out of disk space while writing {path}; finished cells are kept and no partial "
                          "record or file was left; free space and rerun to resume")


def append_record(path: str | os.PathLike, text: str) -> None:
    """Append newline-terminated `text` to a log so that it holds all of it or none of it.

    Under an exclusive flock (concurrent runners append to one ledger), unbuffered: a torn tail left
    by a killed writer (bytes after the last newline) is cut off first, so it never swallows this
    record; then the record is written and fsynced, and if any write fails (ENOSPC included) the
    file is truncated back to its length before the append."""
    if not text.endswith("\n"):
        raise ValueError("append_record needs newline-terminated records")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:
            pass
        size = os.lseek(fd, 0, os.SEEK_END)
        tail = os.pread(fd, min(size, 65536), size - min(size, 65536))
        if tail and not tail.endswith(b"\n") and (b"\n" in tail or size <= 65536):
            size -= len(tail) - tail.rfind(b"\n") - 1
            os.ftruncate(fd, size)
        blob, written = text.encode(), 0
        try:
            while written < len(blob):
                written += os.pwrite(fd, blob[written:], size + written)
            os.fsync(fd)
        except OSError as err:
            os.ftruncate(fd, size)
            if err.errno == errno.ENOSPC:
                raise _out_of_disk(path) from err
            raise
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def sha256_bytes(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    return sha256_bytes(Path(path).read_bytes())


class CellLock:
    """An advisory lock (flock) on one cell of a results folder (or one model in the cache), so that
    concurrent runners never compute the same cell (or train the same model) at once. The kernel
    drops it when the process dies, SIGKILL included, so a killed run never leaves a stale lock.
    Without fcntl (Windows) it always succeeds, and per-file atomic writes still keep every file whole."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.handle = None

    def acquire(self, wait: bool) -> bool:
        try:
            import fcntl
        except ImportError:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            self.handle.close()
            self.handle = None
            return False

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the descriptor releases the flock
            self.handle = None


REPLICATES_FILE = "bootstrap.npz"


def write_replicates(path: str | os.PathLike, replicates: dict[str, np.ndarray]) -> None:
    """A cell's bootstrap replicates, one float64 array per metric (draw-matched across cells)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **replicates)
    atomic_write_bytes(path, buffer.getvalue())


def read_replicates(run_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The replicates of a finished cell ({} for a cell scored before intervals existed), each a 1-d
    float array; a file that is not that is a CorruptFileError naming it (never unpickled)."""
    path = Path(run_dir) / REPLICATES_FILE
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as stored:
            replicates = {key: stored[key] for key in stored.files}
    except Exception as err:
        raise CorruptFileError(f"{path} is not a readable .npz of replicates ({type(err).__name__})") from None
    bad = [k for k, v in replicates.items() if v.ndim != 1 or v.dtype.kind != "f"]
    if bad:
        raise CorruptFileError(f"{path}: {', '.join(bad)} are not 1-d float arrays of replicates")
    return replicates


RUN_FILES = ("metrics.json", "spec.json", "env.json")


def run_problem(run_dir: str | os.PathLike) -> str | None:
    """Why a cell's folder is not a finished cell (None when it is): each of RUN_FILES present and a
    JSON object, env.json with its provenance, metrics with its run id, spec hash and FID, spec.json
    a valid spec whose hash is metrics.json's, and the replicates (when present) readable."""
    from bench.spec.errors import SpecError
    from bench.spec.hashing import from_dict, stable_hash
    from bench.spec.sections import RunSpec
    run_dir = Path(run_dir)
    stored = {}
    for name in RUN_FILES:
        try:
            stored[name] = read_json(run_dir / name)
        except FileNotFoundError:
            return f"{name} is missing"
        except (ValueError, UnicodeDecodeError, IsADirectoryError):
            return f"{name} is not JSON (truncated or corrupt)"
        if not isinstance(stored[name], dict):
            return f"{name} holds a {type(stored[name]).__name__}, not a JSON object"
    if not {"git_commit", "packages", "device"} <= set(stored["env.json"]):
        return "env.json lacks its git_commit, packages or device"
    metrics = stored["metrics.json"]
    if not (isinstance(metrics.get("run_id"), str) and isinstance(metrics.get("spec_hash"), str)
            and isinstance(metrics.get("fid"), (int, float))):
        return "metrics.json lacks its run_id, spec_hash or fid"
    try:
        spec_hash = stable_hash(from_dict(RunSpec, stored["spec.json"]))
    except (SpecError, TypeError, ValueError, AttributeError) as err:
        return f"spec.json is not a valid spec ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
    if spec_hash != metrics["spec_hash"]:
        return f"spec.json (hash {spec_hash}) is not the spec metrics.json was computed for ({metrics['spec_hash']})"
    try:
        read_replicates(run_dir)
    except CorruptFileError as err:
        return str(err).replace(str(run_dir / REPLICATES_FILE), REPLICATES_FILE)
    return None


def results_folder(path: str | os.PathLike) -> Path:
    """`path` as a results root: an existing folder or a path to create, never a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ResultsError(f"--out {str(path)!r} is a file; name a folder for the results (it is created if missing)")
    return path


def load_runs(*suite_dirs: Path) -> pd.DataFrame:
    """One row per finished cell (metrics.json + spec.json), merged over folders (e.g. shards). A cell
    whose files fail `run_problem` is left out, named on stderr with the command that recomputes it."""
    rows = {}
    for suite_dir in suite_dirs:
        for metrics_path in sorted((Path(suite_dir) / "runs").glob("*/metrics.json")):
            problem = run_problem(metrics_path.parent)
            if problem:
                cell = metrics_path.parent.name.rpartition("-")[0] or metrics_path.parent.name
                print(f"note: leaving out {metrics_path.parent}: {problem}; recompute it with: python -m bench.run "
                      f"--suite {Path(suite_dir).name} --only '{cell}'", file=sys.stderr)
                continue
            metrics = {key: value for key, value in read_json(metrics_path).items() if not isinstance(value, list)}
            spec = read_json(metrics_path.parent / "spec.json")
            params = dict(spec["guidance"]["params"])
            metrics.update(base=params.get("base"), noise_aware=spec["classifier"]["noise_aware"],
                           seed=spec["sample"]["seed"], grid=str(metrics_path.parent / "grid.png"),
                           run_dir=str(metrics_path.parent))
            # cells stored before method records carried these columns
            metrics.setdefault("strength", metrics.get("w") if metrics.get("w") is not None else metrics.get("scale"))
            metrics.setdefault("method_label", metrics["method"])
            rows[metrics["run_id"]] = metrics
    if not rows:
        raise ResultsError(f"no finished runs under {', '.join(str(d) for d in suite_dirs)}")
    table = pd.DataFrame(list(rows.values()))
    return table.sort_values(["method", "p_uncond", "steps", "seed", "w", "scale"], na_position="last").reset_index(drop=True)


def notes_section(folder: Path) -> list[str]:
    """The hand-written reading of the runs (`notes.md` beside the report, with the commands it
    quotes), placed in the generated report under its own heading; nothing when there is none."""
    notes = folder / "notes.md"
    if not notes.exists():
        return []
    return ["## Notes (written by hand from the runs above)", "", notes.read_text().strip(), ""]
