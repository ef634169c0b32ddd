"""Solvers over a time grid of log-SNR levels (bench/sampling/grids.py), under one signature.

Every solver takes only eps_fn(z, lam, labels) -> eps and knows nothing about guidance or about what the
network predicts (bench/models/parameterisation.py converts). An eps_fn may instead return a pair
(eps, eps_renoise): x_hat comes from eps, and the step treats z as alpha x_hat + sigma eps_renoise (with
x_hat before clipping), i.e. z + sigma (eps_renoise - eps); with eps_renoise = eps that is z itself, so a
pair of equal eps is exactly the single eps.

With z = alpha x + sigma eps at lambda and (alpha', sigma') at the next level lambda' > lambda:
    ancestral  Ho & Salimans, appendix: r = e^(lambda - lambda'),
               mu = r (alpha'/alpha) z + (1 - r) alpha' x_hat,
               var = ((1 - r) sigma'^2)^(1 - v) * ((1 - r) sigma^2)^v           (variance interpolation v)
    ddim       Song et al. 2021, eta = 0:  z' = alpha' x_hat + sigma' eps_hat
    euler      the flow ODE's Euler step on the linear interpolant x_t = z / (alpha + sigma), t = sigma / (alpha + sigma):
               x_t' = x_t + (t' - t) u_hat, u_hat = eps_hat - x_hat (the same point as DDIM's, up to rounding)
    heun       Karras et al. 2022, Algorithm 1 (deterministic), on the flow ODE dx_t/dt = u_hat: an Euler step to t',
               then x_t' = x_t + (t' - t)(u_hat + u_hat') / 2 with u_hat' at the Euler point: 2 evaluations a step, 1 at
               the last. EDM writes it in sigma = e^(-lambda/2), where a grid from lambda = -20 (sigma = 2.2e4) makes
               the trapezoid's first step (sigma' - sigma)(eps' - eps)/2 explode; t is bounded in [0, 1], so every
               grid is safe, and the order is the same (2)
    dpmpp_2m   DPM-Solver++(2M), Lu et al. 2022, Algorithm 2, in h = (lambda' - lambda) / 2 (their half log-SNR):
               z' = (sigma'/sigma) z - alpha' (e^(-h) - 1) D, D = x_hat on the first step, else
               D = (1 + 1/(2r)) x_hat - 1/(2r) x_hat_prev, r = h_prev / h
Every solver evaluates the network at lambda_0..lambda_{T-1} and outputs x_hat of the last evaluation (the step
to sigma = 0). With clip_x, x_hat is clipped to [-1, 1] at every step and the deterministic solvers use the eps
consistent with the clipped x_hat.

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


def _step_coefficients(lams: torch.Tensor, sampler: str, v: float) -> list[tuple[float, ...]]:
    """Per step of ancestral/DDIM: (lambda, coef_z, coef_x, coef_eps, noise_std) in float64, once per run."""
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


def _levels(lams: torch.Tensor) -> list[tuple[float, float]]:
    """(alpha, sigma) of each level as Python floats (float64), so the loop builds no host tensors."""
    return [tuple(t.item() for t in alpha_sigma(torch.tensor(lam, dtype=torch.float64))) for lam in lams.tolist()]


@torch.no_grad()
def sample(eps_fn: EpsFn, shape: tuple[int, ...], seeds: Sequence[int], num_classes: int, *,
           sampler: str = "ancestral", steps: int = 64, v: float = 0.3, clip_x: bool = True,
           labels: torch.Tensor | None = None, device: str | torch.device = "cpu",
           dtype: torch.dtype = torch.float32, lambdas: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw len(seeds) samples; returns (x in model range, labels). Labels come from the seeds unless given.

    `lambdas` is the grid (steps + 1 increasing log-SNR levels, the last the clean end: bench/sampling/grids.py);
    None is the paper's cosine grid of `steps`. The network is evaluated at lambda_0..lambda_{T-1} (Heun also
    at each next level but the clean end), and the last step returns x_hat.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; known samplers: {', '.join(SAMPLERS)}")
    lams = sampling_lambdas(steps, torch.float64) if lambdas is None else lambdas.to(torch.float64).cpu()
    if lams.dim() != 1 or len(lams) < 2 or not bool((lams[1:] > lams[:-1]).all()) or not bool(lams[:-1].isfinite().all()):
        raise ValueError("a grid is at least 2 increasing log-SNR levels, finite but for the clean end; got "
                         f"{lams.tolist()[:6]}{'...' if len(lams) > 6 else ''}")
    steps = len(lams) - 1
    noise = SampleNoise(seeds, shape, num_classes, device, draws=steps if sampler == "ancestral" else 1)
    labels = (noise.labels if labels is None else labels).to(device)
    z = noise.draw().to(dtype=dtype, copy=True)
    batch = len(seeds)
    level_batches = [torch.full((batch,), lam, device=device, dtype=dtype) for lam in lams[:-1].tolist()]
    levels = _levels(lams[:-1])
    deterministic = sampler != "ancestral"

    def predict(z: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_hat, the eps the step continues with, the z the step starts from) at level k."""
        out = eps_fn(z, level_batches[k], labels)
        alpha, sigma = levels[k]
        if isinstance(out, tuple):  # (eps for x_hat, eps to renoise with), e.g. CFG++
            eps, renoise = out[0].to(dtype), out[1].to(dtype)
            x_hat = x_from_eps(z, level_batches[k], eps)
            x_hat = x_hat.clamp(-1.0, 1.0) if clip_x else x_hat
            z = z + sigma * (renoise - eps)  # alpha x_hat + sigma renoise, with x_hat before clipping
            return x_hat, (z - alpha * x_hat) / sigma if clip_x else renoise, z
        eps = out.to(dtype)
        x_hat = x_from_eps(z, level_batches[k], eps)
        if not clip_x:
            return x_hat, eps, z
        x_hat = x_hat.clamp(-1.0, 1.0)
        if not deterministic:
            return x_hat, eps, z
        return x_hat, (z - alpha * x_hat) / sigma, z

    last = steps - 1
    if sampler in ("ancestral", "ddim"):
        for k, (_, coef_z, coef_x, coef_eps, std) in enumerate(_step_coefficients(lams, sampler, v)[:-1]):
            x_hat, eps, z = predict(z, k)
            if sampler == "ddim":
                z = coef_x * x_hat + coef_eps * eps
            else:
                z = coef_z * z + coef_x * x_hat + std * noise.draw().to(dtype)
    elif sampler == "euler":
        for k in range(last):
            x_hat, eps, z = predict(z, k)
            (a, s), (a2, s2) = levels[k], levels[k + 1]
            x_t = z / (a + s) + (s2 / (a2 + s2) - s / (a + s)) * (eps - x_hat)
            z = (a2 + s2) * x_t
    elif sampler == "heun":
        for k in range(last):
            x_hat, eps, z = predict(z, k)
            (a, s), (a2, s2) = levels[k], levels[k + 1]
            dt = s2 / (a2 + s2) - s / (a + s)
            x_t, u = z / (a + s), eps - x_hat
            x_hat_next, eps_next, _ = predict((a2 + s2) * (x_t + dt * u), k + 1)
            z = (a2 + s2) * (x_t + dt * (u + eps_next - x_hat_next) / 2)
    else:  # dpmpp_2m
        previous = None  # (x_hat, h) of the step before
        for k in range(last):
            x_hat, _, z = predict(z, k)
            (a, s), (a2, s2) = levels[k], levels[k + 1]
            h = (lams[k + 1].item() - lams[k].item()) / 2
            denoised = x_hat
            if previous is not None:
                r = previous[1] / h
                denoised = (1 + 1 / (2 * r)) * x_hat - (1 / (2 * r)) * previous[0]
            z = (s2 / s) * z - a2 * math.expm1(-h) * denoised
            previous = (x_hat, h)
    return predict(z, last)[0], labels
