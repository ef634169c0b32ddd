"""Which device runs a command: the default (CUDA where torch sees one) and a check that torch can
run on the one asked for, refused with what is available before any work."""
from __future__ import annotations

import torch

from bench.spec.errors import BenchError


class DeviceError(BenchError):
    """A device that torch cannot run on here."""


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    """`device` if torch can run on it here, else a DeviceError saying what is available."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and index in ("", "0"):
        return device
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceError(f"unknown device {device!r}: use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(f"--device {device}: torch sees no CUDA device here (no GPU or driver, or a CPU-only "
                          f"torch build {torch.__version__}); use --device cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                          f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device
