"""Presets for a GPU with the data or a pretrained model: the paper's ImageNet 64x64 Table 1, CIFAR-10,
and bring-your-own ADM and DiT checkpoints. Here they only plan (--dry-run); with the files named by
--set they run."""
from __future__ import annotations

from dataclasses import replace

from bench.spec.sections import (ClassifierSpec, DataSpec, EvalSpec, GuidanceSpec, ModelSpec, NetSpec, RunSpec,
                                 SampleSpec, TrainSpec)
from bench.suites.cells import Cell, cfg_cell, classifier_cell, register_suite, with_p
from bench.suites.paper import PAPER_P_UNCOND, PAPER_W_GRID

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


@register_suite("imagenet64", "paper Table 1: ImageNet 64x64, 3 p_uncond x 14 w, T = 256, 50k samples, Inception (GPU + data)", protocol="adm")
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


@register_suite("adm64", "your ADM ImageNet 64x64 model + classifier: classifier scale sweep, interval guidance, 50k samples, Inception", protocol="adm")
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


@register_suite("dit256", "your DiT-XL/2 256x256 (diffusers folders): FID against w, 8 values, 50k samples, Inception", protocol="adm")
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
