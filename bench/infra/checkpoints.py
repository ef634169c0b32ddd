"""Checkpoints: a `state_dict` plus the spec as JSON, written atomically with its sha256 beside it,
and loaded only after the digest matches and only with `weights_only=True` (no code is unpickled).

`read_tensors` is the one way any weights file enters the harness (checkpoints, caches, user
checkpoints, --inception-weights, diffusers folders): safetensors, or a torch pickle read from
bytes with `weights_only=True`; libraries are handed the state dict, never a path to unpickle."""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from bench.infra.store import CorruptFileError, atomic_write_bytes, sha256_bytes
from bench.spec.errors import BenchError


class WeightsFileError(BenchError, ValueError):
    """A weights file that does not exist or does not hold tensors only; the message names it."""


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _why_not_tensors(err: Exception) -> str:
    """PyTorch's reason in our words (its own message advises weights_only=False, which we never do)."""
    foreign = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if foreign:
        return f"it pickles {foreign[1]}, not only tensors, so it was refused unread and nothing in it ran"
    if isinstance(err, EOFError):
        return "it is empty or truncated"
    return "it is neither a torch.save archive of tensors nor a safetensors file"


def read_tensors(source: str | os.PathLike | bytes, name: str = "") -> Any:
    """The object in a weights file (or its bytes), read without running any code: safetensors files
    by name (.safetensors), anything else as a torch archive with weights_only=True. A file that
    is missing, is not a weights file, or asks to run code (a pickle of objects) is a
    WeightsFileError naming it, in one line."""
    name = name or str(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise WeightsFileError(f"weights file {name} does not exist (or is not a file)")
        if path.suffix == ".safetensors":
            from safetensors.torch import load as load_safetensors
            try:
                return load_safetensors(path.read_bytes())
            except Exception as err:
                raise WeightsFileError(f"{name} is not a safetensors file ({_first_line(err)})") from None
        source = path.read_bytes()
    try:
        return torch.load(io.BytesIO(source), map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsFileError(f"{name} is not a weights file: {_why_not_tensors(err)} (weights are read with "
                               "weights_only=True; save a state dict of tensors: torch.save(model.state_dict(), path))") from None


def save_checkpoint(path: str | os.PathLike, state: dict[str, torch.Tensor], spec: dict[str, Any], **extra: Any) -> str:
    """Write {state_dict, spec JSON, extra} atomically plus `<path>.sha256`; returns the digest."""
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "spec": json.dumps(spec, sort_keys=True), **extra}, buffer)
    blob = buffer.getvalue()
    digest = sha256_bytes(blob)
    atomic_write_bytes(path, blob)
    atomic_write_bytes(f"{path}.sha256", (digest + "\n").encode())
    return digest


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint after checking it against the sha256 written beside it."""
    path = Path(path)
    blob = path.read_bytes()
    sidecar = Path(f"{path}.sha256")
    expected = sidecar.read_text().strip() if sidecar.exists() else None
    if expected is None:
        raise CorruptFileError(f"{path}: no sha256 recorded beside it; refusing to trust it")
    actual = sha256_bytes(blob)
    if actual != expected:
        raise CorruptFileError(f"{path}: sha256 {actual} does not match the recorded {expected}; "
                               "the file is truncated, corrupt or not the expected weights")
    try:
        ckpt = read_tensors(blob, str(path))
    except WeightsFileError as err:
        raise CorruptFileError(f"{err}; it is not a guidance-bench checkpoint") from None
    if not isinstance(ckpt, dict) or not {"state_dict", "spec"} <= set(ckpt):
        raise CorruptFileError(f"{path}: intact but not a guidance-bench checkpoint (no state_dict and spec); "
                               "written by another version or program")
    try:
        ckpt["spec"] = json.loads(ckpt["spec"])
    except (TypeError, ValueError):
        raise CorruptFileError(f"{path}: its spec is not JSON; written by another version or program") from None
    return ckpt


def load_cached_weights(module: torch.nn.Module, path: str | os.PathLike) -> bool:
    """Load a cached, intact state_dict into `module`; False (saying why when corrupt) means retrain."""
    if not Path(path).exists():
        return False
    try:
        module.load_state_dict(load_checkpoint(path)["state_dict"])
        return True
    except CorruptFileError as err:
        print(f"retraining: {err}")
        return False
