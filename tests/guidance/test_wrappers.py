"""Wrappers keep the state of what they wrap. Every wrapper is run around every registered method (at
each of the record's examples, wrappers included) and its trajectory compared with the method's own:
exactly equal where the wrapper's parameters make it the identity (an interval covering every noise
level, a constant schedule), and equal to the schedule's documented definition where it changes the
strength (the inner method at s f(u) at every step, its per-trajectory state carried along). A wrapper
that would take an inner method outside its valid strengths is refused when it is built."""
import math

import pytest
import torch

from bench.guidance import METHODS, CountedNet, Example, GuidanceContext, GuidanceError, make_guidance
from bench.guidance.schedule import SCHEDULES
from bench.models.process import u_of_lambda
from bench.sampling.nfe import count_evaluations
from bench.sampling.samplers import sample
from bench.models.unet import UNet
from bench.spec.sections import GuidanceSpec, NetSpec

SHAPE, SEEDS, STEPS = (1, 8, 8), range(4), 6
WRAPPERS = sorted(m.name for m in METHODS.values() if m.wraps)
IDENTITY = {"interval": {"lambda_low": -math.inf, "lambda_high": math.inf}, "schedule": {"shape": "constant"}}


def examples() -> list[tuple[str, dict]]:
    """The first example of every registered method (a method without examples at its defaults)."""
    return [(m.name, dict((m.examples or (Example("defaults"),))[0].params)) for m in METHODS.values()]


def net(seed: int) -> UNet:
    torch.manual_seed(seed)
    model = UNet(NetSpec(channels=8), 1, 10).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


MODEL, GUIDE = net(0), net(1)


def context() -> GuidanceContext:
    """A fresh context: the same networks, empty per-trajectory state."""
    return GuidanceContext(CountedNet(MODEL), 10, CountedNet(lambda z, lam, y: torch.sin(z) * (y[:, None, None, None] + 1) / 10),
                           CountedNet(GUIDE))


def trajectory(eps_fn) -> torch.Tensor:
    with torch.no_grad():
        return sample(eps_fn, SHAPE, SEEDS, 10, steps=STEPS, dtype=torch.float64)[0]


def test_every_wrapper_is_checked_in_an_identity_configuration():
    assert set(IDENTITY) == set(WRAPPERS)


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("inner, params", examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_wrapper_that_changes_nothing_gives_the_inner_trajectory(wrapper, inner, params):
    if wrapper == "schedule" and METHODS[inner].strength is None:
        with pytest.raises(GuidanceError, match="has no strength to schedule"):
            make_guidance(wrapper, context(), inner=inner, inner_params=tuple(params.items()), **IDENTITY[wrapper])
        return
    alone = trajectory(make_guidance(inner, context(), **params))
    wrapped = make_guidance(wrapper, context(), inner=inner, inner_params=tuple(params.items()), **IDENTITY[wrapper])
    assert torch.equal(trajectory(wrapped), alone)


def scheduled_by_definition(ctx: GuidanceContext, shape: str, inner: str, params: dict):
    """The schedule's definition, written out: at each step the inner method built afresh at
    s f(u(lambda)) on the same context (so its per-trajectory state carries over)."""
    strength = METHODS[inner].strength
    base = {**METHODS[inner].defaults(), **params}

    def eps_fn(z, lam, labels):
        value = base[strength] * SCHEDULES[shape](float(u_of_lambda(lam[:1].double())))
        return make_guidance(inner, ctx, **{**base, strength: value})(z, lam, labels)
    return eps_fn


STRENGTHENED = [(name, params) for name, params in examples() if METHODS[name].strength is not None]


@pytest.mark.parametrize("shape", ["linear", "cosine"])
@pytest.mark.parametrize("inner, params", STRENGTHENED, ids=lambda v: v if isinstance(v, str) else "")
def test_a_schedule_is_its_inner_method_at_the_scheduled_strength(shape, inner, params):
    wrapped = trajectory(make_guidance("schedule", context(), shape=shape, inner=inner,
                                       inner_params=tuple(params.items())))
    assert torch.equal(wrapped, trajectory(scheduled_by_definition(context(), shape, inner, params)))


@pytest.mark.parametrize("shape", ["linear", "cosine"])
def test_cfg_zero_star_keeps_its_zero_init_steps_inside_a_schedule(shape):
    """Zero-init skips the network on a trajectory's first steps; rebuilding the method at each new
    strength must not start those steps again (which would zero every step)."""
    inner = (("w", 1.0), ("zero_init_steps", 2))
    alone = count_evaluations(GuidanceSpec("cfg_zero_star", inner), steps=STEPS, sampler="ancestral")
    wrapped = count_evaluations(GuidanceSpec("schedule", (("shape", shape), ("inner", "cfg_zero_star"),
                                                          ("inner_params", inner))), steps=STEPS, sampler="ancestral")
    assert wrapped["nfe"] == alone["nfe"] == 2 * (STEPS - 2)


def test_apg_momentum_carries_through_a_schedule():
    """With momentum, the scheduled APG differs from the one whose momentum starts afresh at each step."""
    params = {"w": 1.0, "momentum": -0.5}
    kept = trajectory(make_guidance("schedule", context(), shape="linear", inner="apg", inner_params=tuple(params.items())))

    def forgetful(z, lam, labels):
        ctx = context()  # a new, empty state at every step
        return scheduled_by_definition(ctx, "linear", "apg", params)(z, lam, labels)
    assert not torch.equal(kept, trajectory(forgetful))


def test_a_schedule_that_takes_its_inner_method_out_of_range_is_refused_when_built():
    ctx = context()
    with pytest.raises(GuidanceError, match=r"schedule 'linear' takes cfgpp's guidance_lambda from 0.6 to 1.2"):
        make_guidance("schedule", ctx, shape="linear", inner="cfgpp", inner_params=(("guidance_lambda", 0.6),))
    make_guidance("schedule", ctx, shape="linear", inner="cfgpp", inner_params=(("guidance_lambda", 0.5),))
    make_guidance("schedule", ctx, shape="constant", inner="cfgpp", inner_params=(("guidance_lambda", 0.9),))
