"""Classifier-free guidance (Ho & Salimans, eq. 6), in the paper's convention:
    eps_tilde = (1 + w) eps(z, c) - w eps(z, null)
w = 0 is the conditional model; libraries' guidance_scale is s = 1 + w.
The conditional and unconditional halves are batched into one forward pass of doubled
batch; at w = 0 the unconditional half is skipped. `two_pass=True` evaluates them as two
separate passes (same numbers, for throughput comparisons).
"""
from __future__ import annotations

import torch

from . import register_guidance
from .base import GuidanceContext


@register_guidance("cfg")
def classifier_free(ctx: GuidanceContext, w: float = 0.0, two_pass: bool = False):
    if w == 0:
        return ctx.model

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        null = ctx.null_labels(labels)
        if two_pass:
            cond, uncond = ctx.model(z, lam, labels), ctx.model(z, lam, null)
        else:
            cond, uncond = ctx.model(torch.cat([z, z]), torch.cat([lam, lam]), torch.cat([labels, null])).chunk(2)
        return torch.lerp(uncond, cond, 1.0 + w)
    return eps_fn
