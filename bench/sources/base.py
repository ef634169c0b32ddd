"""What a model source is: its record (`Source`, built with keyword arguments, one per file of this
package), the registry, the pretrained pieces a source loads (`LoadedModel`), and the checks shared
by sources that read files. Every failure is a SourceError with one message naming the fix."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from bench.infra.checkpoints import WeightsFileError, read_tensors
from bench.spec.errors import BenchError
from bench.spec.registry import Registry
from bench.spec.sections import ModelSpec, NetSpec


class SourceError(BenchError, ValueError):
    """A model source cannot be loaded or cannot do what the spec asks; the message names the fix."""


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


@dataclass(frozen=True, kw_only=True)
class Source:
    """A model source's record: whether the harness trains its model, how to check a spec without
    loading anything (files exist, names resolve, class counts match), how to load it, its null label
    (known before loading), an untrained network of the same cost (for plans), whether it brings its
    own noisy classifier, whether it samples latents (and their shape) that it decodes, and its noise range."""
    name: str
    trains: bool = False  # the harness trains the model from the spec (no files)
    check: Callable[[ModelSpec, int], None]  # (spec, dataset classes): raise SourceError, load nothing
    load: Callable[[ModelSpec, tuple[int, ...], int], LoadedModel] | None = None
    null_label: Callable[[ModelSpec], int | None]  # known before loading: -1 num_classes, None none
    untrained: Callable[[ModelSpec, NetSpec, tuple[int, ...], int], torch.nn.Module]  # same cost, no weights (plans)
    own_classifier: Callable[[ModelSpec], bool] = lambda spec: False  # brings its noisy classifier
    latent: Callable[[ModelSpec], bool] = lambda spec: False  # samples latents that it decodes
    sampled_shape: Callable[[ModelSpec, tuple[int, ...]], tuple[int, ...]] = lambda spec, data_shape: data_shape
    # the lambdas the model was trained at (known before loading); a grid other than cosine must lie within
    noise_range: Callable[[ModelSpec], tuple[float, float]] = lambda spec: (-math.inf, math.inf)


SOURCES: Registry[Source] = Registry("model source", "model sources", SourceError)


def register_source(source: Source) -> Source:
    """Add a source's record to the registry (each source's file calls this once)."""
    return SOURCES.add(source.name, source)


def existing_file(path: str, field: str) -> Path:
    if not path:
        raise SourceError(f"model.{field} is empty; name the local checkpoint file (nothing is downloaded)")
    if not Path(path).expanduser().is_file():
        raise SourceError(f"model.{field}={path!r} does not exist; name the local checkpoint file")
    return Path(path).expanduser()


def load_strict(net: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a state dict (tensors only: weights_only) into `net`, refusing missing or unexpected keys."""
    try:
        state = read_tensors(path)
    except WeightsFileError as err:
        raise SourceError(str(err)) from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SourceError(f"{path} holds a {type(state).__name__}, not a state dict of tensors (name -> tensor)")
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
