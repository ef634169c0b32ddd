"""Guidance methods, one file each, behind one registry (bench/guidance/registry.py).

A method is a factory(ctx, **params) -> eps_fn(z, lam, labels); samplers only ever see the
returned eps_fn. Every method evaluates networks through the context's counted wrappers, so
NFE are accounted identically for all methods: one image through the diffusion network is one
NFE, a classifier forward and backward pass is counted separately. Every module of this package is
imported here, so a new method is a new file that registers itself (README, "How to add").
"""
from __future__ import annotations

from bench.guidance.base import CountedNet, GuidanceContext
from bench.guidance.registry import (METHODS, Example, GuidanceError, check_params, describe, make_guidance,
                                     method_needs, register_guidance, stub_context)
from bench.spec.registry import import_submodules

import_submodules(__name__)

__all__ = ["METHODS", "CountedNet", "Example", "GuidanceContext", "GuidanceError", "check_params", "describe",
           "make_guidance", "method_needs", "register_guidance", "stub_context"]
