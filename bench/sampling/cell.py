"""Sample a run spec's cell: build the guided eps_fn, sample in batches by seed, time it."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from bench.guidance import CountedNet, GuidanceContext, make_guidance
from bench.infra.progress import Stage
from bench.models.fastpath import NetworkRunner
from bench.sampling.grids import grid_lambdas
from bench.sampling.samplers import sample
from bench.spec.sections import RunSpec


@dataclass
class SampleResult:
    images: torch.Tensor  # model range [-1, 1], (N, C, H, W)
    labels: torch.Tensor
    seconds: float
    network_seconds: float
    nfe_per_image: float
    classifier_seconds: float = 0.0
    classifier_evals_per_image: float = 0.0
    guide_evals_per_image: float = 0.0
    network: dict | None = None  # NetworkRunner.describe(): dtype, memory format, compiled

    def timings(self) -> dict[str, float]:
        n = len(self.labels)
        return {
            "sampled_images": n,
            "sampling_seconds": self.seconds,
            "images_per_second": n / self.seconds,
            "network_seconds": self.network_seconds,
            "classifier_seconds": self.classifier_seconds,
            "other_seconds": self.seconds - self.network_seconds - self.classifier_seconds,
            "nfe_per_image": self.nfe_per_image,
            "classifier_evals_per_image": self.classifier_evals_per_image,
            "guide_evals_per_image": self.guide_evals_per_image,
            **(self.network or {}),
        }


def _guide_net(guide: torch.nn.Module, spec: RunSpec, num_classes: int, device: str) -> Callable[..., torch.Tensor]:
    """The guide as the methods call it: an unconditional guide (guide.p_uncond = 1) gets the null label."""
    runner = NetworkRunner(guide, spec.sample, device)
    if spec.guide.p_uncond < 1:
        return runner
    return lambda z, lam, labels: runner(z, lam, torch.full_like(labels, num_classes))


def sample_cell(spec: RunSpec, model: torch.nn.Module, shape: tuple[int, ...], num_classes: int, *,
                classifier: Callable[..., torch.Tensor] | None = None, guide: torch.nn.Module | None = None,
                device: str = "cpu", quiet: bool = False, seeds: range | None = None,
                null_label: int | None = -1,
                on_batch: Callable[[torch.Tensor, torch.Tensor], None] | None = None) -> SampleResult:
    """Samples for seeds spec.sample.seed .. + num_samples (or the given range), in batches.
    `classifier(z, lam, labels)` returns grad_z log p(y|z) for classifier guidance; `guide` is the
    guide model of autoguidance; `null_label` the model's "no class" label (-1: num_classes; None:
    none). NFE count the model's and the guide's evaluations. `on_batch(x, labels)` is called with each
    batch as it is sampled (to extract its features while it is at hand); its time is not sampling time."""
    s = spec.sample
    runner = NetworkRunner(model, s, device)
    ctx = GuidanceContext(CountedNet(runner), num_classes, CountedNet(classifier) if classifier is not None else None,
                          CountedNet(_guide_net(guide, spec, num_classes, device)) if guide is not None else None,
                          null_label)
    eps_fn = make_guidance(spec.guidance.method, ctx, spec.guidance.space, **spec.guidance.kwargs())
    lambdas = grid_lambdas(s)
    seeds = seeds if seeds is not None else range(s.seed, s.seed + s.num_samples)
    images, labels = [], []
    start, elsewhere = time.perf_counter(), 0.0
    batches = Stage(range(0, len(seeds), s.batch_size), f"sample {len(seeds)} images", "batches", quiet=quiet)
    for first in batches:
        x, y = sample(eps_fn, shape, seeds[first:first + s.batch_size], num_classes, sampler=s.sampler,
                      steps=s.steps, v=s.v, clip_x=s.clip_x, device=device, lambdas=lambdas)
        images.append(x.float().cpu())
        labels.append(y.cpu())
        if on_batch is not None:
            handed = time.perf_counter()
            on_batch(images[-1], labels[-1])
            elsewhere += time.perf_counter() - handed
    seconds = time.perf_counter() - start - elsewhere
    n = len(seeds)
    clf, guide_net = ctx.classifier, ctx.guide
    guide_rows, guide_seconds = (guide_net.rows, guide_net.seconds) if guide_net else (0, 0.0)
    return SampleResult(torch.cat(images), torch.cat(labels), seconds, ctx.model.seconds + guide_seconds,
                        (ctx.model.rows + guide_rows) / n, clf.seconds if clf else 0.0, clf.rows / n if clf else 0.0,
                        guide_rows / n, runner.describe())
