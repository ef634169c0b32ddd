"""Run specifications: the frozen dataclass sections of a RunSpec and their fields' rules.

A run is DataSpec + NetSpec + TrainSpec (which together identify a trained model,
hashed on their own so that every sampling cell of a sweep reuses one model) plus
SampleSpec, GuidanceSpec and EvalSpec.

Every field carries its valid range or set (`rule=` in its metadata) and is checked when the
spec is built, from a suite, from `--set` or from JSON, so a bad value stops before any work
with a SpecError naming `section.field`, the value and what would be valid. Names that live in
registries (datasets, guidance methods, feature extractors) are checked against them by
`bench.runner.validate.validate_cells`, also before any work.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from bench.spec.errors import SpecError
from bench.spec.rules import (FLAG, NAME, PAIRS, POSITIVE, TEXT, Rule, Validated, count, int_tuple, interval, is_int,
                              multiple_of, one_of, spec_field)

MAX_BATCH = 4096  # images per forward pass
MAX_SAMPLES = 10 ** 7  # samples of one cell; they are held in memory (uint8) for scoring

# Fixed sets of the spec (open sets, such as datasets and guidance methods, are registries).
SAMPLERS = ("ancestral", "ddim", "euler", "heun", "dpmpp_2m")  # bench/sampling/solvers.py
# time grids (bench/sampling/grids.py) and the sample.* fields that shape each
GRIDS = {"cosine": (), "lambda": ("lambda_min", "lambda_max"), "edm": ("sigma_min", "sigma_max", "rho"),
         "flow": ("lambda_min",), "flow_shift": ("lambda_min", "shift")}
# what a network predicts / a guidance method combines (bench/models/parameterisation.py)
PREDICTION_SPACES = ("eps", "x0", "v", "flow")
TIME_CONVENTIONS = ("noise_at_1", "noise_at_0")
OBJECTIVES = ("eps", "v", "flow")
PRECISIONS = ("fp32", "bf16")
SPLITS = ("train", "heldout")


# The 5,000-image MNIST subset was registered as "mnist" until full MNIST took that name: stored
# subset runs keep their ids, and full MNIST hashes under a name no stored run ever had.
RENAMED_DATASETS = {"mnist5k": "mnist", "mnist": "mnist60k"}


@dataclass(frozen=True)
class DataSpec(Validated):
    """Which dataset and split; `root` is only needed for datasets the user keeps locally."""
    SECTION: ClassVar[str] = "data"
    name: str = spec_field("digits", NAME, hashed_as=RENAMED_DATASETS)  # a registered dataset (bench/data/datasets.py)
    root: str = spec_field("", TEXT)
    # Images are resized (bilinear, antialiased) to this side length; 0 keeps the native size.
    size: int = spec_field(0, count(0, 4096))
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
    batch_size: int = spec_field(128, count(1, MAX_BATCH))
    lr: float = spec_field(2e-3, POSITIVE)
    ema_decay: float = spec_field(0.995, interval(0, 1, high_open=True))
    grad_clip: float = spec_field(1.0, POSITIVE)
    seed: int = spec_field(0, count(0))
    # how the training step is evaluated (as sample.* for sampling; `--fast` picks them by measuring,
    # bench/models/autotune.py): bf16 autocast of forward and loss, channels_last weights, torch.compile
    precision: str = spec_field("fp32", one_of(*PRECISIONS), later=True)
    channels_last: bool = spec_field(False, FLAG, later=True)
    compile: bool = spec_field(False, FLAG, later=True)
    # what the network learns to predict (bench/models/train.py): eps (the paper's), v (Salimans & Ho 2022),
    # or the flow velocity eps - x0 on the linear interpolant with logit-normal t (SD3)
    objective: str = spec_field("eps", one_of(*OBJECTIVES), later=True)


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
    batch_size: int = spec_field(128, count(1, MAX_BATCH))
    lr: float = spec_field(2e-3, POSITIVE)
    seed: int = spec_field(7, count(0))


@dataclass(frozen=True)
class SampleSpec(Validated):
    """Sampling: a solver (bench/sampling/solvers.py: the paper's ancestral sampler with variance interpolation v,
    DDIM, flow Euler, Heun, DPM-Solver++(2M)) over a time grid (bench/sampling/grids.py) of `steps` levels."""
    SECTION: ClassVar[str] = "sample"
    sampler: str = spec_field("ancestral", one_of(*SAMPLERS))
    steps: int = spec_field(64, count(1))
    v: float = spec_field(0.3, interval(0, 1))
    clip_x: bool = spec_field(True, FLAG)  # clip x_hat to the data range [-1, 1] at every step
    num_samples: int = spec_field(256, count(1, MAX_SAMPLES))
    seed: int = spec_field(0, count(0))  # sample i uses seed + i for its label and all its noise
    batch_size: int = spec_field(256, count(1, MAX_BATCH))
    # The fast path (bench/models/fastpath.py), added after results were stored.
    precision: str = spec_field("fp32", one_of(*PRECISIONS), later=True)  # autocast dtype of the network only
    channels_last: bool = spec_field(False, FLAG, later=True)
    compile: bool = spec_field(False, FLAG, later=True)  # torch.compile the network
    # the time grid and the fields that shape it (each grid reads its own; the others keep their defaults)
    grid: str = spec_field("cosine", one_of(*GRIDS), later=True)
    lambda_min: float = spec_field(-20.0, interval(-40, 40), later=True)  # lambda, flow grids: the noisy end
    lambda_max: float = spec_field(20.0, interval(-40, 40), later=True)  # lambda grid: the clean end
    sigma_min: float = spec_field(0.002, POSITIVE, later=True)  # edm grid (EDM's)
    sigma_max: float = spec_field(80.0, POSITIVE, later=True)
    rho: float = spec_field(7.0, POSITIVE, later=True)
    shift: float = spec_field(3.0, POSITIVE, later=True)  # flow_shift grid (SD3's default)

    def cross_check(self) -> None:
        for f in fields(self):
            if f.name in GRID_PARAMETERS and f.name not in GRIDS[self.grid] and getattr(self, f.name) != f.default:
                readers = " / ".join(g for g, owned in GRIDS.items() if f.name in owned)
                raise SpecError(f"sample.{f.name}={getattr(self, f.name)!r} shapes the {readers} grid, not "
                                f"sample.grid={self.grid!r} (which reads {', '.join(GRIDS[self.grid]) or 'no field'}); "
                                f"set sample.grid={readers.split(' / ')[0]} or leave sample.{f.name} at its default")
        if self.lambda_min >= self.lambda_max:
            raise SpecError(f"sample.lambda_min={self.lambda_min:g} must be below sample.lambda_max={self.lambda_max:g}")
        if self.sigma_min >= self.sigma_max:
            raise SpecError(f"sample.sigma_min={self.sigma_min:g} must be below sample.sigma_max={self.sigma_max:g}")


GRID_PARAMETERS = frozenset(f for owned in GRIDS.values() for f in owned)


@dataclass(frozen=True)
class GuidanceSpec(Validated):
    """A registered guidance method and its parameters (e.g. {"w": 0.3} for cfg); both are checked
    against the method's record by bench.runner.validate.validate_cells."""
    SECTION: ClassVar[str] = "guidance"
    method: str = spec_field("cfg", NAME)
    params: tuple[tuple[str, Any], ...] = spec_field((), PAIRS)
    # the space the method combines predictions in: "" is its record's (its paper's); another is an ablation,
    # labelled as such in tables and reports
    space: str = spec_field("", one_of("", *PREDICTION_SPACES), later=True)

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class EvalSpec(Validated):
    """How samples are scored: a registered feature extractor (bench/evaluation/features.py) against a real split."""
    SECTION: ClassVar[str] = "eval"
    features: str = spec_field("evaluator", NAME)
    reference_split: str = spec_field("heldout", one_of(*SPLITS))
    # also an Inception FID (fid_inception) beside the domain evaluator's `fid`, each in its own column
    inception_fid: bool = spec_field(False, FLAG, later=True)
    # bootstrap draws behind every interval (bench/stats/bootstrap.py; their coverage: tests/stats/test_bootstrap.py,
    # their Monte Carlo error beside the intervals' width: results/mnist/notes.md); resample the reference
    # split too (slow for 2048-d features)
    bootstrap: int = spec_field(200, count(50, 100_000), later=True)
    bootstrap_reference: bool = spec_field(False, FLAG, later=True)
    # extraction with the fast path (bench/evaluation/features.py: channels_last, inference mode, bf16 autocast
    # where native); opt-in, because its FID change against fp32 features (bench.perf --features) is
    # not small beside the bootstrap interval
    fast_features: bool = spec_field(False, FLAG, later=True)
    # eval.features=dinov2: the official dinov2_vitl14_pretrain.pth (bench/evaluation/dinov2.py)
    dinov2_weights: str = spec_field("", TEXT, later=True)
    # reference statistics from a file (ADM/clean-fid npz, EDM2 pkl) instead of the reference split's features
    reference_stats: str = spec_field("", TEXT, later=True)
    # the published protocol a cell follows (bench/suites/protocols.py), recorded with its numbers
    protocol: str = spec_field("", one_of("", "adm", "edm2"), later=True)


