"""What `--fast` means on this machine, decided by measuring rather than by assumption.

For one network (its NetSpec, image shape and batch) on one device, every way of evaluating it — a
sampling forward pass (bench/models/fastpath.py), or a training step's forward and backward — is timed: memory format (contiguous, channels_last) x precision
(fp32, bf16 autocast) x torch.compile. Timings are interleaved round by round (the order rotates) and
each candidate keeps its fastest round, so drifts in machine load hit every candidate alike.

A candidate is eligible only if its eps stays within `BF16_TOLERANCE` (relative RMS error against
fp32 eager on the same inputs; fp32 candidates pass trivially) — the cheap check; the science check is
`python -m bench.perf --quality` (FID and IS with paired intervals). The fastest eligible candidate
wins if it beats fp32 eager by more than `MIN_GAIN`; otherwise fp32 eager stays. A compiled candidate
wins only where its saving over the cell's network calls repays its measured warm-up (compilation
costs tens of seconds on a CPU, once per cell); compile is timed only when asked (`--fast` asks).

The decision is cached per (machine, torch version, network, shape, batch) under
<cache>/fastpath/<key>.json with every timing, so a suite decides once and a reader can see why.
The default without --fast stays fp32 eager contiguous: the reference arithmetic that every stored
run id was computed with.
"""
from __future__ import annotations

import copy
import itertools
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from bench.infra.stages import machine_identity
from bench.infra.store import atomic_write_json, cache_root
from bench.models.fastpath import NetworkRunner, compiled, native_bf16
from bench.models.unet import UNet
from bench.spec.hashing import stable_hash, to_dict
from bench.spec.sections import NetSpec, SampleSpec

BF16_TOLERANCE = 0.02  # relative RMS error of eps allowed for a bf16 candidate
MIN_GAIN = 1.05  # a setting must be 5% faster than fp32 eager to be chosen
COMPILE_MIN_CALLS = 2000  # network calls below which compilation is not even timed (its warm-up alone costs more)


@dataclass(frozen=True)
class Decision:
    """Every candidate's best seconds per pass, warm-up and eps error on this machine, and where they
    are cached; `settings(passes)` chooses for a cell that will make `passes` network calls."""
    timings: dict
    machine: str
    path: str

    def settings(self, passes: float = float("inf")) -> tuple[bool, str, bool]:
        return choose(self.timings, passes)

    def apply(self, section, passes: float = float("inf")):
        """`section` (a SampleSpec or TrainSpec) with the chosen channels_last, precision and compile."""
        channels_last, precision, compile_ = self.settings(passes)
        return replace(section, channels_last=channels_last, precision=precision, compile=compile_)


def candidate_name(channels_last: bool, precision: str, compile: bool) -> str:
    return f"{'channels_last' if channels_last else 'contiguous'} {precision}{' compiled' if compile else ''}"


def candidates(with_compile: bool, bf16_native: bool) -> list[SampleSpec]:
    """Both memory formats in fp32 and bf16 eager; compiled in fp32, and in bf16 where it is native
    (emulated bf16 is far slower here, and each compilation costs a long warm-up)."""
    eager = [SampleSpec(channels_last=cl, precision=p) for cl, p in itertools.product((False, True), ("fp32", "bf16"))]
    compiled = [replace(s, compile=True) for s in eager if s.precision == "fp32" or bf16_native]
    return eager + (compiled if with_compile else [])


