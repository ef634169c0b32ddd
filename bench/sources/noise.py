"""Noise levels of other models in the suite's terms: every source becomes eps_fn(z, lambda, labels).

The suite indexes noise by the log-SNR lambda of the variance-preserving process z = alpha x + sigma eps,
alpha^2 = sigmoid(lambda) (bench/models/process.py).

Discrete-time models (DDPM, ADM, DiT) are VP with alpha_bar_t = alpha_t^2, so
    lambda_t = log(alpha_bar_t / (1 - alpha_bar_t)),
and a lambda maps back to a (fractional) timestep by linear interpolation in log sigma = -lambda / 2
between the model's grid points (as k-diffusion does), clamped to the model's range [0, T - 1]: outside
it the model is asked at its nearest trained level.

EDM-style denoisers D(x; sigma) of variance-exploding data x + sigma n see the same image at
sigma = exp(-lambda / 2) and x = z / alpha = z sqrt(1 + sigma^2); their eps is (x - D(x; sigma)) / sigma.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from bench.models.parameterisation import to_eps
from bench.sources.base import SourceError
from bench.sources.classifier import GuidanceClassifier


def cosine_alphas_cumprod(steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Improved DDPM's cosine schedule: alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) pi / 2), through
    betas clipped at max_beta (float64)."""
    f = [math.cos((i / steps + s) / (1 + s) * math.pi / 2) ** 2 for i in range(steps + 1)]
    betas = torch.tensor([min(1 - f[i + 1] / f[i], max_beta) for i in range(steps)], dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


def linear_alphas_cumprod(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM's linear beta schedule, scaled to `steps` as ADM does (float64)."""
    scale = 1000 / steps
    betas = torch.linspace(scale * beta_start, scale * beta_end, steps, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


SCHEDULES: dict[str, Callable[[int], torch.Tensor]] = {"cosine": cosine_alphas_cumprod, "linear": linear_alphas_cumprod}


class DiscreteTimesteps:
    """lambda <-> t for a model trained on alpha_bar_0..alpha_bar_{T-1}."""

    def __init__(self, alphas_cumprod: torch.Tensor):
        ab = alphas_cumprod.to(torch.float64)
        self.lambdas = torch.log(ab) - torch.log1p(-ab)  # decreasing in t
        self.log_sigmas = -self.lambdas / 2  # increasing in t

    def t_of_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        """The fractional timestep whose log sigma is -lambda / 2, clamped to [0, T - 1]."""
        log_sigma = (-lam.to(torch.float64).cpu() / 2).clamp(self.log_sigmas[0], self.log_sigmas[-1])
        high = torch.searchsorted(self.log_sigmas, log_sigma).clamp(1, len(self.log_sigmas) - 1)
        low = high - 1
        frac = (log_sigma - self.log_sigmas[low]) / (self.log_sigmas[high] - self.log_sigmas[low])
        return (low + frac).to(device=lam.device, dtype=torch.float32)


    def lambda_range(self) -> tuple[float, float]:
        """The lowest and highest lambda the model was trained at (t = T - 1 and t = 0)."""
        return float(self.lambdas[-1]), float(self.lambdas[0])


def schedule_range(schedule: str, timesteps: int) -> tuple[float, float]:
    """The lambda range of a discrete schedule of `timesteps` steps."""
    return DiscreteTimesteps(SCHEDULES[schedule](timesteps)).lambda_range()


def sigma_range(sigma_min: float, sigma_max: float) -> tuple[float, float]:
    """The lambda range of an EDM denoiser trained on sigma in [sigma_min, sigma_max]: lambda = -2 log sigma."""
    return -2 * math.log(sigma_max), -2 * math.log(sigma_min)


class DiscreteEpsModel(torch.nn.Module):
    """eps_fn(z, lambda, labels) of a network net(x_t, t, labels) on a discrete schedule that predicts eps, or v
    (prediction="v": eps = sigma z + alpha v, bench/models/parameterisation.py). A network that also predicts
    its variance (2C output channels, ADM's learned sigma) gives its first C channels."""

    def __init__(self, net: torch.nn.Module, timesteps: DiscreteTimesteps, channels: int, prediction: str = "eps"):
        super().__init__()
        self.net, self.timesteps, self.channels, self.prediction = net, timesteps, channels, prediction

    def forward(self, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        t = self.timesteps.t_of_lambda(lam.expand(z.shape[0]))
        out = self.net(z, t, labels)[:, :self.channels]
        return out if self.prediction == "eps" else to_eps(self.prediction, z, lam.expand(z.shape[0]), out)


class EDMEpsModel(torch.nn.Module):
    """eps_fn(z, lambda, labels) of an EDM-style denoiser(x, sigma, labels) -> D(x; sigma) of
    variance-exploding data, with sigma clamped to the denoiser's [sigma_min, sigma_max]."""

    def __init__(self, denoiser: torch.nn.Module, sigma_min: float, sigma_max: float):
        super().__init__()
        if not 0 < sigma_min < sigma_max:
            raise SourceError(f"an EDM denoiser needs its noise range: model.sigma_min={sigma_min:g}, "
                              f"model.sigma_max={sigma_max:g}; set 0 < sigma_min < sigma_max (EDM: 0.002 and 80)")
        self.denoiser, self.sigma_min, self.sigma_max = denoiser, sigma_min, sigma_max

    def forward(self, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sigma = torch.exp(-lam.expand(z.shape[0]) / 2)
        x = z * torch.sqrt(1 + sigma ** 2).view(-1, *([1] * (z.dim() - 1)))
        asked = sigma.clamp(self.sigma_min, self.sigma_max)
        denoised = self.denoiser(x, asked, labels)
        return (x - denoised) / sigma.view(-1, *([1] * (z.dim() - 1)))


class DiscreteClassifier(GuidanceClassifier):
    """A noisy classifier net(x_t, t) -> logits on a discrete schedule (ADM's), as the suite calls
    classifiers: logits = self(z, lambda), with t mapped from lambda as for the eps-model."""

    def __init__(self, net: torch.nn.Module, timesteps: DiscreteTimesteps):
        super().__init__()
        self.net, self.timesteps = net, timesteps

    def forward(self, z: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return self.net(z, self.timesteps.t_of_lambda(lam.expand(z.shape[0])))
