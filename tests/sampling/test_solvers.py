"""Every ODE solver against the closed form of Gaussian data (the exact eps at every level, the exact ODE endpoint):
its convergence order from the slope of error against steps; Euler = DDIM step for step; NFE counted; every
grid's shape; the harness's DPM-Solver++(2M) and flow Euler against diffusers' schedulers on one network.
The ancestral sampler's distribution is checked in test_samplers.py."""
import copy
import math

import numpy as np
import pytest
import torch

from bench.guidance import METHODS, make_guidance
from bench.models.process import alpha_sigma
from bench.sampling.grids import GRIDS, grid_lambdas
from bench.sampling.nfe import count_evaluations
from bench.sampling.samplers import SampleNoise, sample
from bench.spec.errors import SpecError
from bench.spec.sections import SAMPLERS, GuidanceSpec, SampleSpec

MU, S = 0.3, 0.5  # data x0 ~ N(MU, S^2) in every pixel
SHAPE = (1, 4, 4)


def exact_eps(z, lam, labels):
    """E[eps | z] for Gaussian data: x_hat = MU + alpha S^2 (z - alpha MU) / (alpha^2 S^2 + sigma^2)."""
    alpha, sigma = (t.reshape(-1, 1, 1, 1).to(z.dtype) for t in alpha_sigma(lam.to(torch.float64)))
    x_hat = MU + alpha * S ** 2 * (z - alpha * MU) / (alpha ** 2 * S ** 2 + sigma ** 2)
    return (z - alpha * x_hat) / sigma


def exact_endpoint(z0, lam0: float, lam_end: float):
    """The probability-flow ODE's exact transport of z0 from lam0 to lam_end (an affine map for Gaussians), then
    x_hat there: what a solver's output converges to as its steps grow."""
    (a0, s0), (a1, s1) = (alpha_sigma(torch.tensor(v, dtype=torch.float64)) for v in (lam0, lam_end))
    std0, std1 = (a0 ** 2 * S ** 2 + s0 ** 2).sqrt(), (a1 ** 2 * S ** 2 + s1 ** 2).sqrt()
    z1 = a1 * MU + std1 / std0 * (z0 - a0 * MU)
    return MU + a1 * S ** 2 * (z1 - a1 * MU) / std1 ** 2


def _run(sampler, steps, grid="lambda", **grid_fields):
    spec = SampleSpec(sampler=sampler, steps=steps, grid=grid, **grid_fields)
    lams = grid_lambdas(spec)
    x, _ = sample(exact_eps, SHAPE, range(4), 10, sampler=sampler, clip_x=False, dtype=torch.float64, lambdas=lams)
    z0 = SampleNoise(range(4), SHAPE, 10).draw().to(torch.float64)
    return x, exact_endpoint(z0, float(lams[0]), float(lams[-2]))


@pytest.mark.parametrize("sampler, order", [("ddim", 1), ("euler", 1), ("heun", 2), ("dpmpp_2m", 2)])
def test_each_ode_solver_converges_to_the_exact_endpoint_at_its_order(sampler, order):
    """Error against steps on the lambda grid [-8, 8] (whose last evaluated level is fixed, so the exact
    endpoint is too): the log-log slope is the solver's order, once the steps are in its asymptotic range."""
    steps = [16, 32, 64]
    errors = []
    for n in steps:
        x, exact = _run(sampler, n, lambda_min=-8.0, lambda_max=8.0)
        errors.append(float((x - exact).abs().max()))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.25, (errors, slope)


@pytest.mark.parametrize("sampler", ["ddim", "euler", "heun", "dpmpp_2m"])
@pytest.mark.parametrize("grid", ["cosine", "flow", "edm"])
def test_every_ode_solver_reaches_the_exact_endpoint_from_lambda_minus_20(sampler, grid):
    """The grids the suites use start at lambda = -20 (sigma = 2.2e4): no solver may amplify the first step there."""
    x, exact = _run(sampler, 32, grid=grid)
    assert float((x - exact).abs().max()) < 0.15  # first order at 32 steps; a blown-up step is far above


@pytest.mark.parametrize("grid", GRIDS)
def test_euler_on_the_flow_is_ddim_step_for_step(grid):
    """x_t' = x_t + (t' - t)(eps_hat - x_hat) is DDIM's alpha' x_hat + sigma' eps_hat, rescaled: the same point."""
    def field(z, lam, labels):
        return torch.tanh(z) * torch.sigmoid(lam).reshape(-1, 1, 1, 1) + 0.1 * z
    spec = SampleSpec(steps=12, grid=grid)
    runs = [sample(field, SHAPE, range(3), 10, sampler=s, clip_x=False, dtype=torch.float64,
                   lambdas=grid_lambdas(spec))[0] for s in ("euler", "ddim")]
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_solver_counts_its_evaluations(sampler):
    """Heun evaluates twice a step but once at the last (EDM's 2T - 1); the others once a step; CFG doubles it."""
    per_step = {"heun": lambda t: 2 * t - 1}.get(sampler, lambda t: t)
    for steps in (1, 5):
        assert count_evaluations(GuidanceSpec("cfg", (("w", 0.0),)), steps=steps, sampler=sampler)["nfe"] == per_step(steps)
        assert count_evaluations(GuidanceSpec("cfg", (("w", 1.0),)), steps=steps, sampler=sampler)["nfe"] == 2 * per_step(steps)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("method", sorted(METHODS.names()))
