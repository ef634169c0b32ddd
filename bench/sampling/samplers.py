"""Samplers over the lambda grid at uniformly spaced u (Ho & Salimans, section 2 / appendix).

Both take only eps_fn(z, lam, labels) -> eps and know nothing about guidance. An eps_fn may instead
return a pair (eps, eps_renoise): x_hat comes from eps, and the step treats z as
alpha x_hat + sigma eps_renoise (with x_hat before clipping), i.e. z + sigma (eps_renoise - eps);
with eps_renoise = eps that is z itself, so a pair of equal eps is exactly the single eps.

Ancestral step from lambda to a less noisy lambda' (lambda < lambda'), r = e^(lambda - lambda'):
    mu = r (alpha'/alpha) z + (1 - r) alpha' x_hat
    var = ((1 - r) sigma'^2)^(1 - v) * ((1 - r) sigma^2)^v        (variance interpolation v)
DDIM step (Song et al. 2021, eta = 0):  z' = alpha' x_hat + sigma' eps_hat.
The last step outputs x_hat itself. With clip_x, x_hat is clipped to [-1, 1] at every
step, and DDIM uses the eps consistent with the clipped x_hat.

Seeds: sample i draws its label and then all of its noise from its own generator
seeded with seeds[i], so images never depend on batch size or sharding.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from bench.models.process import alpha_sigma, sampling_lambdas, x_from_eps
from bench.spec.sections import SAMPLERS

EpsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


CHUNK_BYTES = 32 * 2 ** 20  # host memory for draws made ahead of the steps that use them


class SampleNoise:
    """Per-sample random streams: labels first, then N(0, I) draws, one per call of `draw`.

    The streams are CPU generators, so images are the same on every device. Each generator makes
    several of its draws in one call (a chunk, refilled when used up), which keeps the sampler's own
    per-step work near zero beside the network's. That gives the same numbers as one call per draw
    because torch's CPU normal sampler fills in blocks of 16 values: a draw of a multiple of 16 values
    ends on a block boundary (tests/sampling/test_samplers.py holds torch to it); other shapes draw once per step.
    `draws` is how many draws the sampler will make (more only cost a refill). For a CUDA device a chunk
    goes into a pinned host buffer and is copied without blocking; the buffer is refilled only after
    that copy has finished, which the chunk's draws have long waited for.
    """

    def __init__(self, seeds: Sequence[int], shape: tuple[int, ...], num_classes: int,
                 device: str | torch.device = "cpu", draws: int = 1):
        self.device = torch.device(device)
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.labels = torch.stack([torch.randint(num_classes, (), generator=g) for g in self.generators])
        per_draw = max(1, len(seeds)) * math.prod(shape) * 4
        blocks_align = math.prod(shape) % 16 == 0
        self.chunk = max(1, min(draws, CHUNK_BYTES // per_draw)) if blocks_align else 1
        self.host = torch.empty((len(seeds), self.chunk, *shape), pin_memory=self.device.type == "cuda")
        self.drawn = self.host  # the chunk on the device
        self.used = self.chunk
        self.copied = None  # CUDA event: the last copy out of the host buffer is done

    def draw(self) -> torch.Tensor:
        """The next draw of every sample's stream, on the device (on CPU: a view into a reused buffer)."""
        if self.used == self.chunk:
            self._refill()
        self.used += 1
        return self.drawn[:, self.used - 1]

    def _refill(self) -> None:
        if self.copied is not None:
            self.copied.synchronize()
        for g, rows in zip(self.generators, self.host):
            torch.randn(rows.shape, generator=g, out=rows)
        self.used = 0
        if self.device.type == "cuda":
            self.drawn = self.host.to(self.device, non_blocking=True)
            self.copied = torch.cuda.Event()
            self.copied.record()


def _step_coefficients(steps: int, sampler: str, v: float) -> list[tuple[float, ...]]:
    """Per step: (lambda, coef_z, coef_x, coef_eps, noise_std) in float64, computed once per run."""
    lams = sampling_lambdas(steps, torch.float64)
    out = []
    for lam, lam_next in zip(lams[:-1].tolist(), lams[1:].tolist()):
        a, s = (t.item() for t in alpha_sigma(torch.tensor(lam, dtype=torch.float64)))
        a2, s2 = (t.item() for t in alpha_sigma(torch.tensor(lam_next, dtype=torch.float64)))
        if sampler == "ddim":
            out.append((lam, 0.0, a2, s2, 0.0))
            continue
        one_minus_r = -math.expm1(lam - lam_next)
        var = (one_minus_r * s2 ** 2) ** (1 - v) * (one_minus_r * s ** 2) ** v
        out.append((lam, (1 - one_minus_r) * a2 / a, one_minus_r * a2, 0.0, math.sqrt(var)))
    return out


@torch.no_grad()
def sample(eps_fn: EpsFn, shape: tuple[int, ...], seeds: Sequence[int], num_classes: int, *,
           sampler: str = "ancestral", steps: int = 64, v: float = 0.3, clip_x: bool = True,
           labels: torch.Tensor | None = None, device: str | torch.device = "cpu",
           dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw len(seeds) samples; returns (x in model range, labels). Labels come from the seeds unless given.

    The network is evaluated `steps` times, at lambda_0..lambda_{T-1} of the grid; the step
    from lambda_{T-1} to lambda_T = lambda_max returns x_hat.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; known samplers: {', '.join(SAMPLERS)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    noise = SampleNoise(seeds, shape, num_classes, device, draws=1 if sampler == "ddim" else steps)
    labels = (noise.labels if labels is None else labels).to(device)
    z = noise.draw().to(dtype=dtype, copy=True)
    coefficients = _step_coefficients(steps, sampler, v)
    lam_batches = [torch.full((len(seeds),), c[0], device=device, dtype=dtype) for c in coefficients]
    # alpha, sigma of each evaluated level as Python floats, so the loop builds no host tensors
    alpha_sigmas = [tuple(t.item() for t in alpha_sigma(torch.tensor(c[0], dtype=torch.float64))) for c in coefficients]

    def predict(z: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_hat, the eps the step renoises with, the z the step starts from)."""
        out = eps_fn(z, lam_batches[k], labels)
        if isinstance(out, tuple):  # (eps for x_hat, eps to renoise with), e.g. CFG++
            eps, renoise = out[0].to(dtype), out[1].to(dtype)
            x_hat = x_from_eps(z, lam_batches[k], eps)
            x_hat = x_hat.clamp(-1.0, 1.0) if clip_x else x_hat
            alpha, sigma = alpha_sigmas[k]
            z = z + sigma * (renoise - eps)  # alpha x_hat + sigma renoise, with x_hat before clipping
            return x_hat, (z - alpha * x_hat) / sigma if clip_x else renoise, z
        eps = out.to(dtype)
        x_hat = x_from_eps(z, lam_batches[k], eps)
        if not clip_x:
            return x_hat, eps, z
        x_hat = x_hat.clamp(-1.0, 1.0)
        if sampler != "ddim":
            return x_hat, eps, z
        alpha, sigma = alpha_sigmas[k]
        return x_hat, (z - alpha * x_hat) / sigma, z

    for k, (_, coef_z, coef_x, coef_eps, std) in enumerate(coefficients[:-1]):
        x_hat, eps, z = predict(z, k)
        if sampler == "ddim":
            z = coef_x * x_hat + coef_eps * eps
        else:
            z = coef_z * z + coef_x * x_hat + std * noise.draw().to(dtype)
    return predict(z, len(coefficients) - 1)[0], labels
