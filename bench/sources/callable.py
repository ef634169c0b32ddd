"""The `callable` model source: model.function = "package.module:function", called as
function(spec, shape, num_classes) and returning a torch.nn.Module: with model.prediction=eps, an
eps-model net(x_t, t, labels) on the discrete schedule (model.schedule, model.timesteps); with
prediction=denoiser, an EDM denoiser net(x, sigma, labels) -> D(x; sigma) of variance-exploding data
(needs model.sigma_min/sigma_max). model.null_label names its "no class" label (-1: none)."""
from __future__ import annotations

import importlib
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
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise SourceError(f"model.function={spec.function!r} cannot be imported ({err}); put its module on "
                          "PYTHONPATH") from err


def _check_callable(spec: ModelSpec, num_classes: int) -> None:
    _user_function(spec)
    if spec.prediction == "denoiser" and not 0 < spec.sigma_min < spec.sigma_max:
        raise SourceError(f"model.prediction=denoiser needs the denoiser's noise range: model.sigma_min="
                          f"{spec.sigma_min:g}, model.sigma_max={spec.sigma_max:g}; set 0 < sigma_min < sigma_max "
                          "(EDM: 0.002 and 80)")
    if num_classes and spec.null_label > num_classes:
        raise SourceError(f"model.null_label={spec.null_label} is outside the labels 0..{num_classes} of this dataset")


def _load_callable(spec: ModelSpec, shape: tuple[int, ...], num_classes: int) -> LoadedModel:
    net = _user_function(spec)(spec, shape, num_classes)
    if not isinstance(net, torch.nn.Module):
        raise SourceError(f"model.function={spec.function!r} returned {type(net).__name__}, not a torch.nn.Module")
    net = net.eval().requires_grad_(False)
    eps = (EDMEpsModel(net, spec.sigma_min, spec.sigma_max) if spec.prediction == "denoiser" else
           DiscreteEpsModel(net, DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps)), shape[0]))
    return LoadedModel(eps, _null_label(spec), None, f"{spec.function} ({spec.prediction})")


def _null_label(spec: ModelSpec) -> int | None:
    return spec.null_label if spec.null_label >= 0 else None


register_source(Source(name="callable", check=_check_callable, load=_load_callable, null_label=_null_label,
                       untrained=lambda spec, net, shape, num_classes: _load_callable(spec, shape, num_classes).eps))
