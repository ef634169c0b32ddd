"""Model sources: where a cell's diffusion model (and, optionally, its noisy classifier) comes from.

One record per source (`SOURCES`): whether the harness trains it (`trained`: from the spec's net and
train sections, today's path and run ids), or loads a pretrained network from files the user names
and adapts it to the suite's eps_fn(z, lambda, labels) (bench/sources/noise.py):
  - `adm`: a guided-diffusion checkpoint (model.path) with the architecture model.config (adm.CONFIGS),
    loaded strictly; learned-sigma outputs keep their eps half; ADM has no null label. model.classifier_path
    (with model.classifier_config) adds the released noisy classifier for classifier guidance.
  - `diffusers`: a save_pretrained folder (model.path) of a class-conditional UNet2DModel, or of a
    DiTTransformer2DModel sampled in latents and decoded by the AutoencoderKL in model.vae_path (bench/sources/hub.py).
  - `callable`: model.function = "package.module:function", called as function(spec, shape, num_classes)
    and returning a torch.nn.Module: with model.prediction=eps, an eps-model net(x_t, t, labels) on the
    discrete schedule (model.schedule, model.timesteps); with prediction=denoiser, an EDM denoiser
    net(x, sigma, labels) -> D(x; sigma) of variance-exploding data (needs model.sigma_min/sigma_max).
    model.null_label names its "no class" label (-1: none).
`check` validates a spec without loading weights (for --dry-run and before any work); `load` builds the
pieces. Every failure is a SourceError with one message naming the fix.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from ..config import ModelSpec, NetSpec
from ..registry import Registry
from ..unet import UNet
from . import hub
from .adm import CONFIGS, AdmNet
from .noise import (SCHEDULES, DiscreteClassifier, DiscreteEpsModel, DiscreteTimesteps, EDMEpsModel,
                    SourceError)


@dataclass(frozen=True)
class LoadedModel:
    """A pretrained model as the harness uses it: eps(z, lambda, labels), its null label (None: no
    classifier-free guidance), and its own noisy classifier where the source has one."""
    eps: torch.nn.Module
    null_label: int | None
    classifier: torch.nn.Module | None
    description: str
    sample_shape: tuple[int, ...] | None = None  # latent models: what is sampled (else the data's shape)
    decode: torch.nn.Module | None = None  # latent models: latents -> images in [-1, 1]


@dataclass(frozen=True)
class Source:
    name: str
    trains: bool  # the harness trains the model from the spec (no files)
    check: Callable[[ModelSpec, int], None]  # (spec, dataset classes): raise SourceError, load nothing
    load: Callable[[ModelSpec, tuple[int, ...], int], LoadedModel] | None
    null_label: Callable[[ModelSpec], int | None]  # known before loading: -1 num_classes, None none
    untrained: Callable[[ModelSpec, NetSpec, tuple[int, ...], int], torch.nn.Module]  # same cost, no weights (plans)
    own_classifier: Callable[[ModelSpec], bool] = lambda spec: False  # brings its noisy classifier
    latent: Callable[[ModelSpec], bool] = lambda spec: False  # samples latents that it decodes
    sampled_shape: Callable[[ModelSpec, tuple[int, ...]], tuple[int, ...]] = lambda spec, data_shape: data_shape


SOURCES: Registry[Source] = Registry("model source", "model sources", SourceError)


def _existing(path: str, field: str) -> Path:
    if not path:
        raise SourceError(f"model.{field} is empty; name the local checkpoint file (nothing is downloaded)")
    if not Path(path).expanduser().is_file():
        raise SourceError(f"model.{field}={path!r} does not exist; name the local checkpoint file")
    return Path(path).expanduser()


def _adm_config(name: str, field: str):
    if name not in CONFIGS:
        raise SourceError(f"model.{field}={name!r} is not an ADM architecture; known: {', '.join(CONFIGS)}")
    return CONFIGS[name]


def _check_adm(spec: ModelSpec, num_classes: int) -> None:
    _existing(spec.path, "path")
    config = _adm_config(spec.config, "config")
    if config.encoder:
        raise SourceError(f"model.config={spec.config!r} is a classifier; name a diffusion architecture")
    if config.num_classes is not None and num_classes and config.num_classes != num_classes:
        raise SourceError(f"model.config={spec.config!r} has {config.num_classes} classes but the dataset has "
                          f"{num_classes}; use the dataset the model was trained on")
    if spec.classifier_path:
        _existing(spec.classifier_path, "classifier_path")
        classifier = _adm_config(spec.classifier_config, "classifier_config")
        if classifier.out_channels != (config.num_classes or num_classes):
            raise SourceError(f"the classifier {spec.classifier_config!r} has {classifier.out_channels} classes but "
                              f"the model has {config.num_classes}; use the classifier trained with the model")


def load_strict(net: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a state dict (tensors only: weights_only) into `net`, refusing missing or unexpected keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SourceError(f"{path} is not a loadable state dict ({err})") from err
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{len(keys)} {what} (first: {', '.join(keys[:3])})" for what, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("keys of another shape", wrong)) if keys]
        raise SourceError(f"{path} does not match the architecture: {'; '.join(parts)}; check model.config / "
                          "model.classifier_config against the flags the checkpoint was trained with")
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def _load_adm(spec: ModelSpec, shape: tuple[int, ...], num_classes: int) -> LoadedModel:
    timesteps = DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps))
    net = load_strict(AdmNet(CONFIGS[spec.config]), _existing(spec.path, "path"))
    classifier = None
    if spec.classifier_path:
        clf = load_strict(AdmNet(CONFIGS[spec.classifier_config]), _existing(spec.classifier_path, "classifier_path"))
        classifier = DiscreteClassifier(clf, timesteps)
    return LoadedModel(DiscreteEpsModel(net, timesteps, shape[0]), None, classifier,
                       f"ADM {spec.config} from {spec.path}")


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
    return LoadedModel(eps, spec.null_label if spec.null_label >= 0 else None, None, f"{spec.function} ({spec.prediction})")


def _untrained_adm(spec: ModelSpec, net: NetSpec, shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
    return DiscreteEpsModel(AdmNet(CONFIGS[spec.config]), DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps)),
                            shape[0])


def _check_diffusers(spec: ModelSpec, num_classes: int) -> None:
    config = hub.model_config(spec.path)
    hub.diffusers_module()
    if hub.is_latent(config) and not Path(spec.vae_path).expanduser().is_dir():
        raise SourceError(f"a DiT samples latents: model.vae_path={spec.vae_path!r} must name its AutoencoderKL folder")
    classes = config.get("num_embeds_ada_norm") or config.get("num_class_embeds")
    if classes and num_classes and classes != num_classes and classes != num_classes + 1:
        raise SourceError(f"model.path={spec.path!r} has {classes} classes but the dataset has {num_classes}")


def _diffusers_null(spec: ModelSpec) -> int | None:
    config = hub.model_config(spec.path)
    if hub.is_latent(config):
        return config["num_embeds_ada_norm"]  # DiT's extra class row, the label its training dropped to
    return spec.null_label if spec.null_label >= 0 else None


def _diffusers_eps(spec: ModelSpec, net: torch.nn.Module, config: dict) -> DiscreteEpsModel:
    return DiscreteEpsModel(net, DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps)), config["in_channels"])


def _diffusers_shape(spec: ModelSpec, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    config = hub.model_config(spec.path)
    return (config["in_channels"], config["sample_size"], config["sample_size"]) if hub.is_latent(config) else data_shape


def _load_diffusers(spec: ModelSpec, shape: tuple[int, ...], num_classes: int) -> LoadedModel:
    net, decoder, config = hub.load(spec.path, spec.vae_path, "cpu")
    return LoadedModel(_diffusers_eps(spec, net, config), _diffusers_null(spec), None,
                       f"diffusers {config['_class_name']} from {spec.path}",
                       _diffusers_shape(spec, shape) if decoder is not None else None, decoder)


def _untrained_diffusers(spec: ModelSpec, net: NetSpec, shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
    config = hub.model_config(spec.path)
    model = getattr(hub.diffusers_module(), config["_class_name"]).from_config(config)
    return _diffusers_eps(spec, hub.DiffusersEps(model), config)


PRETRAINED_FIELDS = ("path", "config", "classifier_path", "classifier_config", "vae_path", "function")


def _check_trained(spec: ModelSpec, num_classes: int) -> None:
    """A model trained here takes no files: a path or name given for a pretrained one is a mistake."""
    given = [f"model.{name}={getattr(spec, name)!r}" for name in PRETRAINED_FIELDS if getattr(spec, name)]
    if given:
        raise SourceError(f"{', '.join(given)} given, but model.source=trained trains the model here; set "
                          f"model.source to one of {', '.join(n for n in SOURCES.names() if n != 'trained')}")


SOURCES.add("trained", Source("trained", True, _check_trained, None, lambda spec: -1,
                              lambda spec, net, shape, num_classes: UNet(net, shape[0], num_classes)))
SOURCES.add("adm", Source("adm", False, _check_adm, _load_adm, lambda spec: None, _untrained_adm,
                          lambda spec: bool(spec.classifier_path)))
SOURCES.add("diffusers", Source("diffusers", False, _check_diffusers, _load_diffusers, _diffusers_null,
                                _untrained_diffusers, latent=lambda spec: hub.is_latent(hub.model_config(spec.path)),
                                sampled_shape=_diffusers_shape))
SOURCES.add("callable", Source("callable", False, _check_callable, _load_callable,
                               lambda spec: spec.null_label if spec.null_label >= 0 else None,
                               lambda spec, net, shape, num_classes: _load_callable(spec, shape, num_classes).eps))


def check_source(spec: ModelSpec, num_classes: int) -> Source:
    """The spec's source record, after its checks (files exist, names resolve): before any work."""
    source = SOURCES[spec.source]
    source.check(spec, num_classes)
    return source


def load_model(spec: ModelSpec, shape: tuple[int, ...], num_classes: int, device: str) -> LoadedModel:
    """The pretrained model of a non-training source, on `device`."""
    loaded = check_source(spec, num_classes).load(spec, shape, num_classes)
    def moved(module):
        return module.to(device) if module is not None else None
    return replace(loaded, eps=loaded.eps.to(device), classifier=moved(loaded.classifier), decode=moved(loaded.decode))
