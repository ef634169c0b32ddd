"""Rescaled CFG (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed",
sec. 3.4, eqs. 15-16, Algorithm 2), on the v predictions of the paper's v-prediction model:
    v_cfg = v_u + (1 + w) (v_c - v_u)
    v_rescaled = v_cfg * std(v_c) / std(v_cfg)        (std per sample, over all pixels)
    v = phi v_rescaled + (1 - phi) v_cfg
phi = 0 is CFG; the paper recommends phi = 0.7. diffusers' `guidance_rescale` applies the same
formula to whatever its model predicts (eps for most): guidance.space=eps is that variant.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext, cond_and_uncond
from bench.guidance.registry import Example, register_guidance

if TYPE_CHECKING:
    import torch


def _std(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).std(dim=1).reshape(-1, *([1] * (x.dim() - 1)))


@register_guidance("rescaled_cfg", label="rescaled CFG", strength="w", needs=("null_label",), space="v",
                   examples=tuple(Example(f"w{w:g}", (("phi", 0.7), ("w", w))) for w in (0.3, 1.0, 2.0, 4.0)))
def rescaled_cfg(ctx: GuidanceContext, w: float = 1.0, phi: float = 0.7, two_pass: bool | None = None):
    if w == 0:
        return ctx.model

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cond, uncond = cond_and_uncond(ctx, z, lam, labels, two_pass)
        guided = uncond.lerp(cond, 1.0 + w)
        if phi == 0:
            return guided
        rescaled = guided * (_std(cond) / _std(guided).clamp_min(1e-12))
        return guided.lerp(rescaled, phi)
    return eps_fn
