"""Named suites: functions returning the cells (name + RunSpec) of a sweep.

A cell's run id is the stable hash of its full spec; cells that share (data, net, train)
share one trained model.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from .config import (ClassifierSpec, DataSpec, EvalSpec, GuideSpec, GuidanceSpec, ModelSpec, NetSpec, RunSpec, SampleSpec, TrainSpec,
                     stable_hash)
from .errors import BenchError
from .overrides import apply_overrides, parse_overrides
from .registry import Registry


@dataclass(frozen=True)
class Cell:
    name: str
    spec: RunSpec

    @property
    def run_id(self) -> str:
        return f"{self.name}-{stable_hash(self.spec, 8)}"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    build: Callable[[], list[Cell]]


SUITES: Registry[Suite] = Registry("suite", "suites")


def register_suite(name: str, description: str) -> Callable[[Callable[[], list[Cell]]], Callable[[], list[Cell]]]:
    def add(fn: Callable[[], list[Cell]]) -> Callable[[], list[Cell]]:
        SUITES.add(name, Suite(name, description, fn))
        return fn
    return add


def get_suite(name: str) -> Suite:
    return SUITES[name]


class SelectionError(BenchError, ValueError):
    """A --shard or --only that selects nothing or is malformed."""


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 1 <= I <= N; cells are dealt round-robin in suite order, so shards are disjoint and stable."""
    try:
        shard, shards = (int(v) for v in text.split("/"))
    except ValueError:
        raise SelectionError(f"--shard {text!r}: expected I/N such as 2/8") from None
    if not 1 <= shard <= shards:
        raise SelectionError(f"--shard {text!r}: I must be between 1 and N")
    return shard, shards


def select_cells(suite: str, *, only: str = "*", overrides: Sequence[str] = (), shard: str = "1/1") -> list[Cell]:
    """The cells of `suite` whose names match the `only` glob, with the KEY=VALUE overrides applied
    (every spec checks its ranges as it is built), then the I-th of N round-robin shards."""
    chosen = SUITES[suite]
    parsed = parse_overrides(list(overrides))
    index, count = parse_shard(shard)
    cells = [Cell(c.name, apply_overrides(c.spec, parsed)) for c in chosen.build() if fnmatch.fnmatch(c.name, only)]
    if not cells:
        raise SelectionError(f"no cell of suite {chosen.name} matches --only {only!r}")
    if index > len(cells):
        raise SelectionError(f"--shard {shard}: the selection has only {len(cells)} cells, so shard {index} is empty")
    return cells[index - 1::count]


def cfg_cell(base: RunSpec, w: float) -> Cell:
    spec = replace(base, guidance=GuidanceSpec("cfg", (("w", w),)))
    return Cell(f"cfg_p{base.train.p_uncond:g}_w{w:g}_T{base.sample.steps}", spec)


def classifier_cell(base: RunSpec, scale: float, *, noise_aware: bool = True, on: str = "cond") -> Cell:
    """Classifier guidance of the `on` model; noise_aware=False is the clean-classifier ablation."""
    spec = replace(base, guidance=GuidanceSpec("classifier", (("base", on), ("scale", scale))),
                   classifier=replace(base.classifier, noise_aware=noise_aware))
    kind = "noisy" if noise_aware else "clean"
    return Cell(f"clf-{kind}_{on}_p{base.train.p_uncond:g}_s{scale:g}_T{base.sample.steps}", spec)


# Digits at 8x8 with a 0.7M-parameter UNet: every stage once, sized for a laptop CPU (times: README).
SMOKE_BASE = RunSpec(
    data=DataSpec("digits"),
    net=NetSpec(channels=32, channel_mult=(1, 2), attention_levels=(1,)),
    train=TrainSpec(p_uncond=0.2, steps=400, batch_size=64, lr=2e-3, ema_decay=0.99),
    sample=SampleSpec(sampler="ancestral", steps=32, num_samples=256, batch_size=256),
    classifier=ClassifierSpec(width=16, steps=200, batch_size=64),
)


@register_suite("smoke", "every stage once on digits 8x8: CFG at w in {0, 1, 3}, noisy- and clean-classifier guidance")
def smoke() -> list[Cell]:
    return ([cfg_cell(SMOKE_BASE, w) for w in (0.0, 1.0, 3.0)]
            + [classifier_cell(SMOKE_BASE, 1.0), classifier_cell(SMOKE_BASE, 1.0, noise_aware=False)])


PAPER_W_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
PAPER_P_UNCOND = (0.1, 0.2, 0.5)

