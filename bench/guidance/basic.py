"""Unguided baselines: the conditional model eps(z, c) and the unconditional model eps(z, null)."""
from __future__ import annotations

from bench.guidance.base import GuidanceContext
from bench.guidance.registry import register_guidance


@register_guidance("cond", label="conditional (unguided)")
def conditional(ctx: GuidanceContext):
    """eps_theta(z, c): the class-conditional model, no guidance (equals cfg at w = 0)."""
    return ctx.model


@register_guidance("uncond", label="unconditional", needs=("null_label",))
def unconditional(ctx: GuidanceContext):
    """eps_theta(z, null): the jointly trained unconditional model; the requested label is ignored."""
    return lambda z, lam, labels: ctx.model(z, lam, ctx.null_labels(labels))
