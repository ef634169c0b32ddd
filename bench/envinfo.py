"""The environment of a run: versions, device, git commit (written as env.json), and which device runs it."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from importlib import metadata

import torch

from .errors import BenchError

PACKAGES = ("torch", "torchvision", "timm", "torch-fidelity", "clean-fid", "numpy", "scipy", "pandas")


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


def _git_commit() -> str:
    """HEAD (+dirty); where the code was copied without its .git, $BENCH_GIT_COMMIT if set."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.environ.get("BENCH_GIT_COMMIT", "unknown")


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "git_commit": _git_commit(),
        "packages": versions,
    }