# MNIST resized to 16x16 so that a 52-cell sweep fits a 2-core CPU within the suite budget (28x28
# costs several times more per image; --set data.size=0 runs native 28x28 with its own evaluator):
# a 0.28M-parameter UNet (16 channels, attention at 4x4), 1,500 Adam steps per p_uncond, 32 ancestral
# steps (v = 0.3). Times: the suites' reports.
MNIST5K_BASE = RunSpec(
    data=DataSpec("mnist5k", size=16),
    net=NetSpec(channels=16, channel_mult=(1, 2, 2), attention_levels=(2,)),
    train=TrainSpec(p_uncond=0.2, steps=1500, batch_size=128, lr=2e-3, ema_decay=0.995),
    sample=SampleSpec(sampler="ancestral", steps=32, num_samples=384, batch_size=384),
    classifier=ClassifierSpec(width=16, steps=600, batch_size=64),
)
STEPS_SWEEP_W = 0.3  # the steps sweep runs at the paper's best w at 128x128, fixed before any result exists
SEED_SETS = (1000, 2000)  # extra sample-seed sets for the seed-spread cells


def with_p(base: RunSpec, p_uncond: float) -> RunSpec:
    return replace(base, train=replace(base.train, p_uncond=p_uncond))


def with_steps(base: RunSpec, steps: int) -> RunSpec:
    return replace(base, sample=replace(base.sample, steps=steps))


def with_seed(cell: Cell, seed: int) -> Cell:
    return Cell(f"{cell.name}_seed{seed}", replace(cell.spec, sample=replace(cell.spec.sample, seed=seed)))


def with_inception(cell: Cell) -> Cell:
    return Cell(cell.name, replace(cell.spec, eval=replace(cell.spec.eval, inception_fid=True)))


def paper_sweep(base: RunSpec, w_grid=PAPER_W_GRID, p_grid=PAPER_P_UNCOND, scales=(0.5, 1.0, 2.0, 4.0),
                steps=(8, 16, 64, 128), steps_w=STEPS_SWEEP_W, seed_sets=SEED_SETS) -> list[Cell]:
    """CFG over (p_uncond, w); classifier guidance over scales (noisy classifier on the conditional
    and unconditional models, and the clean-classifier ablation); a sampling-steps sweep; and
    repeats of two cells with other sample seeds to measure the seed spread."""
    mid = with_p(base, 0.2)
    cells = [cfg_cell(with_p(base, p), w) for p in p_grid for w in w_grid]
    cells += [classifier_cell(mid, s) for s in scales]
    cells += [classifier_cell(mid, s, on="uncond") for s in (scales[1], scales[-1])]
    cells += [classifier_cell(mid, s, noise_aware=False) for s in (scales[1], scales[-1])]
    cells += [cfg_cell(with_steps(mid, t), steps_w) for t in steps]
    cells += [with_seed(cfg_cell(mid, w), seed) for w in (0.0, steps_w) for seed in seed_sets]
    return cells


@register_suite("mnist5k", "the paper-shaped sweep on the 5,000-image MNIST subset at 16x16 (the former `mnist` suite, "
                           "stored results kept): 3 p_uncond x 12 w, classifier guidance, steps, seed spread")
def mnist5k() -> list[Cell]:
    return paper_sweep(MNIST5K_BASE)


# Full MNIST (60,000 train images, the 10,000-image test set as the FID reference) at 16x16 with the
# network and training of mnist5k; 1,000 samples per cell. Every cell has the domain evaluator's FID;
# the p_uncond = 0.2 sweep over w, the seed-spread cells and the noisy-classifier cells also have an
# Inception FID (the packaged FID Inception at 299x299 is what costs: README, suite times).
MNIST_BASE = replace(MNIST5K_BASE, data=DataSpec("mnist", size=16),
                     sample=replace(MNIST5K_BASE.sample, num_samples=1000, batch_size=500))


def inception_sweep(base: RunSpec) -> list[Cell]:
    """paper_sweep with an Inception FID on the p_uncond = 0.2 sweep over w, the seed-spread cells and
    the noisy-classifier cells on the conditional model."""
    def chosen(cell: Cell) -> bool:
        main_sweep = cell.spec.guidance.method == "cfg" and cell.spec.sample.steps == base.sample.steps
        noisy_cond = cell.name.startswith("clf-noisy_cond")
        return cell.spec.train.p_uncond == 0.2 and (main_sweep or noisy_cond)
    return [with_inception(c) if chosen(c) else c for c in paper_sweep(base)]


@register_suite("mnist", "the paper-shaped sweep on full MNIST 16x16 (10k-image FID reference, N = 1,000): 3 p_uncond x "
                         "12 w, classifier guidance, steps, seed spread; Inception FID on the p_uncond = 0.2 cells")
def mnist() -> list[Cell]:
    return inception_sweep(MNIST_BASE)


FASHION_BASE = replace(MNIST_BASE, data=DataSpec("fashion", size=16))


@register_suite("fashion", "the mnist suite's shape on Fashion-MNIST 16x16 (needs apt-get install dataset-fashion-mnist "
                           "or data.root)")
