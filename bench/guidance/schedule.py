"""Guidance-weight schedules (Wang et al. 2024, "Analysis of Classifier-Free Guidance Weight
Schedulers"), a wrapper like `interval`: the inner method's strength s is replaced at each step by
s f(u), u in [0, 1] the diffusion time of the step's lambda (u = 1 pure noise, u = 0 clean;
bench/diffusion.py, u_of_lambda):
    constant   f = 1                  (the inner method itself)
    linear     f = 2 (1 - u)          (guidance grows as the noise falls)
    cosine     f = 1 + cos(pi u)
Each f averages 1 over u, so a schedule spends the same total strength as the constant one. The
inner eps_fn is built once per distinct strength; a stateful inner method (APG's momentum,
CFG-Zero*'s zero-init count) starts its state afresh whenever the strength changes.
"""
from __future__ import annotations

import math

import torch

from ..diffusion import u_of_lambda
from .base import GuidanceContext
from .registry import METHODS, GuidanceError, make_guidance, register_guidance

SCHEDULES = {"constant": lambda u: 1.0, "linear": lambda u: 2.0 * (1.0 - u), "cosine": lambda u: 1.0 + math.cos(math.pi * u)}


@register_guidance("schedule", label="{shape} schedule", wraps=True)
def weight_schedule(ctx: GuidanceContext, shape: str = "linear", inner: str = "cfg", inner_params: tuple = (("w", 1.0),)):
    if shape not in SCHEDULES:
        raise GuidanceError(f"schedule shape {shape!r} unknown; valid: {', '.join(SCHEDULES)}")
    params = {**METHODS[inner].defaults(), **dict(inner_params)}
    strength = METHODS[inner].strength
    if strength is None:
        raise GuidanceError(f"schedule: inner method {inner!r} has no strength to schedule")
    built: dict[float, object] = {}

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor):
        value = params[strength] * SCHEDULES[shape](float(u_of_lambda(lam[:1].double())))
        if value not in built:
            built.clear()
            built[value] = make_guidance(inner, ctx, **{**params, strength: value})
        return built[value](z, lam, labels)
    return eps_fn
