"""The guidance registry: one record per method, the one place that says what a method is.

A record holds the factory(ctx, **params) -> eps_fn(z, lam, labels), the name of its strength
parameter (None for the unguided baselines), what it needs besides the model (a noisy classifier,
a guide model, a null label), the space it combines predictions in as its paper defines it (`eps`, `x0`
denoised predictions, `v`, or `flow` velocities; make_guidance converts the model's predictions into that
space and the method's result back, bench/models/parameterisation.py), whether it keeps per-trajectory state (kept in the context, so a wrapper that rebuilds
it keeps it too), whether it wraps another method (`inner`, `inner_params`: then its strength and
needs are the inner method's too), its display label, and its examples: the parameters at which the
methods suite runs it and the tests exercise it. A method's parameters are its factory's keyword
arguments; their defaults say their kind (a number, a flag, a name), and `check_params` holds every
value to that kind, so a bad `guidance.params` stops before any work.

Records load without torch (a method's arithmetic uses tensor methods, and what else it computes with
is imported in its factory), so reports and plans read them on any machine. Network evaluations are
never written down per method: bench/sampling/nfe.py counts them by running the real sampler.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace
from typing import Any, Callable

from bench.guidance.base import CountedNet, GuidanceContext
from bench.spec.errors import BenchError
from bench.spec.registry import Registry
from bench.spec.sections import PREDICTION_SPACES, GuidanceSpec

EpsFn = Callable[..., Any]
Factory = Callable[..., EpsFn]
NEEDS = {"noisy_classifier": "classifier", "guide": "guide", "null_label": "null_label"}  # a need -> the context's attribute that meets it
NEED_WORDS = {"noisy_classifier": "noisy_classifier (a classifier of noisy images)", "guide": "guide (a guide model)",
              "null_label": "null_label (a model trained with label dropout; this model has no null label)"}


class GuidanceError(BenchError, ValueError):
    """Unknown method, parameter or parameter value, or a missing need; the message lists what is valid."""


SPACES = PREDICTION_SPACES  # what a method combines: noise, denoised data, v, flow velocity


@dataclass(frozen=True)
class Example:
    """Parameters at which a method is run by the methods suite (as the cell
    <method>_<label>_p<p_uncond>_T<steps>) and exercised by the tests; `overrides` are the KEY=VALUE
    spec changes the example needs besides (e.g. autoguidance's guide network)."""
    label: str
    params: tuple[tuple[str, Any], ...] = ()
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Method:
    name: str
    factory: Factory
    label: str
    strength: str | None = None  # the parameter that sets how strongly it guides
    needs: frozenset[str] = frozenset()
    wraps: bool = False  # takes `inner` and `inner_params`
    space: str = "eps"
    stateful: bool = False  # keeps per-trajectory state (in ctx.state)
    examples: tuple[Example, ...] = ()

    def params(self) -> list[str]:
        return [p for p in inspect.signature(self.factory).parameters if p != "ctx"]

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in inspect.signature(self.factory).parameters.values() if p.name != "ctx"}


METHODS: Registry[Method] = Registry("guidance method", "methods", GuidanceError)


def register_guidance(name: str, *, label: str, strength: str | None = None, needs: tuple[str, ...] = (),
                      wraps: bool = False, space: str = "eps", stateful: bool = False,
                      examples: tuple[Example, ...] = ()) -> Callable[[Factory], Factory]:
    """Decorator registering a factory as method `name` with its record's fields."""
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"method {name!r}: unknown needs {sorted(unknown)}; valid: {sorted(NEEDS)}")
    if space not in SPACES:
        raise ValueError(f"method {name!r}: space {space!r} unknown; valid: {', '.join(SPACES)}")

    def add(factory: Factory) -> Factory:
        METHODS.add(name, Method(name, factory, label, strength, frozenset(needs), wraps, space, stateful,
                                 tuple(examples)))
        return factory
    return add


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
    """Every parameter is one the method takes, and of its kind; a wrapper's inner method too."""
    method = METHODS[name]
    defaults, valid = method.defaults(), method.params()
    unknown = set(params) - set(valid)
    if unknown:
        raise GuidanceError(f"guidance {name!r} got unknown parameters {sorted(unknown)}; valid: {valid}")
    for key, value in params.items():
        ok, words = _kind_ok(defaults[key], value)
        if not ok:
            raise GuidanceError(f"guidance {name!r}: parameter {key}={value!r} is not valid: expected {words}")
    if method.wraps:
        inner = _inner(method, params)
        check_params(inner[0], inner[1])


