"""Guidance in a limited interval (Kynkaanniemi et al. 2024, "Applying Guidance in a Limited
Interval Improves Sample and Distribution Quality in Diffusion Models").

Guidance is applied only at noise levels lambda in [lambda_low, lambda_high]; elsewhere the
conditional model eps(z, c) is used alone, so the unconditional passes there are skipped (and
not counted). It wraps any registered method: `inner` names it, `inner_params` its parameters.
Their interval is given in EDM's sigma = e^(-lambda/2); their ImageNet-512 choice
sigma in (0.28, 5.42] is lambda in [-3.38, 2.55], the default here. On the linear interpolant of flow models
t = sigmoid(-lambda/2) (t = 1 noise), so REPA's guidance for t <= 0.7 is lambda_low = 2 log(0.3/0.7) and no upper end.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext
from bench.guidance.registry import Example, make_guidance, register_guidance

if TYPE_CHECKING:
    import torch


@register_guidance("interval", label="interval", wraps=True,
                   examples=tuple(Example(f"w{w:g}", (("inner", "cfg"), ("inner_params", (("w", w),))))
                                  for w in (0.3, 1.0, 2.0, 4.0)))
def guidance_interval(ctx: GuidanceContext, inner: str = "cfg", inner_params: tuple = (("w", 1.0),),
                      lambda_low: float = -2 * math.log(5.42), lambda_high: float = -2 * math.log(0.28)):
    guided = make_guidance(inner, ctx, **dict(inner_params))

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        inside = (lam >= lambda_low) & (lam <= lambda_high)
        if bool(inside.all()):
            return guided(z, lam, labels)
        if not bool(inside.any()):
            return ctx.model(z, lam, labels)
        mask = inside.reshape(-1, *([1] * (z.dim() - 1)))
        return guided(z, lam, labels).where(mask, ctx.model(z, lam, labels))
    return eps_fn
