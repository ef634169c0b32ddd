"""Classifier guidance (Dhariwal & Nichol 2021, Algorithm 2, eps form):
    eps_hat = eps_theta(z, c) - s * sigma_lambda * grad_z log p_phi(y | z, lambda)
with the gradient taken by autograd through the noisy classifier. `base="cond"` guides the
conditional model (ADM-G), `base="uncond"` the jointly trained unconditional model (null label).
s = 0 is exactly the base model. Costs one network evaluation plus one classifier forward and
backward per step; the context counts them separately.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from bench.guidance.base import GuidanceContext
from bench.guidance.registry import Example, GuidanceError, register_guidance

if TYPE_CHECKING:
    import torch

BASES = ("cond", "uncond")


@register_guidance("classifier", label="classifier guidance ({base})", strength="scale", needs=("noisy_classifier",),
                   examples=tuple(Example(f"s{s:g}", (("base", "cond"), ("scale", s))) for s in (1.0, 4.0)))
def classifier_guidance(ctx: GuidanceContext, scale: float = 1.0, base: str = "cond"):
    if base not in BASES:
        raise GuidanceError(f"classifier guidance base {base!r} unknown; valid: {', '.join(BASES)}")
    from bench.models.process import alpha_sigma

    def eps_fn(z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        eps = ctx.model(z, lam, labels if base == "cond" else ctx.null_labels(labels))
        if scale == 0:
            return eps
        _, sigma = alpha_sigma(lam)
        grad = ctx.classifier(z, lam, labels)
        return eps - scale * sigma.reshape(-1, 1, 1, 1).to(eps.dtype) * grad.to(eps.dtype)
    return eps_fn
