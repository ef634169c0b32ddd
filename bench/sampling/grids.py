"""Time grids: the noise levels a solver evaluates, as log-SNR lambda (bench/models/process.py), noisy to clean.

A grid of `steps` is steps + 1 values: lambda_0 < ... < lambda_{T-1}, the levels the network is evaluated at,
and lambda_T, the clean end (every solver's last step outputs the data prediction there, i.e. steps to
sigma = 0 / t = 0). Each record names the sample.* fields that shape it; the others must keep their defaults.
    cosine      the paper's grid: u uniform in [0, 1] through lambda(u) = -2 log tan(a u + b), lambda in [-20, 20]
                (a model asked outside its trained range is asked at its nearest level, as before grids existed)
    lambda      lambda uniform from sample.lambda_min to sample.lambda_max (DPM-Solver's logSNR grid)
    edm         Karras et al. 2022, eq. 5: sigma_i = (s_max^(1/rho) + i/(T-1) (s_min^(1/rho) - s_max^(1/rho)))^rho,
                sigma = e^(-lambda/2) (the VE sigma), s = sample.sigma_min/sigma_max, rho = sample.rho; then sigma = 0
    flow        t uniform on the linear interpolant (t = 1 noise): t_i = 1 - i/T, then t = 0; t_0 = 1 is evaluated
                at t_max = t(sample.lambda_min) (t = 1 itself carries no velocity in eps form; t(-20) = 1 - 4.5e-5)
    flow_shift  the flow grid's t through SD3's shift (Esser et al. 2024, eq. 23): t' = s t / (1 + (s - 1) t),
                s = sample.shift (s > 1 spends more steps at high noise), t_0 evaluated at t_max likewise
with t(lambda) = sigmoid(-lambda / 2) (bench/models/parameterisation.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from bench.models.parameterisation import flow_time, lambda_of_flow_time
from bench.models.process import sampling_lambdas
from bench.spec.sections import GRIDS as GRID_FIELDS


@dataclass(frozen=True)
class Grid:
    name: str
    levels: Callable[..., torch.Tensor]  # (steps, sample spec) -> steps + 1 lambdas in float64
    bounded: bool = True  # its ends are checked against the model's noise range (cosine keeps today's clamping)

    @property
    def fields(self) -> tuple[str, ...]:
        """The sample.* fields this grid reads."""
        return GRID_FIELDS[self.name]


def _lambda_uniform(steps: int, s) -> torch.Tensor:
    lams = torch.linspace(s.lambda_min, s.lambda_max, steps, dtype=torch.float64)
    return torch.cat([lams, lams.new_full((1,), math.inf)])


def _edm(steps: int, s) -> torch.Tensor:
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    inv = 1 / s.rho
    sigmas = (s.sigma_max ** inv + ramp * (s.sigma_min ** inv - s.sigma_max ** inv)) ** s.rho
    return torch.cat([-2 * sigmas.log(), sigmas.new_full((1,), math.inf)])


def _flow_levels(t: torch.Tensor, s) -> torch.Tensor:
    """Flow times (t_0 = 1 first) as lambdas, t_0 at t_max, then the clean end."""
    t_max = flow_time(torch.tensor(s.lambda_min, dtype=torch.float64))
    return torch.cat([lambda_of_flow_time(t.clamp(max=t_max)), t.new_full((1,), math.inf)])


def _flow(steps: int, s) -> torch.Tensor:
    return _flow_levels(1 - torch.arange(steps, dtype=torch.float64) / steps, s)


def _flow_shift(steps: int, s) -> torch.Tensor:
    t = 1 - torch.arange(steps, dtype=torch.float64) / steps
    return _flow_levels(s.shift * t / (1 + (s.shift - 1) * t), s)


GRIDS = {g.name: g for g in (
    Grid("cosine", lambda steps, s: sampling_lambdas(steps, torch.float64), bounded=False),
    Grid("lambda", _lambda_uniform),
    Grid("edm", _edm),
    Grid("flow", _flow),
    Grid("flow_shift", _flow_shift),
)}
assert set(GRIDS) == set(GRID_FIELDS), "every grid of the spec has a record here"


def grid_lambdas(sample_spec) -> torch.Tensor:
    """The steps + 1 lambdas (float64) of a sample spec's grid."""
    return GRIDS[sample_spec.grid].levels(sample_spec.steps, sample_spec)


def evaluated_range(sample_spec) -> tuple[float, float]:
    """The lowest and highest lambda the network is evaluated at on this grid."""
    lams = grid_lambdas(sample_spec)[:-1]
    return float(lams.min()), float(lams.max())

