"""Autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of Itself", eq. 1),
in eps form and the CFG paper's w = s - 1:
    eps = eps_guide(z, c) + (1 + w) (eps_main(z, c) - eps_guide(z, c))
The guide is a smaller and/or shorter-trained model of the same data, named by the spec's `guide`
section and trained and cached like any model; with guide.p_uncond = 1 it is EDM2's variant, a small
unconditional guide (called with the null label by the pipeline). w = 0 is the main conditional
model, and so is any w when the guide is the main model itself.
"""
from __future__ import annotations

import torch

from .base import GuidanceContext
from .registry import register_guidance


@register_guidance("autoguidance", label="autoguidance", strength="w", needs=("guide",))
def autoguidance(ctx: GuidanceContext, w: float = 1.0):
    if w == 0:
        return ctx.model

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.lerp(ctx.guide(z, lam, labels), ctx.model(z, lam, labels), 1.0 + w)
    return eps_fn
