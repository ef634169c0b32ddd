"""Run specifications: frozen dataclasses, validated ranges, JSON round-trip and stable hashes.

A run is DataSpec + NetSpec + TrainSpec (which together identify a trained model,
hashed on their own so that every sampling cell of a sweep reuses one model) plus
SampleSpec, GuidanceSpec and EvalSpec.

Every field carries its valid range or set (`rule=` in its metadata) and is checked when the
spec is built, from a suite, from `--set` or from JSON, so a bad value stops before any work
with a SpecError naming `section.field`, the value and what would be valid. Names that live in
registries (datasets, guidance methods, feature extractors) are checked against them by
`bench.pipeline.validate_cells`, also before any work.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar

from .errors import BenchError

# Fixed sets of the spec (open sets, such as datasets and guidance methods, are registries).
SAMPLERS = ("ancestral", "ddim")
PRECISIONS = ("fp32", "bf16")
SPLITS = ("train", "heldout")


class SpecError(BenchError, ValueError):
    """A spec field outside its valid range or set, or an unknown spec key."""


@dataclass(frozen=True)
class Rule:
    """What a field accepts: `ok(value)` and the words for it ("an integer >= 1")."""
    words: str
    ok: Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def count(minimum: int = 1) -> Rule:
    return Rule(f"an integer >= {minimum}", lambda v: _is_int(v) and v >= minimum)


def multiple_of(step: int) -> Rule:
    return Rule(f"a positive multiple of {step}", lambda v: _is_int(v) and v >= step and v % step == 0)


def interval(low: float, high: float, *, high_open: bool = False) -> Rule:
    bracket = ")" if high_open else "]"
    return Rule(f"a number in [{low:g}, {high:g}{bracket}",
                lambda v: _is_real(v) and low <= v and (v < high if high_open else v <= high))


POSITIVE = Rule("a finite number > 0", lambda v: _is_real(v) and v > 0)
FLAG = Rule("true or false", lambda v: isinstance(v, bool))
TEXT = Rule("a string", lambda v: isinstance(v, str))
NAME = Rule("a non-empty name", lambda v: isinstance(v, str) and v.strip() == v and bool(v))


def one_of(*values: str) -> Rule:
    return Rule(f"one of {', '.join(values)}", lambda v: v in values)


def int_tuple(minimum: int, *, nonempty: bool) -> Rule:
    words = f"a {'non-empty ' if nonempty else ''}list of integers >= {minimum}, e.g. 1,2,2"
    return Rule(words, lambda v: isinstance(v, tuple) and (bool(v) or not nonempty)
                and all(_is_int(x) and x >= minimum for x in v))


PAIRS = Rule("a JSON object of parameters such as {\"w\": 0.3}",
             lambda v: isinstance(v, tuple) and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in v))


def spec_field(default: Any, rule: Rule, *, later: bool = False, hashed_as: dict[str, str] | None = None) -> Any:
    """A field with its valid values. `later` marks fields added after results were stored: such
    a field is left out of stable_hash while it holds its default, so older specs keep their hash.
    `hashed_as` maps values renamed after results were stored to the value their hash was made with."""
    return field(default=default, metadata={"rule": rule, "omit_default_from_hash": later, "hashed_as": hashed_as or {}})


# The 5,000-image MNIST subset was registered as "mnist" until full MNIST took that name: stored
# subset runs keep their ids, and full MNIST hashes under a name no stored run ever had.
RENAMED_DATASETS = {"mnist5k": "mnist", "mnist": "mnist60k"}


class Validated:
    """Checks every field's rule (and the class's `cross_check`) when the spec is built."""
    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, rule = getattr(self, f.name), f.metadata.get("rule")
            if rule is not None and not rule.ok(value):
                raise SpecError(f"{self.SECTION}.{f.name}={_shown(value)} is not valid: expected {rule.words}")
        self.cross_check()

    def cross_check(self) -> None:
        """Constraints between fields of one section (none by default)."""


def _shown(value: Any) -> str:
    return json.dumps(to_dict(value)) if isinstance(value, tuple) else repr(value)


@dataclass(frozen=True)
class DataSpec(Validated):
    """Which dataset and split; `root` is only needed for datasets the user keeps locally."""
    SECTION: ClassVar[str] = "data"
    name: str = spec_field("digits", NAME, hashed_as=RENAMED_DATASETS)  # a registered dataset (bench/data.py)
    root: str = spec_field("", TEXT)
    # Images are resized (bilinear, antialiased) to this side length; 0 keeps the native size.
    size: int = spec_field(0, count(0))
    label_base: int = spec_field(1, count(0))  # npz only: the smallest label in the files (downsampled ImageNet: 1)
    num_classes: int = spec_field(0, count(0))  # npz only: 0 infers it from the largest label
    grayscale: bool = spec_field(False, FLAG)  # folder only: load images as one channel


@dataclass(frozen=True)
class NetSpec(Validated):
    """A small ADM-style UNet. Defaults train on a laptop CPU in minutes."""
    SECTION: ClassVar[str] = "net"
    # a multiple of 8: GroupNorm takes 8 groups and attention 4 heads at every width channels * mult
    channels: int = spec_field(32, multiple_of(8))
    channel_mult: tuple[int, ...] = spec_field((1, 2), int_tuple(1, nonempty=True))
    blocks_per_level: int = spec_field(1, count(1))
    # level indices (0 = full resolution) with self-attention
    attention_levels: tuple[int, ...] = spec_field((1,), int_tuple(0, nonempty=False))
    dropout: float = spec_field(0.0, interval(0, 1, high_open=True))

    def cross_check(self) -> None:
        levels = len(self.channel_mult)
        if any(level >= levels for level in self.attention_levels):
            raise SpecError(f"net.attention_levels={list(self.attention_levels)} is not valid: the network has levels "
                            f"0..{levels - 1} (net.channel_mult has {levels} entries)")


@dataclass(frozen=True)
class TrainSpec(Validated):
    """Joint conditional/unconditional training (paper, Algorithm 1)."""
    SECTION: ClassVar[str] = "train"
    p_uncond: float = spec_field(0.2, interval(0, 1))
    steps: int = spec_field(1500, count(1))
    batch_size: int = spec_field(128, count(1))
    lr: float = spec_field(2e-3, POSITIVE)
    ema_decay: float = spec_field(0.995, interval(0, 1, high_open=True))
    grad_clip: float = spec_field(1.0, POSITIVE)
    seed: int = spec_field(0, count(0))
    # how the training step is evaluated (as sample.* for sampling; `--fast` picks them by measuring,
    # bench/autotune.py): bf16 autocast of forward and loss, channels_last weights, torch.compile
    precision: str = spec_field("fp32", one_of(*PRECISIONS), later=True)
    channels_last: bool = spec_field(False, FLAG, later=True)
    compile: bool = spec_field(False, FLAG, later=True)


@dataclass(frozen=True)
class ClassifierSpec(Validated):
    """The guidance classifier (baselines/noisy_classifier.py). noise_aware=False is the
    clean-images-only ablation. Used by classifier guidance and, for every cell, to
    measure the adversarial gap (its confidence on the samples vs the evaluator's)."""
    SECTION: ClassVar[str] = "classifier"
    noise_aware: bool = spec_field(True, FLAG)
    # channels of the first stage; stages are width x (1, 2, 4, 8), each GroupNorm has 8 groups
    width: int = spec_field(32, multiple_of(8))
    steps: int = spec_field(800, count(1))
    batch_size: int = spec_field(128, count(1))
    lr: float = spec_field(2e-3, POSITIVE)
    seed: int = spec_field(7, count(0))


@dataclass(frozen=True)
class SampleSpec(Validated):
    """Sampling: the paper's ancestral sampler (variance interpolation v) or DDIM."""
    SECTION: ClassVar[str] = "sample"
    sampler: str = spec_field("ancestral", one_of(*SAMPLERS))
    steps: int = spec_field(64, count(1))
    v: float = spec_field(0.3, interval(0, 1))
    clip_x: bool = spec_field(True, FLAG)  # clip x_hat to the data range [-1, 1] at every step
    num_samples: int = spec_field(256, count(1))
    seed: int = spec_field(0, count(0))  # sample i uses seed + i for its label and all its noise
    batch_size: int = spec_field(256, count(1))
    # The fast path (bench/fastpath.py), added after results were stored.
    precision: str = spec_field("fp32", one_of(*PRECISIONS), later=True)  # autocast dtype of the network only
    channels_last: bool = spec_field(False, FLAG, later=True)
    compile: bool = spec_field(False, FLAG, later=True)  # torch.compile the network


@dataclass(frozen=True)
class GuidanceSpec(Validated):
    """A registered guidance method and its parameters (e.g. {"w": 0.3} for cfg); both are checked
    against the method's record by bench.pipeline.validate_cells."""
    SECTION: ClassVar[str] = "guidance"
    method: str = spec_field("cfg", NAME)
    params: tuple[tuple[str, Any], ...] = spec_field((), PAIRS)

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class EvalSpec(Validated):
    """How samples are scored: a registered feature extractor (bench/features.py) against a real split."""
    SECTION: ClassVar[str] = "eval"
    features: str = spec_field("evaluator", NAME)
    reference_split: str = spec_field("heldout", one_of(*SPLITS))
    # also an Inception FID (fid_inception) beside the domain evaluator's `fid`, each in its own column
    inception_fid: bool = spec_field(False, FLAG, later=True)
    # bootstrap draws behind every interval (bench/bootstrap.py): 200 reach the nominal coverage in
    # tests/test_bootstrap.py, and the endpoints' Monte Carlo error at 200 draws, measured in
    # results/mnist/notes.md, is small beside the intervals' width; resample the reference split too
    # (slow for 2048-d features)
    bootstrap: int = spec_field(200, count(50), later=True)
    bootstrap_reference: bool = spec_field(False, FLAG, later=True)
    # extraction with the fast path (bench/features.py: channels_last, inference mode, bf16 autocast
    # where native); opt-in, because its FID change against fp32 features (bench.perf --features) is
    # not small beside the bootstrap interval
    fast_features: bool = spec_field(False, FLAG, later=True)


@dataclass(frozen=True)
class ModelSpec(Validated):
    """Where the diffusion model comes from (bench/sources): `trained` here from the net and train
    sections, or a pretrained network from files the user names (nothing is downloaded): `adm`
    (a guided-diffusion checkpoint with the architecture `config`, and optionally its noisy classifier),
    `diffusers` (a save_pretrained folder: UNet2DModel, or DiT with its VAE in `vae_path`),
    `callable` (a user's module:function). Discrete-time networks take `schedule`/`timesteps`; a
    callable returning an EDM denoiser (prediction=denoiser) needs its sigma range. `null_label` is the
    label meaning "no class" (-1: the model has none, so no classifier-free guidance)."""
    SECTION: ClassVar[str] = "model"
    source: str = spec_field("trained", NAME, later=True)
    path: str = spec_field("", TEXT, later=True)
    config: str = spec_field("", TEXT, later=True)
    classifier_path: str = spec_field("", TEXT, later=True)
    classifier_config: str = spec_field("", TEXT, later=True)
    vae_path: str = spec_field("", TEXT, later=True)  # diffusers latent models: the AutoencoderKL folder
    function: str = spec_field("", TEXT, later=True)  # callable: "package.module:function"
    prediction: str = spec_field("eps", one_of("eps", "denoiser"), later=True)
    schedule: str = spec_field("cosine", one_of("cosine", "linear"), later=True)
    timesteps: int = spec_field(1000, count(2), later=True)
    sigma_min: float = spec_field(0.0, interval(0, float("inf")), later=True)
    sigma_max: float = spec_field(0.0, interval(0, float("inf")), later=True)
    null_label: int = spec_field(-1, Rule("an integer >= -1", lambda v: _is_int(v) and v >= -1), later=True)


@dataclass(frozen=True)
class GuideSpec(Validated):
    """The guide model of autoguidance: the main network and training with these changes (a smaller
    width, fewer steps; p_uncond = 1 trains EDM2's unconditional guide). Trained and cached like any
    model, and only for methods whose record needs a guide."""
    SECTION: ClassVar[str] = "guide"
    channels: int = spec_field(16, multiple_of(8), later=True)
    steps: int = spec_field(500, count(1), later=True)
    p_uncond: float = spec_field(0.2, interval(0, 1), later=True)


@dataclass(frozen=True)
class RunSpec:
    data: DataSpec = field(default_factory=DataSpec)
    net: NetSpec = field(default_factory=NetSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    sample: SampleSpec = field(default_factory=SampleSpec)
    guidance: GuidanceSpec = field(default_factory=GuidanceSpec)
    classifier: ClassifierSpec = field(default_factory=ClassifierSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    guide: GuideSpec = field(default_factory=GuideSpec, metadata={"omit_default_from_hash": True})
    model: ModelSpec = field(default_factory=ModelSpec, metadata={"omit_default_from_hash": True})

    def guide_net_and_train(self) -> tuple[NetSpec, TrainSpec]:
        """The guide model's network and training: the main ones with the guide section's changes."""
        return (replace(self.net, channels=self.guide.channels),
                replace(self.train, steps=self.guide.steps, p_uncond=self.guide.p_uncond))

    def model_key(self) -> dict[str, Any]:
        """The part of the spec that identifies a trained diffusion model."""
        return {"data": to_dict(self.data), "net": to_dict(self.net), "train": to_dict(self.train)}


def sections() -> dict[str, type]:
    """RunSpec's sections by name ("data" -> DataSpec, ...)."""
    return typing.get_type_hints(RunSpec)


def _hashed(f: dataclasses.Field, value: Any) -> bool:
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return not (f.metadata.get("omit_default_from_hash") and value == default)


def _hash_value(f: dataclasses.Field, value: Any) -> Any:
    return f.metadata.get("hashed_as", {}).get(value, value) if isinstance(value, str) else value


def to_dict(spec: Any, *, for_hash: bool = False) -> Any:
    """A JSON-ready dict; tuples become lists, nested specs become dicts.
    for_hash leaves out LATER fields that hold their defaults."""
    if dataclasses.is_dataclass(spec):
        return {f.name: to_dict(_hash_value(f, getattr(spec, f.name)) if for_hash else getattr(spec, f.name), for_hash=for_hash)
                for f in dataclasses.fields(spec) if not for_hash or _hashed(f, getattr(spec, f.name))}
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
    hints = typing.get_type_hints(cls)
    types = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    unknown = set(data) - set(types)
    if unknown:
        raise SpecError(f"unknown {cls.__name__} keys {sorted(unknown)}; valid keys: {sorted(types)}")
    return cls(**{k: _from_value(types[k], v) for k, v in data.items()})


def stable_hash(obj: Any, length: int = 12) -> str:
    """sha256 of canonical JSON: identical across processes and machines."""
    blob = json.dumps(to_dict(obj, for_hash=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