def _relative_error(eps: torch.Tensor, reference: torch.Tensor) -> float:
    return ((eps - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt()).item()


def _training_step(model: torch.nn.Module, spec: SampleSpec, device: str):
    """A training step's work under the candidate's settings: forward under autocast and backward
    (the optimizer step costs the same for every candidate); returns the eps of the forward pass."""
    memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
    trained = model.to(memory_format=memory_format).requires_grad_(True)
    forward = compiled(trained, dynamic=False) if spec.compile else trained
    autocast = torch.autocast(torch.device(device).type, torch.bfloat16, enabled=spec.precision == "bf16")

    def step(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        trained.zero_grad(set_to_none=True)
        with autocast:
            eps = forward(z, lam, labels)
            loss = eps.float().pow(2).mean()
        loss.backward()
        return eps.detach().float()
    return step


def measure(net: NetSpec, shape: tuple[int, ...], num_classes: int, batch: int, device: str, *,
            with_compile: bool = False, rounds: int = 3, passes: int = 3, training: bool = False) -> dict:
    """Best seconds per pass and eps error of every candidate on a network with perturbed random weights
    (the cost of a pass does not depend on the weights): a sampling forward pass, or with `training`
    a training step's forward and backward."""
    torch.manual_seed(0)
    model = UNet(net, shape[0], num_classes).eval().requires_grad_(False).to(device)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    z = torch.randn(batch, *shape, device=device)
    lam = torch.linspace(-10, 10, batch, device=device)
    labels = torch.arange(batch, device=device) % (num_classes + 1)
    specs = candidates(with_compile, native_bf16(device)[0])
    # each candidate its own copy: a runner sets its network's memory format in place
    runners = {candidate_name(s.channels_last, s.precision, s.compile):
               _training_step(copy.deepcopy(model), s, device) if training else NetworkRunner(copy.deepcopy(model), s, device)
               for s in specs}
    reference = runners[candidate_name(False, "fp32", False)](z, lam, labels)
    timings = {}
    for name, runner in runners.items():  # warm-up (compilation) outside the timings
        start = time.perf_counter()
        eps = runner(z, lam, labels)
        timings[name] = {"warmup_seconds": time.perf_counter() - start, "seconds": float("inf"),
                         "relative_error": _relative_error(eps, reference)}
    names = list(runners)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            for _ in range(passes):
                runners[name](z, lam, labels)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
            timings[name]["seconds"] = min(timings[name]["seconds"], (time.perf_counter() - start) / passes)
    return timings


def choose(timings: dict, passes: float = float("inf")) -> tuple[bool, str, bool]:
    """The fastest candidate within tolerance, if it beats fp32 eager by MIN_GAIN and (compiled) if its
    saving over `passes` calls repays its warm-up; else fp32 eager. Returns (channels_last, precision, compile)."""
    baseline = candidate_name(False, "fp32", False)
    eligible = {n: t for n, t in timings.items() if t["relative_error"] <= BF16_TOLERANCE}
    eager = {n: t for n, t in eligible.items() if not n.endswith("compiled")}
    best = eager_best = min(eager, key=lambda n: eager[n]["seconds"])
    first_compile = max((t["warmup_seconds"] for n, t in timings.items() if n.endswith("compiled")), default=0.0)
    for name, t in eligible.items():  # a fresh process pays the first compilation (later ones hit its caches)
        repaid = (eager[eager_best]["seconds"] - t["seconds"]) * passes > first_compile
        if name.endswith("compiled") and repaid and t["seconds"] < eligible[best]["seconds"]:
            best = name
    if timings[baseline]["seconds"] / eligible[best]["seconds"] < MIN_GAIN:
        best = baseline
    return "channels_last" in best, "bf16" if "bf16" in best else "fp32", best.endswith("compiled")


def decide(net: NetSpec, shape: tuple[int, ...], num_classes: int, batch: int, device: str, *,
           with_compile: bool = False, cache: Path | None = None, remeasure: bool = False,
           training: bool = False) -> Decision:
    """The cached measurements for this network on this machine (sampling passes, or training steps),
    taken first if there are none."""
    machine = machine_identity(device)
    key = stable_hash({"machine": machine, "torch": torch.__version__, "net": to_dict(net), "shape": list(shape),
                       "classes": num_classes, "batch": batch, "compile": with_compile, "training": training})
    path = (cache or cache_root()) / "fastpath" / f"{key}.json"
    if path.exists() and not remeasure:
        stored = json.loads(path.read_text())
    else:
        stored = {"timings": measure(net, shape, num_classes, batch, device, with_compile=with_compile, training=training),
                  "machine": machine, "torch": torch.__version__, "net": to_dict(net), "shape": list(shape), "batch": batch}
        atomic_write_json(path, stored)
    return Decision(stored["timings"], machine, str(path))
