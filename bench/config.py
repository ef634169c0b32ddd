"""Run specifications: frozen dataclasses, JSON round-trip and stable hashes.

A run is DataSpec + NetSpec + TrainSpec (which together identify a trained model,
hashed on their own so that every sampling cell of a sweep reuses one model) plus
SampleSpec, GuidanceSpec and EvalSpec.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any


# Field metadata for fields added after results were stored: such a field is left out of
# stable_hash while it holds its default, so specs written before it existed keep their hash.
LATER = {"omit_default_from_hash": True}


@dataclass(frozen=True)
class DataSpec:
    """Which dataset and split; `root` is only needed for downloaded datasets."""
    name: str = "digits"
    root: str = ""
    # Images are resized (bilinear, antialiased) to this side length; 0 keeps the native size.
    size: int = 0
    label_base: int = 1  # npz only: the smallest label in the files (the downsampled-ImageNet release is 1-based)
    num_classes: int = 0  # npz only: 0 infers it from the largest label
    grayscale: bool = False  # folder only: load images as one channel


@dataclass(frozen=True)
class NetSpec:
    """A small ADM-style UNet. Defaults train on a laptop CPU in minutes."""
    channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2)
    blocks_per_level: int = 1
    attention_levels: tuple[int, ...] = (1,)  # level indices (0 = full resolution) with self-attention
    dropout: float = 0.0


@dataclass(frozen=True)
class TrainSpec:
    """Joint conditional/unconditional training (paper, Algorithm 1)."""
    p_uncond: float = 0.2
    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class ClassifierSpec:
    """The guidance classifier (baselines/noisy_classifier.py). noise_aware=False is the
    clean-images-only ablation. Used by classifier guidance and, for every cell, to
    measure the adversarial gap (its confidence on the samples vs the evaluator's)."""
    noise_aware: bool = True
    width: int = 32  # channels of the first stage; stages are width x (1, 2, 4, 8)
    steps: int = 800
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 7


@dataclass(frozen=True)
class SampleSpec:
    """Sampling: the paper's ancestral sampler (variance interpolation v) or DDIM."""
    sampler: str = "ancestral"
    steps: int = 64
    v: float = 0.3
    clip_x: bool = True  # clip x_hat to the data range [-1, 1] at every step
    num_samples: int = 256
    seed: int = 0  # sample i uses seed + i for its label and all its noise
    batch_size: int = 256
    # The fast path (bench/fastpath.py). Added after results were stored, so at their
    # defaults they are left out of the spec hash and existing run ids stay valid.
    precision: str = field(default="fp32", metadata=LATER)  # "fp32" or "bf16" (autocast for the network only)
    channels_last: bool = field(default=False, metadata=LATER)
    compile: bool = field(default=False, metadata=LATER)  # torch.compile the network


@dataclass(frozen=True)
class GuidanceSpec:
    """A registered guidance method and its parameters (e.g. {"w": 0.3} for cfg)."""
    method: str = "cfg"
    params: tuple[tuple[str, Any], ...] = ()

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class EvalSpec:
    """How samples are scored: offline evaluator features, or Inception with a user-given weights file."""
    features: str = "evaluator"
    reference_split: str = "heldout"


@dataclass(frozen=True)
class RunSpec:
    data: DataSpec = field(default_factory=DataSpec)
    net: NetSpec = field(default_factory=NetSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    sample: SampleSpec = field(default_factory=SampleSpec)
    guidance: GuidanceSpec = field(default_factory=GuidanceSpec)
    classifier: ClassifierSpec = field(default_factory=ClassifierSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)

    def model_key(self) -> dict[str, Any]:
        """The part of the spec that identifies a trained diffusion model."""
        return {"data": to_dict(self.data), "net": to_dict(self.net), "train": to_dict(self.train)}


def _hashed(f: dataclasses.Field, value: Any) -> bool:
    return not (f.metadata.get("omit_default_from_hash") and value == f.default)


def to_dict(spec: Any, *, for_hash: bool = False) -> Any:
    """A JSON-ready dict; tuples become lists, nested specs become dicts.
    for_hash leaves out LATER fields that hold their defaults."""
    if dataclasses.is_dataclass(spec):
        return {f.name: to_dict(getattr(spec, f.name), for_hash=for_hash) for f in dataclasses.fields(spec)
                if not for_hash or _hashed(f, getattr(spec, f.name))}
    if isinstance(spec, dict):
        return {k: to_dict(v, for_hash=for_hash) for k, v in spec.items()}
    if isinstance(spec, (tuple, list)):
        return [to_dict(v, for_hash=for_hash) for v in spec]
    return spec


def _from_value(tp: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value)
    if isinstance(value, list):  # JSON lists are the specs' tuples, at any depth
        return tuple(_from_value(None, v) for v in value)
    return value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of to_dict for the spec dataclasses; unknown keys are an error naming the valid ones."""
    types = typing.get_type_hints(cls)
    unknown = set(data) - set(types)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}; valid keys: {sorted(types)}")
    return cls(**{k: _from_value(types[k], v) for k, v in data.items()})


def stable_hash(obj: Any, length: int = 12) -> str:
    """sha256 of canonical JSON: identical across processes and machines."""
    blob = json.dumps(to_dict(obj, for_hash=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