def test_every_guidance_method_runs_under_every_solver(sampler, method):
    """Each registered method's first example, on a stub with every need met, gives finite samples."""
    from bench.guidance import stub_context
    example = METHODS[method].examples[0] if METHODS[method].examples else None
    params = dict(example.params) if example else {}
    ctx = stub_context()
    ctx.model.net = lambda z, lam, labels: 0.5 * z + 0.01 * labels.reshape(-1, 1, 1, 1)
    ctx.guide.net = lambda z, lam, labels: 0.4 * z
    ctx.classifier.net = lambda z, lam, labels: -z
    x, _ = sample(make_guidance(method, ctx, **params), SHAPE, range(2), 10, sampler=sampler, steps=4,
                  lambdas=grid_lambdas(SampleSpec(steps=4, grid="edm")))
    assert torch.isfinite(x).all()


def test_every_grid_runs_noisy_to_clean_within_its_ends():
    s = SampleSpec(steps=10)
    cosine = grid_lambdas(s)
    torch.testing.assert_close(cosine[[0, -1]], torch.tensor([-20.0, 20.0], dtype=torch.float64))
    edm = grid_lambdas(SampleSpec(steps=10, grid="edm"))
    sigmas = torch.exp(-edm[:-1] / 2)
    torch.testing.assert_close(sigmas[[0, -1]], torch.tensor([80.0, 0.002], dtype=torch.float64))
    ramp = (sigmas ** (1 / 7)).diff()  # rho = 7: sigma^(1/rho) is uniform (Karras et al. eq. 5)
    torch.testing.assert_close(ramp, ramp[:1].expand_as(ramp))
    flow_t = torch.sigmoid(-grid_lambdas(SampleSpec(steps=10, grid="flow"))[:-1] / 2)
    torch.testing.assert_close(flow_t[1:], 1 - torch.arange(1, 10, dtype=torch.float64) / 10)
    assert flow_t[0] == torch.sigmoid(torch.tensor(10.0, dtype=torch.float64))  # t = 1 evaluated at lambda_min
    shifted = torch.sigmoid(-grid_lambdas(SampleSpec(steps=10, grid="flow_shift", shift=3.0))[:-1] / 2)
    t = flow_t[1:]
    torch.testing.assert_close(shifted[1:], 3 * t / (1 + 2 * t))
    for grid in GRIDS:
        lams = grid_lambdas(SampleSpec(steps=7, grid=grid))
        assert len(lams) == 8 and bool((lams.diff() > 0).all())


def test_a_grid_field_of_another_grid_is_refused():
    with pytest.raises(SpecError, match=r"sample.rho=5.0 shapes the edm grid, not sample.grid='flow'"):
        SampleSpec(grid="flow", rho=5.0)
    with pytest.raises(SpecError, match="sample.shift=2.0 shapes the flow_shift grid"):
        SampleSpec(grid="edm", shift=2.0)
    with pytest.raises(ValueError, match="increasing log-SNR levels"):
        sample(exact_eps, SHAPE, range(1), 10, lambdas=torch.tensor([0.0, -1.0, math.inf]))


class TinyNet(torch.nn.Module):
    """A small network net(x, t) with a time input, the same for both libraries."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x, t, labels=None):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1).expand(x.shape[0])
        return torch.tanh(self.conv(x)) * torch.cos(t / 700)[:, None, None, None] + 0.2 * x


def test_dpmpp_2m_equals_diffusers_dpm_solver_multistep_on_one_network():
    from diffusers import DPMSolverMultistepScheduler

    from bench.sources.noise import SCHEDULES, DiscreteEpsModel, DiscreteTimesteps
    steps, net = 10, TinyNet().eval()
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                            algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint",
                                            lower_order_final=True, final_sigmas_type="zero")
    torch.testing.assert_close(scheduler.alphas_cumprod.double(), SCHEDULES["cosine"](1000), rtol=1e-6, atol=1e-7)
    scheduler.set_timesteps(steps)
    timesteps = DiscreteTimesteps(scheduler.alphas_cumprod.double())
    lams = torch.cat([timesteps.lambdas[scheduler.timesteps.long()], torch.tensor([math.inf], dtype=torch.float64)])
    eps_model = DiscreteEpsModel(net, timesteps, 1)
    with torch.no_grad():
        ours, labels = sample(eps_model, (1, 8, 8), range(3), 10, sampler="dpmpp_2m", clip_x=False, lambdas=lams)
        x = SampleNoise(range(3), (1, 8, 8), 10).draw().clone()
        for t in scheduler.timesteps:
            x = scheduler.step(net(x, t), t, x).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)


def test_flow_euler_equals_diffusers_flow_match_euler_on_one_network():
    from diffusers import FlowMatchEulerDiscreteScheduler

    from bench.models.parameterisation import FlowVelocityModel, flow_scale
    steps, net = 12, TinyNet().eval()
    lams = grid_lambdas(SampleSpec(steps=steps, grid="flow"))
    t = torch.sigmoid(-lams[:-1] / 2)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    scheduler.set_timesteps(sigmas=t.tolist())
    model = FlowVelocityModel(copy.deepcopy(net).double(), "noise_at_1", time_scale=1000.0)  # ours in float64
    with torch.no_grad():
        ours, _ = sample(model, (1, 8, 8), range(3), 10, sampler="euler", clip_x=False, lambdas=lams,
                         dtype=torch.float64)
        z0 = SampleNoise(range(3), (1, 8, 8), 10).draw().to(torch.float64)
        x = (z0 * flow_scale(lams[:1], z0)).float()  # the same start, as the interpolant's x_t
        for timestep in scheduler.timesteps:
            x = scheduler.step(net(x, timestep), timestep, x).prev_sample
    torch.testing.assert_close(ours.float(), x, rtol=1e-4, atol=1e-4)
