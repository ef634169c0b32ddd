"""CFG-Zero* (Fan et al. 2025, "CFG-Zero*: Improved Classifier-Free Guidance for Flow Matching
Models", eq. 8 and sec. 3.3), in eps form and the CFG paper's w:
    s* = <eps_c, eps_u> / ||eps_u||^2        per sample (the optimised scale)
    eps = s* eps_u + (1 + w) (eps_c - s* eps_u)
and zero-init: the first `zero_init_steps` steps of each trajectory output eps = 0 without evaluating
the network (the paper zeroes the flow's velocity; with an eps-model the step then takes
x_hat = z / alpha). With optimized_scale=False (or s* = 1) and no zero-init it is CFG.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext, cond_and_uncond
from bench.guidance.registry import Example, GuidanceError, register_guidance

if TYPE_CHECKING:
    import torch


def optimal_scale(cond: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
    """s* per sample, shaped to broadcast over the image."""
    dot = (cond * uncond).flatten(1).sum(1)
    norm = (uncond * uncond).flatten(1).sum(1).clamp_min(1e-12)
    return (dot / norm).reshape(-1, *([1] * (cond.dim() - 1)))


@register_guidance("cfg_zero_star", label="CFG-Zero*", strength="w", needs=("null_label",), stateful=True,
                   examples=tuple(Example(f"w{w:g}", (("w", w),)) for w in (0.3, 1.0, 2.0, 4.0)))
def cfg_zero_star(ctx: GuidanceContext, w: float = 1.0, optimized_scale: bool = True, zero_init_steps: int = 0,
                  two_pass: bool | None = None):
    if zero_init_steps < 0 or zero_init_steps != int(zero_init_steps):
        raise GuidanceError(f"cfg_zero_star: zero_init_steps={zero_init_steps!r} is not valid: expected an integer >= 0")
    if w == 0 and zero_init_steps == 0:
        return ctx.model
    state = ctx.state.setdefault("cfg_zero_star", {"step": 0, "lam": math.inf})

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        level = float(lam[0])
        state["step"] = state["step"] + 1 if level > state["lam"] else 0  # lambda rises along one trajectory
        state["lam"] = level
        if state["step"] < zero_init_steps:
            return z.new_zeros(z.shape)
        cond, uncond = cond_and_uncond(ctx, z, lam, labels, two_pass)
        scaled = optimal_scale(cond, uncond) * uncond if optimized_scale else uncond
        return scaled.lerp(cond, 1.0 + w)
    return eps_fn
