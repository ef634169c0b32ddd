"""Which runtime computes an extractor's features on this machine, decided by measuring.

Every runtime that can run here (bench/evaluation/runtimes.py) is built for the extractor and the
images' (C, H, W) and checked against torch eager on real images (the first images it is asked to
extract) and on uniform noise: it is eligible only if, for every layer, max |y - y_eager| is within
TOLERANCE of max |y_eager|. Eligible runtimes are timed interleaved on the same images in the kind's
batch (the order rotates round by round and each keeps its fastest round, so drifts in load hit all
alike); the fastest wins if it beats eager by more than MIN_GAIN, otherwise eager stays.

The decision, with every timing and error, is cached under <cache>/feature-runtimes/decision-<key>.json
per (machine, device, extractor weights, shape, versions of torch, torch-fidelity and every runtime), so
a machine decides once and a reader can see why. In every process the chosen runtime is checked again
against eager on a few of the first images before it is used (a changed install or cache cannot pass
unnoticed). BENCH_FEATURE_RUNTIME=<name> skips the timing and uses that runtime (still checked).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from bench.evaluation.runtimes import RUNTIMES, Features, FeatureRuntimeError
from bench.infra.stages import machine_identity
from bench.infra.store import atomic_write_json, read_json, sha256_bytes
from bench.spec.errors import BenchError

TOLERANCE = 1e-4  # largest feature difference allowed, relative to the largest feature
RUNTIME_FID_TOLERANCE = 0.01  # how far FID may move between runtimes on the same images (tests/evaluation/test_runtimes.py)
MIN_GAIN = 1.05  # a runtime must be 5% faster than eager to be chosen
ROUNDS = 3
TIMED_IMAGES = 32
CHECKED_IMAGES = 4  # real and noise images each, checked again in every process
RUNTIME_ENV = "BENCH_FEATURE_RUNTIME"
REFERENCE = "torch-eager"


class RuntimeCheckError(BenchError, ValueError):
    """A runtime named by BENCH_FEATURE_RUNTIME whose features are not eager's."""


def relative_error(features: tuple[torch.Tensor, ...], reference: tuple[torch.Tensor, ...]) -> float:
    """max over layers of max |y - y_ref| / max |y_ref|."""
    return max(float((y.float() - r.float()).abs().max() / r.float().abs().max().clamp(min=1e-30))
               for y, r in zip(features, reference))


def noise_like(images: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *images.shape[1:]), generator=generator, dtype=torch.uint8)


def _versions() -> str:
    installed = []
    for name in ("torch", "torch-fidelity", *(r.package for r in RUNTIMES.values() if r.package)):
        try:
            installed.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            installed.append(f"{name}=absent")
    return " ".join(installed)


def decision_path(cache: Path, device: str, digest: str, shape: tuple[int, ...]) -> Path:
    key = sha256_bytes(repr((machine_identity(device), torch.device(device).type, digest, tuple(shape),
                             _versions())).encode())[:16]
    return cache / "feature-runtimes" / f"decision-{key}.json"


@dataclass
class ChosenRuntime:
    """The runtime a process uses for one (extractor, shape, device), and how it was chosen."""
    name: str
    features: Features
    decided_by: str  # "measured", "cached decision", or the environment variable


def _timed(candidates: dict[str, Features], images: torch.Tensor, batch: int) -> dict[str, float]:
    best = dict.fromkeys(candidates, float("inf"))
    names = list(candidates)
    for r in range(ROUNDS):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            for part in images.split(batch):
                candidates[name](part)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(images) / seconds for name, seconds in best.items()}


