"""CFG++ (Chung et al. 2024, "CFG++: Manifold-constrained Classifier Free Guidance for Diffusion
Models", Algorithm 1):
    eps_l = eps(z, null) + l (eps(z, c) - eps(z, null)),   l in [0, 1]
x_hat comes from eps_l, but the step renoises with the unconditional eps(z, null) instead of eps_l.
The eps_fn returns the pair (eps_l, eps(z, null)): the samplers' one extension of the eps_fn
contract (bench/sampling/samplers.py), so they still know nothing about guidance. With eps(z, c) =
eps(z, null) it is plain sampling (DDIM with sampler=ddim). l is not the CFG paper's w: l = 1 gives
the conditional x_hat, renoised unconditionally; their image experiments use l <= 1.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext, cond_and_uncond
from bench.guidance.registry import Example, GuidanceError, register_guidance

if TYPE_CHECKING:
    import torch


@register_guidance("cfgpp", label="CFG++", strength="guidance_lambda", needs=("null_label",),
                   examples=tuple(Example(f"l{lam:g}", (("guidance_lambda", lam),)) for lam in (0.2, 0.4, 0.6, 0.8)))
def cfg_plus_plus(ctx: GuidanceContext, guidance_lambda: float = 0.6, two_pass: bool | None = None):
    if not 0 <= guidance_lambda <= 1:
        raise GuidanceError(f"cfgpp: guidance_lambda={guidance_lambda!r} is not valid: expected a number in [0, 1]")

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond, uncond = cond_and_uncond(ctx, z, lam, labels, two_pass)
        return uncond.lerp(cond, guidance_lambda), uncond
    return eps_fn
