"""The continuous-time VP diffusion process of Ho & Salimans (CFG paper, section 2).

All quantities are indexed by the log signal-to-noise ratio lambda:
    z_lambda = alpha_lambda * x + sigma_lambda * eps,
    alpha^2 = sigmoid(lambda),  sigma^2 = sigmoid(-lambda).
Noise levels follow the paper's cosine log-SNR schedule
    lambda(u) = -2 log tan(a u + b),  b = arctan(e^{-lambda_max/2}),
    a = arctan(e^{-lambda_min/2}) - b,
so u = 0 is the clean end (lambda_max) and u = 1 the noisy end (lambda_min).
"""
from __future__ import annotations

import math

import torch

LAMBDA_MIN = -20.0
LAMBDA_MAX = 20.0


def lambda_of_u(u: torch.Tensor, lambda_min: float = LAMBDA_MIN, lambda_max: float = LAMBDA_MAX) -> torch.Tensor:
    """lambda(u) = -2 log tan(a u + b) (paper, section 2)."""
    b = math.atan(math.exp(-lambda_max / 2))
    a = math.atan(math.exp(-lambda_min / 2)) - b
    return -2.0 * torch.log(torch.tan(a * u + b))


def u_of_lambda(lam: torch.Tensor, lambda_min: float = LAMBDA_MIN, lambda_max: float = LAMBDA_MAX) -> torch.Tensor:
    """The inverse of lambda_of_u: u = (arctan(e^(-lambda/2)) - b) / a, 0 clean, 1 noisy."""
    b = math.atan(math.exp(-lambda_max / 2))
    a = math.atan(math.exp(-lambda_min / 2)) - b
    return (torch.atan(torch.exp(-lam / 2)) - b) / a


def alpha_sigma(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha_lambda = sqrt(sigmoid(lambda)), sigma_lambda = sqrt(sigmoid(-lambda))."""
    return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample (B,) tensor so it broadcasts against an image batch."""
    return t.reshape(-1, *([1] * (like.dim() - 1))) if t.dim() else t


def add_noise(x: torch.Tensor, lam: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Forward process z_lambda = alpha x + sigma eps."""
    alpha, sigma = alpha_sigma(lam)
    return _per_sample(alpha, x) * x + _per_sample(sigma, x) * eps


def x_from_eps(z: torch.Tensor, lam: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_hat = (z - sigma eps) / alpha, the data prediction implied by an eps prediction."""
    alpha, sigma = alpha_sigma(lam)
    return (z - _per_sample(sigma, z) * eps) / _per_sample(alpha, z)


def drop_labels(labels: torch.Tensor, p_uncond: float, null_index: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Joint training (paper, Algorithm 1): replace each label by the null token with probability p_uncond."""
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p_uncond
    return torch.where(drop, torch.full_like(labels, null_index), labels)


def training_lambdas(batch: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                     objective: str = "eps") -> torch.Tensor:
    """Training noise levels. eps and v: u ~ U[0,1], lambda = lambda(u). flow: t ~ logit-normal(0, 1) on the
    linear interpolant (SD3, Esser et al. 2024, eq. 19), i.e. t = sigmoid(n), n ~ N(0, 1); since
    lambda = 2 log((1 - t) / t) = -2 n, that is lambda ~ N(0, 4), clamped to [LAMBDA_MIN, LAMBDA_MAX]."""
    if objective == "flow":
        return (-2.0 * torch.randn(batch, generator=generator, device=device)).clamp(LAMBDA_MIN, LAMBDA_MAX)
    return lambda_of_u(torch.rand(batch, generator=generator, device=device))


def sampling_lambdas(steps: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The sampling grid: lambda at uniformly spaced u from 1 (noisy) to 0 (clean), steps+1 points."""
    u = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return lambda_of_u(u).to(dtype)
