"""The guidance registry: name -> factory(ctx, **params) -> eps_fn(z, lam, labels).

A method's parameters are its factory's keyword arguments; their defaults say their kind
(a number, a flag, a name), and `check_params` holds every value to that kind, so a bad
`guidance.params` stops before any work.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

from ..errors import BenchError
from ..registry import Registry
from .base import GuidanceContext

EpsFn = Callable[..., Any]
Factory = Callable[..., EpsFn]


class GuidanceError(BenchError, ValueError):
    """Unknown method, parameter or parameter value; the message lists what is valid."""


METHODS: Registry[Factory] = Registry("guidance method", "methods", GuidanceError)
register_guidance = METHODS.register


def guidance_names() -> list[str]:
    return METHODS.names()


def guidance_params(name: str) -> list[str]:
    return [p for p in inspect.signature(METHODS[name]).parameters if p != "ctx"]


def _kind_ok(default: Any, value: Any) -> tuple[bool, str]:
    """Whether `value` is of the kind of the parameter's default, and the words for that kind."""
    if isinstance(default, bool) or default is None:
        return value is None or isinstance(value, bool), "true, false or null"
    if isinstance(default, (int, float)):  # +-inf can be meaningful (an open interval, no rescaling radius)
        return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value), "a number"
    if isinstance(default, str):
        return isinstance(value, str), "a name"
    return isinstance(value, tuple), "a JSON object"


def check_params(name: str, params: dict[str, Any]) -> None:
    """Every parameter is one the method takes, and of its kind."""
    signature = inspect.signature(METHODS[name]).parameters
    valid = guidance_params(name)
    unknown = set(params) - set(valid)
    if unknown:
        raise GuidanceError(f"guidance {name!r} got unknown parameters {sorted(unknown)}; valid: {valid}")
    for key, value in params.items():
        ok, words = _kind_ok(signature[key].default, value)
        if not ok:
            raise GuidanceError(f"guidance {name!r}: parameter {key}={value!r} is not valid: expected {words}")


def make_guidance(name: str, ctx: GuidanceContext, **params: Any) -> EpsFn:
    """Build the eps_fn of method `name` with its parameters (each method documents its own)."""
    check_params(name, params)
    return METHODS[name](ctx, **params)