def fashion() -> list[Cell]:
    return inception_sweep(FASHION_BASE)


def method_cell(base: RunSpec, method: str, label: str, **params) -> Cell:
    spec = replace(base, guidance=GuidanceSpec(method, tuple(sorted(params.items()))))
    return Cell(f"{method}_{label}_p{base.train.p_uncond:g}_T{base.sample.steps}", spec)


# autoguidance's guide: half the main network's width and a fifth of its training (a "bad version")
METHODS_GUIDE = GuideSpec(channels=8, steps=300)


@register_suite("methods", "every registered guidance method on the mnist5k p_uncond 0.2 model: one FID–IS frontier "
                           "with cost (CFG, interval, APG, classifier, autoguidance, CFG++, CFG-Zero*, rescaled, schedules)")
def methods() -> list[Cell]:
    base = with_p(MNIST5K_BASE, 0.2)
    strengths = (0.3, 1.0, 2.0, 4.0)
    cells = [cfg_cell(base, w) for w in (0.0, *strengths)]
    cells += [method_cell(base, "interval", f"w{w:g}", inner="cfg", inner_params=(("w", w),)) for w in strengths]
    cells += [method_cell(base, "apg", f"w{w:g}", w=w) for w in strengths]
    cells += [classifier_cell(base, s) for s in (1.0, 4.0)]
    guided = replace(base, guide=METHODS_GUIDE)
    cells += [method_cell(guided, "autoguidance", f"w{w:g}", w=w) for w in strengths]
    unconditional_guide = replace(base, guide=replace(METHODS_GUIDE, p_uncond=1.0))  # EDM2's variant
    cells += [method_cell(unconditional_guide, "autoguidance", f"uncond-guide_w{w:g}", w=w) for w in (1.0, 2.0)]
    cells += [method_cell(base, "cfgpp", f"l{lam:g}", guidance_lambda=lam) for lam in (0.2, 0.4, 0.6, 0.8)]
    cells += [method_cell(base, "cfg_zero_star", f"w{w:g}", w=w) for w in strengths]
    cells += [method_cell(base, "rescaled_cfg", f"w{w:g}", w=w, phi=0.7) for w in strengths]
    return cells + [method_cell(base, "schedule", f"{shape}_w{w:g}", shape=shape, inner="cfg", inner_params=(("w", w),))
                    for shape in ("linear", "cosine") for w in strengths]


# A few seconds of every stage (untrained-looking samples): for tests and for debugging the harness.
TINY_BASE = RunSpec(data=DataSpec("digits"), net=NetSpec(channels=8, channel_mult=(1, 2), attention_levels=()),
                    train=TrainSpec(steps=20, batch_size=32), sample=SampleSpec(steps=4, num_samples=72, batch_size=40),
                    classifier=ClassifierSpec(width=8, steps=10, batch_size=32))


@register_suite("tiny", "seconds of every stage on digits (tests, debugging): CFG over p_uncond x w, a steps variant, classifier guidance")
def tiny() -> list[Cell]:
    cells = [cfg_cell(with_p(TINY_BASE, p), w) for p in (0.1, 0.5) for w in (0.0, 0.5, 2.0)]
    return cells + [cfg_cell(with_steps(with_p(TINY_BASE, 0.1), 8), 0.5), classifier_cell(with_p(TINY_BASE, 0.1), 1.0)]


# The CI regression gate: a small fixed sweep on digits, compared with results/ci/baseline.csv.
CI_BASE = replace(SMOKE_BASE, sample=replace(SMOKE_BASE.sample, num_samples=256))


@register_suite("ci", "regression gate on digits: p_uncond in {0.1, 0.5} x w in {0, 0.5, 2}, classifier s = 1 (--check)")
def ci() -> list[Cell]:
    cells = [cfg_cell(with_p(CI_BASE, p), w) for p in (0.1, 0.5) for w in (0.0, 0.5, 2.0)]
    return cells + [classifier_cell(with_p(CI_BASE, 0.1), 1.0)]


# Presets mirroring the paper for a GPU and the data; here they only plan (--dry-run).
IMAGENET64_BASE = RunSpec(
    data=DataSpec("npz", size=64),  # --set data.root=/path/to/Imagenet64 (train_data_batch_*.npz, val_data.npz)
    net=NetSpec(channels=192, channel_mult=(1, 2, 3, 4), blocks_per_level=3, attention_levels=(1, 2, 3), dropout=0.1),
    train=TrainSpec(p_uncond=0.1, steps=400_000, batch_size=256, lr=3e-4, ema_decay=0.9999),
    sample=SampleSpec(sampler="ancestral", steps=256, v=0.3, num_samples=50_000, batch_size=500),
    classifier=ClassifierSpec(width=64, steps=300_000, batch_size=256, lr=3e-4),
    eval=EvalSpec(features="inception", reference_split="train"),
)
TABLE1_W_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 3.0, 4.0)