@dataclass(frozen=True)
class ModelSpec(Validated):
    """Where the diffusion model comes from (bench/sources): `trained` here from the net and train
    sections, or a pretrained network from files the user names (nothing is downloaded): `adm`
    (a guided-diffusion checkpoint with the architecture `config`, and optionally its noisy classifier),
    `diffusers` (a save_pretrained folder: UNet2DModel, or DiT with its VAE in `vae_path`),
    `callable` (a user's module:function). Discrete-time networks take `schedule`/`timesteps`; a
    callable returning an EDM denoiser (prediction=denoiser) needs its sigma range, a flow velocity model
    (prediction=flow) its time convention. `null_label` is the
    label meaning "no class" (-1: the model has none, so no classifier-free guidance)."""
    SECTION: ClassVar[str] = "model"
    source: str = spec_field("trained", NAME, later=True)
    path: str = spec_field("", TEXT, later=True)
    config: str = spec_field("", TEXT, later=True)
    classifier_path: str = spec_field("", TEXT, later=True)
    classifier_config: str = spec_field("", TEXT, later=True)
    vae_path: str = spec_field("", TEXT, later=True)  # diffusers latent models: the AutoencoderKL folder
    function: str = spec_field("", TEXT, later=True)  # callable: "package.module:function"
    # what the network predicts: eps or v (on the discrete schedule), an EDM denoiser, or a flow velocity
    # (needs time_convention: noise_at_1 as REPA/SD3, noise_at_0 as SiT)
    prediction: str = spec_field("eps", one_of("eps", "denoiser", "v", "flow"), later=True)
    time_convention: str = spec_field("", one_of("", *TIME_CONVENTIONS), later=True)
    schedule: str = spec_field("cosine", one_of("cosine", "linear"), later=True)
    timesteps: int = spec_field(1000, count(2), later=True)
    sigma_min: float = spec_field(0.0, interval(0, float("inf")), later=True)
    sigma_max: float = spec_field(0.0, interval(0, float("inf")), later=True)
    null_label: int = spec_field(-1, Rule("an integer in [-1, 1,000,000]", lambda v: is_int(v) and -1 <= v <= 10 ** 6),
                                 later=True)


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


def sections() -> dict[str, type]:
    """RunSpec's sections by name ("data" -> DataSpec, ...)."""
    return typing.get_type_hints(RunSpec)


