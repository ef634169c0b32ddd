"""The `callable` model source: model.function = "package.module:function", called as
function(spec, shape, num_classes) and returning a torch.nn.Module: with model.prediction=eps, an
eps-model net(x_t, t, labels) on the discrete schedule (model.schedule, model.timesteps); with
prediction=denoiser, an EDM denoiser net(x, sigma, labels) -> D(x; sigma) of variance-exploding data
(needs model.sigma_min/sigma_max). model.null_label names its "no class" label (-1: none).

The named module is imported, and so runs, in this process: name only code you trust. Both
signatures (the function's and the module's forward) are checked before any work, so a mismatch is
one line that says what was expected."""
from __future__ import annotations

import importlib
import inspect
from typing import Callable

import torch

from bench.sources.base import LoadedModel, Source, SourceError, register_source
from bench.sources.noise import SCHEDULES, DiscreteEpsModel, DiscreteTimesteps, EDMEpsModel
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
    forward = "net(x, sigma, labels) -> D(x; sigma)" if spec.prediction == "denoiser" else "net(x_t, t, labels) -> eps"
    _check_signature(net.forward, ("x", "t", "labels"), f"the forward of the module that model.function={spec.function!r} returned",
                     forward)
    net = net.eval().requires_grad_(False)
    eps = (EDMEpsModel(net, spec.sigma_min, spec.sigma_max) if spec.prediction == "denoiser" else
           DiscreteEpsModel(net, DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps)), shape[0]))
    return LoadedModel(eps, _null_label(spec), None, f"{spec.function} ({spec.prediction})")


def _null_label(spec: ModelSpec) -> int | None:
    return spec.null_label if spec.null_label >= 0 else None


register_source(Source(name="callable", check=_check_callable, load=_load_callable, null_label=_null_label,
                       untrained=lambda spec, net, shape, num_classes: _load_callable(spec, shape, num_classes).eps))
