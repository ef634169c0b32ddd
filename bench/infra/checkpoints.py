"""Checkpoints: a `state_dict` plus the spec as JSON, written atomically with its sha256 beside it,
and loaded only after the digest matches and only with `weights_only=True` (no code is unpickled)."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from bench.infra.store import CorruptFileError, atomic_write_bytes, sha256_bytes


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
    ckpt = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or not {"state_dict", "spec"} <= set(ckpt):
        raise CorruptFileError(f"{path}: intact but not a guidance-bench checkpoint (no state_dict and spec); "
                               "written by another version or program")
    ckpt["spec"] = json.loads(ckpt["spec"])
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
