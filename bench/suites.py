"""Named suites: functions returning the cells (name + RunSpec) of a sweep.

A cell's run id is the stable hash of its full spec; cells that share (data, net, train)
share one trained model.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from .config import ClassifierSpec, DataSpec, GuidanceSpec, NetSpec, RunSpec, SampleSpec, TrainSpec, stable_hash


@dataclass(frozen=True)
class Cell:
    name: str
    spec: RunSpec

    @property
    def run_id(self) -> str:
        return f"{self.name}-{stable_hash(self.spec, 8)}"

    def columns(self) -> dict:
        """Tidy identifying columns for the suite's table: one row per cell."""
        params = self.spec.guidance.kwargs()
        return {"method": self.spec.guidance.method, "p_uncond": self.spec.train.p_uncond,
                "w": params.get("w"), "scale": params.get("scale"), "sampler": self.spec.sample.sampler,
                "steps": self.spec.sample.steps, "dataset": self.spec.data.name}


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    build: Callable[[], list[Cell]]


SUITES: dict[str, Suite] = {}


def register_suite(name: str, description: str) -> Callable[[Callable[[], list[Cell]]], Callable[[], list[Cell]]]:
    def add(fn: Callable[[], list[Cell]]) -> Callable[[], list[Cell]]:
        if name in SUITES:
            raise ValueError(f"suite {name!r} is already registered")
        SUITES[name] = Suite(name, description, fn)
        return fn
    return add


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; known suites: {', '.join(sorted(SUITES))}")
    return SUITES[name]


def cfg_cell(base: RunSpec, w: float) -> Cell:
    spec = replace(base, guidance=GuidanceSpec("cfg", (("w", w),)))
    return Cell(f"cfg_p{base.train.p_uncond:g}_w{w:g}_T{base.sample.steps}", spec)


def classifier_cell(base: RunSpec, scale: float, *, noise_aware: bool = True, on: str = "cond") -> Cell:
    """Classifier guidance of the `on` model; noise_aware=False is the clean-classifier ablation."""
    spec = replace(base, guidance=GuidanceSpec("classifier", (("base", on), ("scale", scale))),
                   classifier=replace(base.classifier, noise_aware=noise_aware))
    kind = "noisy" if noise_aware else "clean"
    return Cell(f"clf-{kind}_{on}_p{base.train.p_uncond:g}_s{scale:g}_T{base.sample.steps}", spec)


# Digits at 8x8: a 0.7M-parameter UNet trains in under a minute on 2 CPU cores.
SMOKE_BASE = RunSpec(
    data=DataSpec("digits"),
    net=NetSpec(channels=32, channel_mult=(1, 2), attention_levels=(1,)),
    train=TrainSpec(p_uncond=0.2, steps=500, batch_size=64, lr=2e-3, ema_decay=0.99),
    sample=SampleSpec(sampler="ancestral", steps=32, num_samples=256, batch_size=256),
    classifier=ClassifierSpec(width=16, steps=200, batch_size=64),
)


@register_suite("smoke", "every stage once on digits 8x8: CFG at w in {0, 1, 3}, noisy- and clean-classifier guidance (< 2 min)")
def smoke() -> list[Cell]:
    return ([cfg_cell(SMOKE_BASE, w) for w in (0.0, 1.0, 3.0)]
            + [classifier_cell(SMOKE_BASE, 1.0), classifier_cell(SMOKE_BASE, 1.0, noise_aware=False)])
