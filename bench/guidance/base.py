"""What a guidance method is built from: counted networks and the null label."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch


class CountedNet:
    """Calls a network, counting rows evaluated (one row = one image's NFE) and wall time inside it."""

    def __init__(self, net: Callable[..., torch.Tensor]):
        self.net = net
        self.rows = 0
        self.seconds = 0.0

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.net(*args)
        if out.is_cuda:
            torch.cuda.synchronize(out.device)
        self.seconds += time.perf_counter() - start
        self.rows += args[0].shape[0]
        return out


@dataclass
class GuidanceContext:
    """The trained pieces a method may use. `classifier(z, lam, labels)` returns
    grad_z log p(y | z, lambda) of a noisy classifier (None when none is trained); its
    CountedNet times forward and backward together."""
    model: CountedNet
    num_classes: int
    classifier: CountedNet | None = None

    @property
    def null_index(self) -> int:
        return self.num_classes

    def null_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.full_like(labels, self.null_index)
