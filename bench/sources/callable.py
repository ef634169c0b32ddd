"""The `callable` model source: model.function = "package.module:function", called as
function(spec, shape, num_classes) and returning a torch.nn.Module: with model.prediction=eps (or v), a
network net(x_t, t, labels) -> eps (or v) on the discrete schedule (model.schedule, model.timesteps); with
prediction=denoiser, an EDM denoiser net(x, sigma, labels) -> D(x; sigma) of variance-exploding data
(needs model.sigma_min/sigma_max); with prediction=flow, a flow-matching network net(x_t, t, labels) ->
velocity on the linear interpolant with t in [0, 1] (SiT, REPA, LightningDiT; needs model.time_convention:
noise_at_1 for x_t = (1-t) x0 + t eps, noise_at_0 for SiT's x_t = t x0 + (1-t) eps). model.null_label
names its "no class" label (-1: none).

The named module is imported, and so runs, in this process: name only code you trust. Both
signatures (the function's and the module's forward) are checked before any work, so a mismatch is
one line that says what was expected."""
from __future__ import annotations

import importlib
import math
import inspect
from typing import Callable

import torch

from bench.sources.base import LoadedModel, Source, SourceError, register_source
from bench.models.parameterisation import FlowVelocityModel
from bench.sources.noise import SCHEDULES, DiscreteEpsModel, DiscreteTimesteps, EDMEpsModel, schedule_range, sigma_range
from bench.spec.sections import ModelSpec


def _user_function(spec: ModelSpec) -> Callable:
    module, sep, name = spec.function.partition(":")
    if not sep or not module or not name:
        raise SourceError(f"model.function={spec.function!r} is not 'package.module:function'")
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise SourceError(f"model.function={spec.function!r} cannot be imported ({err}); put its module on "
                          "PYTHONPATH") from None
    except Exception as err:  # noqa: BLE001 -- the user's module failed as it was imported
        raise SourceError(f"importing {module!r} for model.function raised {type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''}") from None
    _check_signature(function, ("spec", "shape", "num_classes"), f"model.function={spec.function!r}",
                     "function(spec, shape, num_classes) -> torch.nn.Module")
    return function


def _check_signature(fn: object, args: tuple[str, ...], what: str, expected: str) -> None:
    """`fn` can be called with len(args) positional arguments, else a one-line SourceError."""
    if not callable(fn):
        raise SourceError(f"{what} is a {type(fn).__name__}, not callable; expected {expected}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins without a signature: called as they are
    try:
        signature.bind(*args)
    except TypeError:
        raise SourceError(f"{what} has the signature {signature}; expected {expected}") from None


def _check_callable(spec: ModelSpec, num_classes: int) -> None:
    _user_function(spec)
    if spec.prediction == "denoiser" and not 0 < spec.sigma_min < spec.sigma_max:
        raise SourceError(f"model.prediction=denoiser needs the denoiser's noise range: model.sigma_min="
                          f"{spec.sigma_min:g}, model.sigma_max={spec.sigma_max:g}; set 0 < sigma_min < sigma_max "
                          "(EDM: 0.002 and 80)")
    if spec.prediction == "flow" and not spec.time_convention:
        raise SourceError("model.prediction=flow needs the network's time convention: set model.time_convention="
                          "noise_at_1 (x_t = (1-t) x0 + t eps: REPA, SD3) or noise_at_0 (x_t = t x0 + (1-t) eps: SiT)")
    if spec.time_convention and spec.prediction != "flow":
        raise SourceError(f"model.time_convention={spec.time_convention!r} is for flow velocity models; "
                          f"model.prediction={spec.prediction!r} takes the discrete schedule's t (leave it empty)")
    if num_classes and spec.null_label > num_classes:
        raise SourceError(f"model.null_label={spec.null_label} is outside the labels 0..{num_classes} of this dataset")


def _load_callable(spec: ModelSpec, shape: tuple[int, ...], num_classes: int) -> LoadedModel:
    try:
        net = _user_function(spec)(spec, shape, num_classes)
    except SourceError:
        raise
    except Exception as err:  # noqa: BLE001 -- the user's function failed: say so in one line
        raise SourceError(f"model.function={spec.function!r} raised {type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''}") from None
    if not isinstance(net, torch.nn.Module):
        raise SourceError(f"model.function={spec.function!r} returned {type(net).__name__}, not a torch.nn.Module")
    forward = {"denoiser": "net(x, sigma, labels) -> D(x; sigma)", "flow": "net(x_t, t, labels) -> velocity"}.get(
        spec.prediction, f"net(x_t, t, labels) -> {spec.prediction}")
    _check_signature(net.forward, ("x", "t", "labels"), f"the forward of the module that model.function={spec.function!r} returned",
                     forward)
    net = net.eval().requires_grad_(False)
    if spec.prediction == "denoiser":
        eps = EDMEpsModel(net, spec.sigma_min, spec.sigma_max)
    elif spec.prediction == "flow":
        eps = FlowVelocityModel(net, spec.time_convention)
    else:
        eps = DiscreteEpsModel(net, DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps)), shape[0], spec.prediction)
    return LoadedModel(eps, _null_label(spec), None, f"{spec.function} ({spec.prediction})")


def callable_range(spec: ModelSpec) -> tuple[float, float]:
    """Where the network was trained: a denoiser's sigma range, a flow model's whole t in (0, 1), a schedule's levels."""
    if spec.prediction == "denoiser":
        return sigma_range(spec.sigma_min, spec.sigma_max) if 0 < spec.sigma_min < spec.sigma_max else (-math.inf, math.inf)
    if spec.prediction == "flow":
        return -math.inf, math.inf
    return schedule_range(spec.schedule, spec.timesteps)


def _null_label(spec: ModelSpec) -> int | None:
    return spec.null_label if spec.null_label >= 0 else None


register_source(Source(name="callable", check=_check_callable, load=_load_callable, null_label=_null_label,
                       untrained=lambda spec, net, shape, num_classes: _load_callable(spec, shape, num_classes).eps,
                       noise_range=callable_range))
