"""CFG-Zero* (Fan et al. 2025, "CFG-Zero*: Improved Classifier-Free Guidance for Flow Matching
Models", eq. 8 and sec. 3.3), on flow velocities u = eps - x0 as the paper defines it, in the CFG paper's w:
    s* = <u_c, u_u> / ||u_u||^2        per sample (the optimised scale)
    u = s* u_u + (1 + w) (u_c - s* u_u)
and zero-init: the first `zero_init_steps` noise levels of each trajectory output u = 0 without evaluating
the network, so an ODE step leaves x_t where it is. With optimized_scale=False (or s* = 1) and no
zero-init it is CFG. guidance.space=eps is the eps-space variant this harness ran before (there a zero
eps takes x_hat = z / alpha, about 2e4 z at lambda = -20: not the paper's operation).
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
                   space="flow", examples=tuple(Example(f"w{w:g}", (("w", w),)) for w in (0.3, 1.0, 2.0, 4.0)))
def cfg_zero_star(ctx: GuidanceContext, w: float = 1.0, optimized_scale: bool = True, zero_init_steps: int = 0,
                  two_pass: bool | None = None):
    if zero_init_steps < 0 or zero_init_steps != int(zero_init_steps):
        raise GuidanceError(f"cfg_zero_star: zero_init_steps={zero_init_steps!r} is not valid: expected an integer >= 0")
    if w == 0 and zero_init_steps == 0:
        return ctx.model
    state = ctx.state.setdefault("cfg_zero_star", {"step": 0, "lam": math.inf})

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        level = float(lam[0])
        # lambda rises along one trajectory (a solver that evaluates a level twice, Heun's, stays at its step)
        state["step"] = state["step"] + (level > state["lam"]) if level >= state["lam"] else 0
        state["lam"] = level
        if state["step"] < zero_init_steps:
            return z.new_zeros(z.shape)
        cond, uncond = cond_and_uncond(ctx, z, lam, labels, two_pass)
        scaled = optimal_scale(cond, uncond) * uncond if optimized_scale else uncond
        return scaled.lerp(cond, 1.0 + w)
    return eps_fn
