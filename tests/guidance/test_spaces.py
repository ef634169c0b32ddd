"""Each guidance method combines predictions in the space its record declares (its paper's): its output there
equals the paper's formula written directly in that space, CFG is the same in every space, CFG-Zero*'s zero-init
is a zero velocity (x_t stays), and a method applied in another space is labelled as such."""
import math

import pytest
import torch

from bench.guidance import METHODS, CountedNet, GuidanceContext, describe, make_guidance
from bench.models.parameterisation import SPACES, flow_scale, from_eps
from bench.sampling.samplers import sample
from bench.spec.sections import GuidanceSpec

G = torch.Generator().manual_seed(0)
Z = torch.randn(3, 2, 4, 4, generator=G, dtype=torch.float64)
LAM = torch.tensor([-3.0, 0.5, 4.0], dtype=torch.float64)
EPS_C, EPS_U, EPS_G = (torch.randn(3, 2, 4, 4, generator=G, dtype=torch.float64) for _ in range(3))


def _context():
    def model(z, lam, labels):
        return torch.where((labels == 10).reshape(-1, 1, 1, 1), EPS_U, EPS_C)
    return GuidanceContext(CountedNet(model), 10, guide=CountedNet(lambda z, lam, labels: EPS_G))


def _in(space, eps):
    return from_eps(space, Z, LAM, eps)


def _guided(method, space="", **params):
    return make_guidance(method, _context(), space, **params)(Z, LAM, torch.zeros(3, dtype=torch.long))


def _dot(a, b):
    return (a * b).flatten(1).sum(1).reshape(-1, 1, 1, 1)


def test_cfg_is_the_same_in_every_space():
    """An affine combination whose weights sum to 1 commutes with every affine map of bench/models/parameterisation.py."""
    outs = [_guided("cfg", space, w=2.5) for space in SPACES]
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-9, atol=1e-9)


def test_each_method_is_its_papers_formula_in_its_own_space():
    w = 1.7
    u_c, u_u = _in("flow", EPS_C), _in("flow", EPS_U)
    s_star = _dot(u_c, u_u) / _dot(u_u, u_u)
    expected = s_star * u_u + (1 + w) * (u_c - s_star * u_u)  # CFG-Zero*, Fan et al. eq. 8, on velocities
    assert METHODS["cfg_zero_star"].space == "flow"
    torch.testing.assert_close(_in("flow", _guided("cfg_zero_star", w=w)), expected, rtol=1e-9, atol=1e-9)

    v_c, v_u = _in("v", EPS_C), _in("v", EPS_U)
    v_cfg = v_u + (1 + w) * (v_c - v_u)
    std = lambda x: x.flatten(1).std(1).reshape(-1, 1, 1, 1)  # noqa: E731
    expected = 0.7 * v_cfg * std(v_c) / std(v_cfg) + 0.3 * v_cfg  # rescaled CFG, Lin et al. eqs. 15-16, on v
    assert METHODS["rescaled_cfg"].space == "v"
    torch.testing.assert_close(_in("v", _guided("rescaled_cfg", w=w, phi=0.7)), expected, rtol=1e-9, atol=1e-9)

    d_c, d_u = _in("x0", EPS_C), _in("x0", EPS_U)
    delta = d_c - d_u
    parallel = _dot(delta, d_c) / _dot(d_c, d_c) * d_c
    expected = d_c + w * (delta - parallel)  # APG with eta = 0 on denoised predictions
    assert METHODS["apg"].space == "x0"
    torch.testing.assert_close(_in("x0", _guided("apg", w=w)), expected, rtol=1e-9, atol=1e-9)

    d_g = _in("x0", EPS_G)
    assert METHODS["autoguidance"].space == "x0"
    torch.testing.assert_close(_in("x0", _guided("autoguidance", w=w)), d_g + (1 + w) * (d_c - d_g), rtol=1e-9, atol=1e-9)


def test_a_method_in_another_space_differs_and_is_labelled():
    own, eps_space = _guided("cfg_zero_star", w=1.0), _guided("cfg_zero_star", "eps", w=1.0)
    assert not torch.allclose(own, eps_space)
    row = describe(GuidanceSpec("cfg_zero_star", (("w", 1.0),), space="eps"))
    assert row["off_paper_space"] and row["guidance_space"] == "eps"
    assert row["method_label"] == "CFG-Zero* [in eps space; paper: flow]"
    assert not describe(GuidanceSpec("cfg_zero_star", (("w", 1.0),)))["off_paper_space"]
    wrapped = describe(GuidanceSpec("interval", (("inner", "rescaled_cfg"), ("inner_params", (("w", 1.0),)))))
    assert wrapped["guidance_space"] == "v" and not wrapped["off_paper_space"]


def test_zero_init_is_a_zero_velocity_that_leaves_x_t_in_place():
    """The paper's zero-init step moves nothing on the interpolant; in eps space it throws x_hat to z / alpha."""
    lams = torch.tensor([-20.0, -2.0, 0.0, math.inf], dtype=torch.float64)
    seen = []

    def model(z, lam, labels):
        seen.append(z.clone())
        return torch.zeros_like(z)
    ctx = GuidanceContext(CountedNet(model), 10)
    eps_fn = make_guidance("cfg_zero_star", ctx, w=1.0, zero_init_steps=1)
    sample(eps_fn, (1, 4, 4), range(2), 10, sampler="euler", clip_x=False, dtype=torch.float64, lambdas=lams)
    from bench.sampling.samplers import SampleNoise
    z0 = SampleNoise(range(2), (1, 4, 4), 10).draw().to(torch.float64)
    x_t0, x_t1 = z0 * flow_scale(lams[:1], z0), seen[0] * flow_scale(lams[1:2], z0)  # the first evaluation is at lams[1]
    torch.testing.assert_close(x_t1, x_t0, rtol=1e-9, atol=1e-9)
    assert ctx.model.rows == 2 * 2 * 2  # the zero-init level evaluated nothing; the others cond and uncond


@pytest.mark.parametrize("space", ["", *SPACES])
def test_an_unguided_method_is_the_model_in_any_space(space):
    ctx = _context()
    assert make_guidance("cfg", ctx, space, w=0.0) is ctx.model