def _inner(method: Method, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    merged = {**method.defaults(), **params}
    return merged["inner"], dict(merged["inner_params"])


def resolved(name: str, params: dict[str, Any]) -> list[tuple[Method, dict[str, Any]]]:
    """The method and, for wrappers, the methods inside it, outermost first."""
    method = METHODS[name]
    chain = [(method, params)]
    if method.wraps:
        chain += resolved(*_inner(method, params))
    return chain


def method_needs(name: str, params: dict[str, Any]) -> frozenset[str]:
    """What the method (with whatever it wraps) needs besides the diffusion model."""
    return frozenset().union(*(m.needs for m, _ in resolved(name, params)))


def strength(name: str, params: dict[str, Any]) -> tuple[str | None, float | None]:
    """(parameter name, value) of the strength that sets the method's guidance, looked up through wrappers."""
    for method, p in resolved(name, params):
        if method.strength is not None:
            return method.strength, {**method.defaults(), **p}[method.strength]
    return None, None


def with_strength(name: str, params: dict[str, Any], value: float) -> dict[str, Any]:
    """`params` with the strength that sets the method's guidance (`strength`) at `value`, set through
    wrappers (a wrapper's strength is its inner method's, in `inner_params`)."""
    param = strength(name, params)[0]
    if param is None:
        raise GuidanceError(f"method {name!r} has no strength to set")
    return with_parameter(name, params, param, float(value))


def with_parameter(name: str, params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`params` with parameter `key` at `value`: the method's own, else (through wrappers) the wrapped method's,
    in `inner_params`."""
    method = METHODS[name]
    if key in method.params() and key not in ("inner", "inner_params"):
        return {**params, key: value}
    if method.wraps:
        inner, inner_params = _inner(method, params)
        return {**params, "inner": inner, "inner_params": tuple(sorted(with_parameter(inner, inner_params, key, value).items()))}
    raise GuidanceError(f"method {name!r} has no parameter {key!r}")


def label(name: str, params: dict[str, Any]) -> str:
    """Display label: each record's label (a format string over its parameters), outermost first."""
    return " + ".join(method.label.format(**{**method.defaults(), **p}) for method, p in resolved(name, params))


def combining_method(name: str, params: dict[str, Any]) -> Method:
    """The method that combines the predictions: `name` itself, or the innermost method a wrapper wraps."""
    return resolved(name, params)[-1][0]


def applied_space(name: str, params: dict[str, Any], space: str = "") -> str:
    """The space method `name` combines in: `space` where given, else its (innermost) record's, its paper's."""
    if space and space not in SPACES:
        raise GuidanceError(f"guidance.space={space!r} is not valid: expected one of {', '.join(SPACES)}, "
                            "or empty for the method's own")
    return space or combining_method(name, params).space


def describe(guidance: GuidanceSpec) -> dict[str, Any]:
    """The table columns of a cell's guidance: method, label, strength (and `w` / `scale`, the
    paper's names, where the strength parameter has that name), the space it combined in, and
    whether that is its paper's (`off_paper_space`: an ablation, marked in the label too)."""
    params = guidance.kwargs()
    param, value = strength(guidance.method, params)
    space = applied_space(guidance.method, params, guidance.space)
    own = combining_method(guidance.method, params).space
    shown = label(guidance.method, params) + ("" if space == own else f" [in {space} space; paper: {own}]")
    return {"method": guidance.method, "method_label": shown, "strength_param": param,
            "strength": value, "w": value if param == "w" else None, "scale": value if param == "scale" else None,
            "guidance_space": space, "off_paper_space": space != own}


def _in_space(ctx: GuidanceContext, space: str) -> GuidanceContext:
    """The context whose model and guide give predictions in `space` (the counted networks underneath count)."""
    from bench.models.parameterisation import from_eps

    def view(net):
        return None if net is None else lambda z, lam, labels: from_eps(space, z, lam, net(z, lam, labels))
    return replace(ctx, model=view(ctx.model), guide=view(ctx.guide), space=space)


def _out_of_space(eps_fn: EpsFn, space: str) -> EpsFn:
    """eps_fn giving eps, from one giving predictions (or CFG++'s pair of them) in `space`."""
    from bench.models.parameterisation import to_eps

    def converted(z, lam, labels):
        out = eps_fn(z, lam, labels)
        if isinstance(out, tuple):
            return tuple(to_eps(space, z, lam, part) for part in out)
        return to_eps(space, z, lam, out)
    return converted


def make_guidance(name: str, ctx: GuidanceContext, space: str = "", **params: Any) -> EpsFn:
    """Build the eps_fn of method `name` with its parameters (each method documents its own), combining in
    `space` (default: the context's, else the record's). The method sees the model's predictions in that
    space, and its result is converted back to eps; in eps space nothing is converted, and a method that
    returns the model itself (unguided) returns the model as it is. A wrapper hands `space` to the method it wraps."""
    check_params(name, params)
    space = applied_space(name, params, space or ctx.space)
    if METHODS[name].wraps:
        inner = replace(ctx, space=space)
    else:
        inner = ctx if space == "eps" else _in_space(ctx, space)
    eps_fn = METHODS[name].factory(inner, **params)  # the factory checks its parameters' values
    missing = sorted(need for need in method_needs(name, params) if getattr(ctx, NEEDS[need]) is None)
    if missing and not _unguided(name, params):
        raise GuidanceError(f"guidance {label(name, params)!r} needs {', '.join(NEED_WORDS[n] for n in missing)}, "
                            "which this run does not provide")
    if space == "eps" or METHODS[name].wraps:
        return eps_fn
    if eps_fn is inner.model:
        return ctx.model
    return _out_of_space(eps_fn, space)


def _unguided(name: str, params: dict[str, Any]) -> bool:
    return strength(name, params)[1] == 0


def _stub(z, lam, labels):
    return z.new_zeros(z.shape)


def stub_context(num_classes: int = 10) -> GuidanceContext:
    """A context of counting stubs (each returns zeros) with every need met."""
    return GuidanceContext(CountedNet(_stub), num_classes, CountedNet(_stub), CountedNet(_stub))
