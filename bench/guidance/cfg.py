"""Classifier-free guidance (Ho & Salimans, eq. 6), in the paper's convention:
    eps_tilde = (1 + w) eps(z, c) - w eps(z, null)
w = 0 is the conditional model; libraries' guidance_scale is s = 1 + w.
At w = 0 the unconditional half is skipped. Otherwise the two halves are evaluated either
as one forward pass of doubled batch (`two_pass=False`, what GPUs run fastest) or as two
passes of the sampler's batch (`two_pass=True`); they agree up to floating-point rounding,
since each image is computed on its own. The default (None) picks by device: one pass on
CUDA, two passes on CPU, where a doubled batch measured slower than two passes
(results/perf/report.md).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext, cond_and_uncond
from bench.guidance.registry import Example, register_guidance

if TYPE_CHECKING:
    import torch


@register_guidance("cfg", label="CFG", strength="w", needs=("null_label",),
                   examples=tuple(Example(f"w{w:g}", (("w", w),)) for w in (0.0, 0.3, 1.0, 2.0, 4.0)))
def classifier_free(ctx: GuidanceContext, w: float = 0.0, two_pass: bool | None = None):
    if w == 0:
        return ctx.model

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cond, uncond = cond_and_uncond(ctx, z, lam, labels, two_pass)
        return uncond.lerp(cond, 1.0 + w)
    return eps_fn
