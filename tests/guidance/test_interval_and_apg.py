"""Guidance interval and APG reduce to the methods their papers say they do."""
import math

import pytest
import torch

from bench.spec.sections import NetSpec
from bench.guidance import CountedNet, GuidanceContext, make_guidance
from bench.sampling.samplers import sample
from bench.models.unet import UNet

SHAPE, SEEDS, STEPS = (1, 8, 8), range(10), 8


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = UNet(NetSpec(channels=16), 1, 10).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def draw(net, method, **params):
    ctx = GuidanceContext(CountedNet(net), 10)
    x, _ = sample(make_guidance(method, ctx, **params), SHAPE, SEEDS, 10, steps=STEPS, dtype=torch.float64)
    return x, ctx.model.rows / len(SEEDS)


def test_empty_interval_is_the_conditional_model(net):
    x, nfe = draw(net, "interval", inner_params=(("w", 2.0),), lambda_low=1.0, lambda_high=0.0)
    ref, ref_nfe = draw(net, "cond")
    assert torch.equal(x, ref) and nfe == ref_nfe == STEPS


def test_full_interval_is_plain_cfg(net):
    x, nfe = draw(net, "interval", inner_params=(("w", 2.0),), lambda_low=-math.inf, lambda_high=math.inf)
    ref, ref_nfe = draw(net, "cfg", w=2.0)
    assert torch.equal(x, ref) and nfe == ref_nfe == 2 * STEPS


def test_partial_interval_counts_only_the_guided_steps(net):
    from bench.models.process import sampling_lambdas
    lams = sampling_lambdas(STEPS, torch.float64)[:-1]
    inside = int(((lams >= -3.0) & (lams <= 3.0)).sum())
    assert 0 < inside < STEPS
    _, nfe = draw(net, "interval", inner_params=(("w", 2.0),), lambda_low=-3.0, lambda_high=3.0)
    assert nfe == STEPS + inside


def test_interval_wraps_any_method(net):
    x, _ = draw(net, "interval", inner="apg", inner_params=(("w", 1.0), ("eta", 1.0)), lambda_low=-math.inf, lambda_high=math.inf)
    ref, _ = draw(net, "cfg", w=1.0)
    torch.testing.assert_close(x, ref, rtol=1e-6, atol=1e-6)


def test_apg_with_eta_one_no_rescale_no_momentum_is_cfg(net):
    for w in (0.5, 3.0):
        x, nfe = draw(net, "apg", w=w, eta=1.0)
        ref, _ = draw(net, "cfg", w=w)
        torch.testing.assert_close(x, ref, rtol=1e-6, atol=1e-6)
        assert nfe == 2 * STEPS


def test_apg_at_w0_is_the_conditional_model(net):
    x, nfe = draw(net, "apg", w=0.0)
    ref, _ = draw(net, "cond")
    assert torch.equal(x, ref) and nfe == STEPS


def test_apg_default_differs_from_cfg_and_momentum_resets_between_batches(net):
    x, _ = draw(net, "apg", w=3.0, eta=0.0)
    assert not torch.allclose(x, draw(net, "cfg", w=3.0)[0], atol=1e-3)
    ctx = GuidanceContext(CountedNet(net), 10)
    eps_fn = make_guidance("apg", ctx, w=3.0, momentum=-0.5, radius=5.0)
    first, _ = sample(eps_fn, SHAPE, SEEDS, 10, steps=STEPS, dtype=torch.float64)
    again, _ = sample(eps_fn, SHAPE, SEEDS, 10, steps=STEPS, dtype=torch.float64)
    assert torch.equal(first, again)  # a second trajectory does not inherit the first one's momentum
