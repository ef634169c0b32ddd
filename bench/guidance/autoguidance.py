"""Autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of Itself", eq. 1),
on denoised predictions as the paper writes it, in the CFG paper's w = s - 1:
    D = D_guide(z, c) + (1 + w) (D_main(z, c) - D_guide(z, c))
(an affine combination, so the same in every space of bench/models/parameterisation.py up to rounding).
The guide is a smaller and/or shorter-trained model of the same data, named by the spec's `guide`
section and trained and cached like any model; with guide.p_uncond = 1 it is EDM2's variant, a small
unconditional guide (called with the null label by the runner). w = 0 is the main conditional
model, and so is any w when the guide is the main model itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext
from bench.guidance.registry import Example, register_guidance

if TYPE_CHECKING:
    import torch

# the methods suite's guide: half the main network's width and a fifth of its training (a "bad version"),
# and EDM2's variant of it, unconditional (guide.p_uncond = 1)
GUIDE = ("guide.channels=8", "guide.steps=300")
UNCONDITIONAL_GUIDE = (*GUIDE, "guide.p_uncond=1.0")


@register_guidance("autoguidance", label="autoguidance", strength="w", needs=("guide",), space="x0",
                   examples=(*(Example(f"w{w:g}", (("w", w),), GUIDE) for w in (0.3, 1.0, 2.0, 4.0)),
                             *(Example(f"uncond-guide_w{w:g}", (("w", w),), UNCONDITIONAL_GUIDE) for w in (1.0, 2.0))))
def autoguidance(ctx: GuidanceContext, w: float = 1.0):
    if w == 0:
        return ctx.model

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return ctx.guide(z, lam, labels).lerp(ctx.model(z, lam, labels), 1.0 + w)
    return eps_fn
