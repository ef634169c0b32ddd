"""Guidance methods, one file each, behind one registry (bench/guidance/registry.py).

A method is a factory(ctx, **params) -> eps_fn(z, lam, labels); samplers only ever see the
returned eps_fn. Every method evaluates networks through the context's counted wrappers, so
NFE are accounted identically for all methods: one image through the diffusion network is one
NFE, a classifier forward and backward pass is counted separately.
"""
from __future__ import annotations

from . import (apg, autoguidance, basic, cfg, cfg_zero_star, cfgpp, classifier, interval,  # noqa: F401  (each registers its method)
               rescaled, schedule)
from .base import CountedNet, GuidanceContext
from .registry import (METHODS, GuidanceError, check_params, count_evaluations, describe, guidance_names, guidance_params,
                       make_guidance, method_needs, register_guidance, stub_context)

__all__ = ["METHODS", "CountedNet", "GuidanceContext", "GuidanceError", "check_params", "count_evaluations", "describe",
           "guidance_names", "guidance_params", "make_guidance", "method_needs", "register_guidance", "stub_context"]
