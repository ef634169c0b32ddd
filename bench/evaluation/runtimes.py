"""Runtimes that compute an extractor's features from uint8 images, each a record in RUNTIMES:

  torch-eager   torch-fidelity's module in PyTorch, eager, fp32: the reference arithmetic;
  openvino      the same module converted once by OpenVINO (`ov.convert_model`), saved as IR with its
                weights in fp32 (never compressed to fp16) and run with INFERENCE_PRECISION_HINT=f32, so
                no layer is silently bf16 on CPUs with native bf16;
  onnxruntime   the same module exported once to ONNX (`torch.onnx.export`) and run by ONNX Runtime's
                CPU provider with every graph optimisation.

An export is keyed by the extractor's weights digest, the input's (C, H, W) and the runtime's version,
written atomically beside a sidecar with the sha256 of every file, and read back as bytes that are
checked against it before the runtime sees them; a file that fails the check is exported again. The
exports hold a graph and tensors, not pickles. Every runtime computes the same function: y(x) for a
uint8 batch x of shape (n, C, H, W) is the tuple of the extractor's layers in its features_list order.
Whether a runtime's numbers are the reference's is decided by measurement (bench/evaluation/runtime_choice.py).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bench.infra.store import atomic_write_bytes, atomic_write_json, sha256_bytes
from bench.spec.errors import BenchError
from bench.spec.registry import Registry

Features = Callable[[torch.Tensor], tuple[torch.Tensor, ...]]


class FeatureRuntimeError(BenchError, RuntimeError):
    """A runtime that is not installed, or that cannot run on the device asked for."""


@dataclass(frozen=True)
class FeatureRuntime:
    """How to run an extractor module: `package` is the distribution it needs (None: torch itself),
    `devices` the device types it runs on, and `build(module, shape, folder)` returns the features
    function, exporting the module into `folder` first where the runtime needs a file (named by the
    extractor's weights `digest`)."""
    build: Callable[[torch.nn.Module, tuple[int, int, int], Path, str], Features]
    devices: tuple[str, ...]
    package: str | None = None

    def version(self) -> str:
        return torch.__version__ if self.package is None else metadata.version(self.package)

    def unavailable(self, device: str) -> str | None:
        """Why this runtime cannot run here on `device`, or None."""
        if torch.device(device).type not in self.devices:
            return f"runs on {', '.join(self.devices)} only"
        if self.package is not None:
            try:
                metadata.version(self.package)
            except metadata.PackageNotFoundError:
                return f"{self.package} is not installed (pip install {self.package})"
        return None


RUNTIMES: Registry[FeatureRuntime] = Registry("feature runtime", "feature runtimes", FeatureRuntimeError)


class _Outputs(torch.nn.Module):
    """The extractor as a plain module returning its layers' tuple (what the exporters trace)."""

    def __init__(self, extractor: torch.nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.extractor(x))


def _eager(module: torch.nn.Module, shape: tuple[int, int, int], folder: Path, digest: str) -> Features:
    device = next(module.parameters()).device

    def features(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            return tuple(y.float().cpu() for y in module(x.to(device, non_blocking=True)))
    return features


def _verified_files(folder: Path, stem: str, suffixes: tuple[str, ...]) -> dict[str, bytes] | None:
    """The export's files as bytes if its sidecar lists them with these digests, else None."""
    sidecar = folder / f"{stem}.sha256.json"
    try:
        digests = json.loads(sidecar.read_text())
        blobs = {s: (folder / f"{stem}{s}").read_bytes() for s in suffixes}
    except (OSError, ValueError):
        return None
    if not isinstance(digests, dict) or any(digests.get(s) != sha256_bytes(b) for s, b in blobs.items()):
        print(f"exporting {stem} again: its files do not match {sidecar.name}")
        return None
    return blobs


def _store_files(folder: Path, stem: str, blobs: dict[str, bytes]) -> None:
    for suffix, blob in blobs.items():
        atomic_write_bytes(folder / f"{stem}{suffix}", blob)
    atomic_write_json(folder / f"{stem}.sha256.json", {s: sha256_bytes(b) for s, b in blobs.items()})


def export_stem(runtime: str, shape: tuple[int, int, int], digest: str) -> str:
    return f"{digest[:16]}-{'x'.join(map(str, shape))}-{runtime}-{RUNTIMES[runtime].version()}"


def _example(shape: tuple[int, int, int]) -> torch.Tensor:
    return torch.zeros(2, *shape, dtype=torch.uint8)


def _openvino(module: torch.nn.Module, shape: tuple[int, int, int], folder: Path, digest: str) -> Features:
    import openvino as ov
    stem = export_stem("openvino", shape, digest)
    blobs = _verified_files(folder, stem, (".xml", ".bin"))
    core = ov.Core()
    if blobs is None:
        converted = ov.convert_model(_Outputs(module).eval(), example_input=_example(shape))
        converted.reshape({converted.inputs[0]: ov.PartialShape([-1, *shape])})
        scratch = folder / f"{stem}.tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        ov.save_model(converted, scratch / "model.xml", compress_to_fp16=False)
        blobs = {s: (scratch / f"model{s}").read_bytes() for s in (".xml", ".bin")}
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()
        _store_files(folder, stem, blobs)
    model = core.read_model(model=blobs[".xml"], weights=ov.Tensor(np.frombuffer(blobs[".bin"], dtype=np.uint8).copy()))
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_NUM_THREADS": torch.get_num_threads()})
    request = compiled.create_infer_request()

    def features(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = request.infer(x.contiguous().numpy())
        return tuple(torch.from_numpy(np.array(out[port])) for port in compiled.outputs)
    return features


def _onnxruntime(module: torch.nn.Module, shape: tuple[int, int, int], folder: Path, digest: str) -> Features:
    import onnxruntime as ort
    stem = export_stem("onnxruntime", shape, digest)
    blobs = _verified_files(folder, stem, (".onnx",))
    if blobs is None:
        buffer = io.BytesIO()
        torch.onnx.export(_Outputs(module).eval(), (_example(shape),), buffer, dynamo=False, input_names=["images"],
                          dynamic_axes={"images": {0: "n"}})
        blobs = {".onnx": buffer.getvalue()}
        _store_files(folder, stem, blobs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep: torch shares the cores
    session = ort.InferenceSession(blobs[".onnx"], options, providers=["CPUExecutionProvider"])

    def features(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(y) for y in session.run(None, {"images": x.contiguous().numpy()}))
    return features


RUNTIMES.add("torch-eager", FeatureRuntime(_eager, ("cpu", "cuda")))
RUNTIMES.add("openvino", FeatureRuntime(_openvino, ("cpu",), "openvino"))
RUNTIMES.add("onnxruntime", FeatureRuntime(_onnxruntime, ("cpu",), "onnxruntime"))