@register_suite("imagenet64", "paper Table 1: ImageNet 64x64, 3 p_uncond x 14 w, T = 256, 50k samples, Inception (GPU + data)")
def imagenet64() -> list[Cell]:
    cells = [cfg_cell(with_p(IMAGENET64_BASE, p), w) for p in PAPER_P_UNCOND for w in TABLE1_W_GRID]
    return cells + [classifier_cell(IMAGENET64_BASE, s) for s in (0.5, 1.0, 2.0, 4.0, 10.0)]


# Bring your own model: the public ADM ImageNet 64x64 model and its noisy classifier (guided-diffusion's
# 64x64_diffusion.pt and 64x64_classifier.pt), which have no null label: unguided, classifier guidance
# over the scale (their paper's sweep), and the same guidance restricted to an interval of noise levels.
# --set model.path=.../64x64_diffusion.pt --set model.classifier_path=.../64x64_classifier.pt
# --set data.root=/path/to/Imagenet64 (the reference set: train_data_batch_*.npz)
ADM64_BASE = replace(IMAGENET64_BASE, model=ModelSpec(source="adm", config="imagenet64",
                                                      classifier_config="imagenet64-classifier"),
                     sample=replace(IMAGENET64_BASE.sample, steps=250, batch_size=256))
ADM64_SCALES = (0.0, 0.5, 1.0, 2.0, 4.0, 10.0)


@register_suite("adm64", "your ADM ImageNet 64x64 model + classifier: classifier scale sweep, interval guidance, 50k samples, Inception")
def adm64() -> list[Cell]:
    def cell(name: str, method: str, params: tuple) -> Cell:
        return Cell(f"adm64_{name}_T250", replace(ADM64_BASE, guidance=GuidanceSpec(method, params)))
    cells = [cell(f"clf_s{s:g}", "classifier", (("base", "cond"), ("scale", s))) for s in ADM64_SCALES]
    return cells + [cell(f"interval-clf_s{s:g}", "interval", (("inner", "classifier"), ("inner_params", (("scale", s),))))
                    for s in (1.0, 4.0)]


# Bring your own model: DiT-XL/2 at 256x256 (trained with label dropout 0.1, null class 1000), as the diffusers
# folders of facebook/DiT-XL-2-256 (transformer/ and vae/), sampled in latents: the FID-against-w curve.
# --set model.path=.../DiT-XL-2-256/transformer --set model.vae_path=.../DiT-XL-2-256/vae
# --set data.root=/path/to/imagenet/train (class-per-folder images: the reference set)
DIT256_BASE = RunSpec(
    data=DataSpec("folder", size=256),
    model=ModelSpec(source="diffusers", schedule="linear"),
    sample=SampleSpec(sampler="ancestral", steps=250, v=0.3, clip_x=False, num_samples=50_000, batch_size=64),
    eval=EvalSpec(features="inception", reference_split="train"),
)
DIT256_W = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # DiT's scale s is 1 + w (its paper's s = 1.5 is w = 0.5)


@register_suite("dit256", "your DiT-XL/2 256x256 (diffusers folders): FID against w, 8 values, 50k samples, Inception")
def dit256() -> list[Cell]:
    return [Cell(f"dit256_cfg_w{w:g}_T250", replace(DIT256_BASE, guidance=GuidanceSpec("cfg", (("w", w),))))
            for w in DIT256_W]


CIFAR10_BASE = RunSpec(
    data=DataSpec("cifar10"),  # --set data.root=/path/holding/cifar-10-batches-py
    net=NetSpec(channels=128, channel_mult=(1, 2, 2, 2), blocks_per_level=2, attention_levels=(1,), dropout=0.1),
    train=TrainSpec(p_uncond=0.1, steps=300_000, batch_size=128, lr=2e-4, ema_decay=0.9999),
    sample=SampleSpec(sampler="ancestral", steps=256, v=0.3, num_samples=50_000, batch_size=500),
    classifier=ClassifierSpec(width=64, steps=100_000, batch_size=256, lr=3e-4),
    eval=EvalSpec(features="inception", reference_split="train"),
)


@register_suite("cifar10", "CIFAR-10 32x32: p_uncond in {0.1, 0.2, 0.5} x paper w grid, T = 256, 50k samples, Inception (GPU + data)")
def cifar10() -> list[Cell]:
    cells = [cfg_cell(with_p(CIFAR10_BASE, p), w) for p in PAPER_P_UNCOND for w in PAPER_W_GRID]
    return cells + [classifier_cell(CIFAR10_BASE, s) for s in (0.5, 1.0, 2.0, 4.0)]
