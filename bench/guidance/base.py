"""What a guidance method is built from: counted networks and the null label."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from bench.spec.errors import BenchError

if TYPE_CHECKING:
    import torch


class NoNullLabel(BenchError, ValueError):
    """A method asked for the unconditional eps of a model without a null label."""


class CountedNet:
    """Calls a network, counting rows evaluated (one row = one image's NFE) and the time inside it.

    On CUDA the time comes from events recorded around each call and is read (with one
    synchronisation) only when `seconds` is asked for, so counting never stalls the sampler.
    """

    def __init__(self, net: Callable[..., torch.Tensor]):
        self.net = net
        self.rows = 0
        self._seconds = 0.0
        self._cuda_events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        self.rows += args[0].shape[0]
        if args[0].is_cuda:
            import torch
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = self.net(*args)
            end.record()
            self._cuda_events.append((start, end))
            return out
        start_time = time.perf_counter()
        out = self.net(*args)
        self._seconds += time.perf_counter() - start_time
        return out

    @property
    def seconds(self) -> float:
        if self._cuda_events:
            self._cuda_events[-1][1].synchronize()
            self._seconds += sum(start.elapsed_time(end) for start, end in self._cuda_events) / 1000.0
            self._cuda_events.clear()
        return self._seconds


@dataclass
class GuidanceContext:
    """The trained pieces a method may use. `classifier(z, lam, labels)` returns
    grad_z log p(y | z, lambda) of a noisy classifier (None when none is trained); its
    CountedNet times forward and backward together. `guide(z, lam, labels)` is the guide model of
    autoguidance (None when the method needs none); an unconditional guide ignores the labels.
    `state` holds what a stateful method carries along a trajectory (APG's momentum, CFG-Zero*'s
    step count), so a wrapper that rebuilds the method at another strength keeps it."""
    model: CountedNet
    num_classes: int
    classifier: CountedNet | None = None
    guide: CountedNet | None = None
    null_label: int | None = -1  # the label meaning "no class": -1 for num_classes (the harness's models); None: none
    state: dict[str, Any] = field(default_factory=dict)  # per-trajectory state of stateful methods, by method name
    space: str = ""  # the space every method built on this context combines in ("": each its record's)

    def __post_init__(self):
        if self.null_label == -1:
            self.null_label = self.num_classes

    @property
    def null_index(self) -> int:
        if self.null_label is None:
            raise NoNullLabel("this model has no null label (it was not trained with label dropout), so it has no "
                              "unconditional eps: use a method that needs none (cond, classifier guidance with "
                              "base=cond, autoguidance)")
        return self.null_label

    def null_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.new_full(labels.shape, self.null_index)


def cond_and_uncond(ctx: GuidanceContext, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor,
                    two_pass: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """eps(z, c) and eps(z, null): one pass of doubled batch, or two passes of the batch. Each image
    is computed on its own, so both agree up to floating-point rounding (kernels are picked per batch
    size); None picks the faster for the device: one pass on CUDA, two on CPU, where the doubled batch
    measured slower (results/perf/report.md)."""
    null = ctx.null_labels(labels)
    if (not z.is_cuda) if two_pass is None else two_pass:
        return ctx.model(z, lam, labels), ctx.model(z, lam, null)
    both = labels.repeat(2)
    both[len(labels):] = null
    cond, uncond = ctx.model(z.repeat(2, *[1] * (z.dim() - 1)), lam.repeat(2), both).chunk(2)
    return cond, uncond
