"""Guidance-weight schedules (Wang et al. 2024, "Analysis of Classifier-Free Guidance Weight
Schedulers"), a wrapper like `interval`: the inner method's strength s is replaced at each step by
s f(u), u in [0, 1] the diffusion time of the step's lambda (u = 1 pure noise, u = 0 clean;
bench/models/process.py, u_of_lambda):
    constant   f = 1                  (the inner method itself)
    linear     f = 2 (1 - u)          (guidance grows as the noise falls)
    cosine     f = 1 + cos(pi u)
Each f averages 1 over u, so a schedule spends the same total strength as the constant one. The
inner eps_fn is rebuilt whenever the strength changes; a stateful inner method (APG's momentum,
CFG-Zero*'s zero-init count) keeps its state in the shared context, so it carries along the
trajectory. The inner method is built at the extremes of s f(u) when the schedule is built, so a
strength it refuses (CFG++'s l above 1) stops before any work.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext
from bench.guidance.registry import METHODS, Example, GuidanceError, make_guidance, register_guidance

if TYPE_CHECKING:
    import torch

SCHEDULES = {"constant": lambda u: 1.0, "linear": lambda u: 2.0 * (1.0 - u), "cosine": lambda u: 1.0 + math.cos(math.pi * u)}
RANGE = {"constant": (1.0, 1.0), "linear": (0.0, 2.0), "cosine": (0.0, 2.0)}  # min and max of f over u in [0, 1]


@register_guidance("schedule", label="{shape} schedule", wraps=True,
                   examples=tuple(Example(f"{shape}_w{w:g}", (("inner", "cfg"), ("inner_params", (("w", w),)),
                                                               ("shape", shape)))
                                  for shape in ("linear", "cosine") for w in (0.3, 1.0, 2.0, 4.0)))
def weight_schedule(ctx: GuidanceContext, shape: str = "linear", inner: str = "cfg", inner_params: tuple = (("w", 1.0),)):
    if shape not in SCHEDULES:
        raise GuidanceError(f"schedule shape {shape!r} unknown; valid: {', '.join(SCHEDULES)}")
    from bench.models.process import u_of_lambda
    params = {**METHODS[inner].defaults(), **dict(inner_params)}
    strength = METHODS[inner].strength
    if strength is None:
        raise GuidanceError(f"schedule: inner method {inner!r} has no strength to schedule")
    for factor in RANGE[shape]:
        try:
            make_guidance(inner, GuidanceContext(ctx.model, ctx.num_classes, ctx.classifier, ctx.guide, ctx.null_label),
                          **{**params, strength: params[strength] * factor})
        except GuidanceError as err:
            raise GuidanceError(f"schedule {shape!r} takes {inner}'s {strength} from {params[strength]:g} to "
                                f"{params[strength] * factor:g}, which it refuses: {err}") from None
    built: dict[float, object] = {}

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor):
        value = params[strength] * SCHEDULES[shape](float(u_of_lambda(lam[:1].double())))
        if value not in built:
            built.clear()
            built[value] = make_guidance(inner, ctx, **{**params, strength: value})
        return built[value](z, lam, labels)
    return eps_fn
