"""The paper's suites on the offline data: every stage once (smoke), the tests' seconds (tiny), the CI
gate (ci), and the paper-shaped sweeps on MNIST and Fashion-MNIST: CFG over (p_uncond, w),
classifier guidance, sampling steps and sample-seed sets."""
from __future__ import annotations

from dataclasses import replace

from bench.spec.sections import ClassifierSpec, DataSpec, NetSpec, RunSpec, SampleSpec, TrainSpec
from bench.suites.cells import (Cell, cfg_cell, classifier_cell, register_suite, with_inception, with_p, with_seed,
                                with_steps)

# Digits at 8x8 with a 0.7M-parameter UNet: every stage once, sized for a laptop CPU.
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
# Inception FID (the packaged FID Inception at 299x299 is what costs: results/perf/report.md).
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
