"""What a network predicts, and the exact affine maps between predictions at a fixed (z, lambda).

The harness's state is z on the variance-preserving path z = alpha x0 + sigma eps, alpha^2 = sigmoid(lambda),
sigma^2 = sigmoid(-lambda) (bench/models/process.py). Every Gaussian path x_t = a_t x0 + s_t eps with the same
log-SNR lambda = log(a_t^2 / s_t^2) is this path rescaled: x_t = z (a_t^2 + s_t^2)^(1/2), with the same x0 and eps.
The linear interpolant of flow matching (SD3, REPA: x_t = (1 - t) x0 + t eps, t = 1 noise) has
    t = sigma / (alpha + sigma) = sigmoid(-lambda / 2),   x_t = z / (alpha + sigma).

At fixed (z, lambda) each prediction is an affine map of eps, pred = c_z z + c_eps eps:
    eps   eps                                    (0, 1)
    x0    x0 = (z - sigma eps) / alpha           (1 / alpha, -sigma / alpha)
    v     v = alpha eps - sigma x0               (-sigma / alpha, 1 / alpha)     (Salimans & Ho 2022)
    flow  u = eps - x0 = d x_t / dt              (-1 / alpha, (alpha + sigma) / alpha)
and eps = (pred - c_z z) / c_eps. The inverses are written in their textbook forms (eps = (z - alpha x0) / sigma,
eps = sigma z + alpha v, eps = x_t + (1 - t) u), so each is exact in float64 to rounding.
SiT's time runs the other way (t' = 1 - t is noise at 0), so its velocity dx/dt' is -u.
"""
from __future__ import annotations

import torch

from bench.models.process import alpha_sigma
from bench.spec.sections import PREDICTION_SPACES as SPACES
from bench.spec.sections import TIME_CONVENTIONS


def _levels(lam: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    alpha, sigma = alpha_sigma(lam.to(like.dtype))
    shape = (-1, *([1] * (like.dim() - 1))) if alpha.dim() else ()
    return alpha.reshape(shape), sigma.reshape(shape)


def check_space(space: str) -> str:
    if space not in SPACES:
        raise ValueError(f"prediction space {space!r} unknown; valid: {', '.join(SPACES)}")
    return space


def from_eps(space: str, z: torch.Tensor, lam: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The prediction in `space` equivalent to `eps` at (z, lambda)."""
    if check_space(space) == "eps":
        return eps
    alpha, sigma = _levels(lam, z)
    x0 = (z - sigma * eps) / alpha
    if space == "x0":
        return x0
    if space == "v":
        return alpha * eps - sigma * x0
    return eps - x0


def to_eps(space: str, z: torch.Tensor, lam: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """The eps equivalent to a prediction in `space` at (z, lambda)."""
    if check_space(space) == "eps":
        return pred
    alpha, sigma = _levels(lam, z)
    if space == "x0":
        return (z - alpha * pred) / sigma
    if space == "v":
        return sigma * z + alpha * pred
    return (z + alpha * pred) / (alpha + sigma)  # eps = x_t + (1 - t) u, x_t = z / (alpha + sigma)


def flow_time(lam: torch.Tensor) -> torch.Tensor:
    """t of the linear interpolant (t = 1 noise) at log-SNR lambda: sigmoid(-lambda / 2)."""
    return torch.sigmoid(-lam / 2)


def lambda_of_flow_time(t: torch.Tensor) -> torch.Tensor:
    """lambda = 2 log((1 - t) / t), the inverse of flow_time."""
    return 2 * (torch.log1p(-t) - torch.log(t))


def flow_scale(lam: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """1 / (alpha + sigma): x_t = z * flow_scale on the linear interpolant."""
    alpha, sigma = _levels(lam, like)
    return 1 / (alpha + sigma)


class PredictingNet(torch.nn.Module):
    """eps(z, lambda, labels) of a network net(x, lambda, labels) that predicts in `prediction` space
    (the harness's UNet trained with train.objective): eps and v networks see the VP state z, a flow
    network the linear interpolant's x_t = z / (alpha + sigma), as each was trained."""

    def __init__(self, net: torch.nn.Module, prediction: str):
        super().__init__()
        self.net, self.prediction = net, check_space(prediction)

    def forward(self, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        lam = lam.expand(z.shape[0])
        x = z * flow_scale(lam, z) if self.prediction == "flow" else z
        return to_eps(self.prediction, z, lam, self.net(x, lam, labels).to(z.dtype))


def as_eps_model(net: torch.nn.Module, prediction: str) -> torch.nn.Module:
    """The network itself for an eps-prediction, else wrapped in PredictingNet."""
    return net if prediction == "eps" else PredictingNet(net, prediction)


class FlowVelocityModel(torch.nn.Module):
    """eps(z, lambda, labels) of a user's flow-matching network net(x_t, t, labels) -> velocity on the linear
    interpolant (SiT, REPA, LightningDiT), in its time convention: noise_at_1 (x_t = (1-t) x0 + t eps, velocity
    eps - x0) or noise_at_0 (SiT: x_t = t x0 + (1-t) eps, velocity x0 - eps); t is passed times `time_scale`
    (1 for networks that take t in [0, 1]; diffusers' flow models take t * 1000)."""

    def __init__(self, net: torch.nn.Module, time_convention: str, time_scale: float = 1.0):
        super().__init__()
        if time_convention not in TIME_CONVENTIONS:
            raise ValueError(f"time convention {time_convention!r} unknown; valid: {', '.join(TIME_CONVENTIONS)}")
        self.net, self.time_convention, self.time_scale = net, time_convention, time_scale

    def forward(self, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        lam = lam.expand(z.shape[0])
        t = flow_time(lam.to(torch.float64))
        x_t = z * flow_scale(lam, z)
        if self.time_convention == "noise_at_1":
            u = self.net(x_t, (t * self.time_scale).to(z.dtype), labels)
        else:
            u = -self.net(x_t, ((1 - t) * self.time_scale).to(z.dtype), labels)
        return to_eps("flow", z, lam, u.to(z.dtype))
