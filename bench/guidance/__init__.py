"""Guidance registry: name -> factory(context, **params) -> eps_fn(z, lam, labels).

Samplers only ever see the returned eps_fn. Every method evaluates networks through
the context's counted wrappers, so NFE is accounted identically for all methods:
one image through the diffusion network is one NFE.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from .base import CountedNet, GuidanceContext

EpsFn = Callable[..., Any]
Factory = Callable[..., EpsFn]
_REGISTRY: dict[str, Factory] = {}


class GuidanceError(ValueError):
    """Unknown method or parameter; the message lists what is valid."""


def register_guidance(name: str) -> Callable[[Factory], Factory]:
    def add(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"guidance method {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory
    return add


def guidance_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def guidance_params(name: str) -> list[str]:
    return [p for p in inspect.signature(get_factory(name)).parameters if p != "ctx"]


def get_factory(name: str) -> Factory:
    _load_builtin()
    if name not in _REGISTRY:
        raise GuidanceError(f"unknown guidance method {name!r}; known methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_guidance(name: str, ctx: GuidanceContext, **params: Any) -> EpsFn:
    """Build the eps_fn of method `name` with its parameters (each method documents its own)."""
    valid = guidance_params(name)
    unknown = set(params) - set(valid)
    if unknown:
        raise GuidanceError(f"guidance {name!r} got unknown parameters {sorted(unknown)}; valid: {valid}")
    return get_factory(name)(ctx, **params)


def _load_builtin() -> None:
    """Import the modules that register the built-in methods (each one file)."""
    from . import apg, basic, cfg, interval  # noqa: F401
    try:
        import baselines.classifier_guidance  # noqa: F401
    except ImportError:
        pass


__all__ = ["CountedNet", "GuidanceContext", "GuidanceError", "guidance_names", "make_guidance", "register_guidance"]