def decide(module: torch.nn.Module, images: torch.Tensor, digest: str, batch: int, device: str, folder: Path) -> dict:
    """Build, check and time every runtime that can run here; the decision record (not yet written)."""
    shape = tuple(images.shape[1:])
    real = images[:TIMED_IMAGES]
    probe = torch.cat([real[:TIMED_IMAGES // 2], noise_like(images, TIMED_IMAGES // 2)])
    eager = RUNTIMES[REFERENCE].build(module, shape, folder, digest)
    reference = eager(probe)
    rows, eligible = {}, {REFERENCE: eager}
    for name in RUNTIMES:
        runtime = RUNTIMES[name]
        reason = runtime.unavailable(device)
        if name == REFERENCE or reason:
            rows[name] = {"version": runtime.version() if not reason else None, "unavailable": reason}
            continue
        start = time.perf_counter()
        try:
            features = runtime.build(module, shape, folder, digest)
        except Exception as err:  # an exporter that cannot take this network: recorded, never chosen
            rows[name] = {"version": runtime.version(), "unavailable": f"build failed: {type(err).__name__}: {err}"}
            continue
        build_seconds = time.perf_counter() - start
        error = relative_error(features(probe), reference)
        rows[name] = {"version": runtime.version(), "build_seconds": build_seconds, "relative_error": error,
                      "eligible": error <= TOLERANCE}
        if error <= TOLERANCE:
            eligible[name] = features
    rates = _timed(eligible, torch.cat([real] * max(1, TIMED_IMAGES // len(real)))[:TIMED_IMAGES], batch)
    rows[REFERENCE].update(relative_error=0.0, eligible=True, version=torch.__version__)
    for name, rate in rates.items():
        rows[name].update(images_per_second=rate, speedup_vs_eager=rate / rates[REFERENCE])
    fastest = max(rates, key=rates.get)
    chosen = fastest if rates[fastest] > MIN_GAIN * rates[REFERENCE] else REFERENCE
    return {"chosen": chosen, "candidates": rows, "machine": machine_identity(device), "device": device,
            "extractor_sha256": digest, "shape": list(shape), "batch": batch, "tolerance": TOLERANCE,
            "checked_on": f"{len(probe) // 2} of the first images extracted and {len(probe) // 2} uniform-noise images",
            "timed_on": f"{TIMED_IMAGES} images, best of {ROUNDS} interleaved rounds", "versions": _versions()}


def _cached_choice(path: Path) -> str | None:
    try:
        record = read_json(path)
    except Exception:  # a torn or foreign file: decided again
        return None
    chosen = record.get("chosen") if isinstance(record, dict) else None
    return chosen if chosen in RUNTIMES else None


def choose(module: torch.nn.Module, images: torch.Tensor, digest: str, batch: int, device: str,
           cache: Path) -> ChosenRuntime:
    """The runtime for this extractor module on `device` for images shaped like `images` (see the module
    docstring), built and checked against eager on the first of `images`."""
    folder = cache / "feature-runtimes"
    shape = tuple(images.shape[1:])
    forced = os.environ.get(RUNTIME_ENV)
    if forced:
        if forced not in RUNTIMES:
            raise FeatureRuntimeError(f"{RUNTIME_ENV}={forced!r} is not a feature runtime; choose one of "
                                      f"{', '.join(RUNTIMES)} (or unset it to decide by measuring)")
        reason = RUNTIMES[forced].unavailable(device)
        if reason:
            raise FeatureRuntimeError(f"{RUNTIME_ENV}={forced}: it {reason}; unset it or choose {REFERENCE}")
        name, how = forced, f"{RUNTIME_ENV}={forced}"
    else:
        path = decision_path(cache, device, digest, shape)
        name, how = _cached_choice(path), "cached decision"
        if name is None:
            record = decide(module, images, digest, batch, device, folder)
            atomic_write_json(path, record)
            name, how = record["chosen"], "measured"
    eager = RUNTIMES[REFERENCE].build(module, shape, folder, digest)
    if name == REFERENCE:
        return ChosenRuntime(name, eager, how)
    features = RUNTIMES[name].build(module, shape, folder, digest)
    probe = torch.cat([images[:CHECKED_IMAGES], noise_like(images, CHECKED_IMAGES, seed=1)])
    error = relative_error(features(probe), eager(probe))
    if error > TOLERANCE:
        if forced:
            raise RuntimeCheckError(f"{RUNTIME_ENV}={forced}: its features differ from torch eager's by {error:.2e} "
                                    f"relative (allowed {TOLERANCE:g}); unset it or choose {REFERENCE}")
        print(f"feature runtime {name} failed its check here ({error:.2e} relative to eager); using {REFERENCE}")
        return ChosenRuntime(REFERENCE, eager, f"{name} failed its check")
    return ChosenRuntime(name, features, how)
