"""Adaptive projected guidance, APG (Sadat, Hilliges & Weber 2024, "Eliminating Oversaturation
and Artifacts of High Guidance Scales in Diffusion Models"), written in the paper's w = s - 1.

On the denoised predictions D_c = x_hat(z, c), D_u = x_hat(z, null), per sample:
    delta = D_c - D_u, with momentum: delta_t = delta + beta * delta_{t-1}   (beta < 0 in the paper)
    delta <- delta * min(1, r / ||delta||)                                   (rescaling, radius r)
    delta_par = (<delta, D_c> / ||D_c||^2) D_c,  delta_perp = delta - delta_par
    D = D_c + w (delta_perp + eta * delta_par)
make_guidance hands the method D_c and D_u and converts D back to the eps consistent with it. With eta = 1, r = inf and
beta = 0 it is exactly CFG; the paper recommends eta = 0. Why APG here: it changes only the
guidance update (no extra network evaluation, unlike CFG++'s sampler-side change), so it fits
the one-file contract and is directly comparable with CFG at equal NFE.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext, cond_and_uncond
from bench.guidance.registry import Example, register_guidance

if TYPE_CHECKING:
    import torch


def _per_sample_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1).reshape(-1, *([1] * (a.dim() - 1)))


@register_guidance("apg", label="APG", strength="w", needs=("null_label",), space="x0", stateful=True,
                   examples=tuple(Example(f"w{w:g}", (("w", w),)) for w in (0.3, 1.0, 2.0, 4.0)))
def adaptive_projected(ctx: GuidanceContext, w: float = 1.0, eta: float = 0.0, radius: float = math.inf,
                       momentum: float = 0.0, two_pass: bool | None = None):
    if w == 0:
        return ctx.model
    state = ctx.state.setdefault("apg", {"delta": None, "lam": math.inf})

    def x0_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d_cond, d_uncond = cond_and_uncond(ctx, z, lam, labels, two_pass)
        delta = d_cond - d_uncond
        step_lam = float(lam[0])
        if momentum and state["delta"] is not None and step_lam > state["lam"]:
            delta = delta + momentum * state["delta"]  # same trajectory: lambda keeps increasing
        state["delta"], state["lam"] = delta, step_lam
        if math.isfinite(radius):
            norm = delta.flatten(1).norm(dim=1).reshape(-1, *([1] * (z.dim() - 1)))
            delta = delta * (radius / norm.clamp_min(1e-12)).clamp(max=1.0)
        parallel = _per_sample_dot(delta, d_cond) / _per_sample_dot(d_cond, d_cond).clamp_min(1e-12) * d_cond
        return d_cond + w * (delta - parallel + eta * parallel)
    return x0_fn
