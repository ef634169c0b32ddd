import pytest
import torch

from bench.spec.sections import NetSpec
from bench.guidance import (METHODS, CountedNet, GuidanceContext, GuidanceError, make_guidance,
                            register_guidance)
from bench.sampling.samplers import sample
from bench.models.unet import UNet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = UNet(NetSpec(channels=16, channel_mult=(1, 2), attention_levels=(1,)), 1, 10).eval()
    # zero-initialised output layers would make every eps identical: perturb them
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def inputs(batch=6):
    g = torch.Generator().manual_seed(3)
    return torch.randn(batch, 1, 8, 8, generator=g), torch.linspace(-5, 5, batch), torch.arange(batch) % 10


def ctx_for(net):
    return GuidanceContext(CountedNet(net), num_classes=10)


@torch.no_grad()
def test_cfg_at_w0_is_the_conditional_model(net):
    z, lam, y = inputs()
    torch.testing.assert_close(make_guidance("cfg", ctx_for(net), w=0.0)(z, lam, y), net(z, lam, y))


@torch.no_grad()
@pytest.mark.parametrize("w", [0.1, 1.0, 4.0])
def test_cfg_batched_equals_two_separate_passes_and_the_formula(net, w):
    z, lam, y = inputs()
    batched = make_guidance("cfg", ctx_for(net), w=w, two_pass=False)(z, lam, y)
    two_pass = make_guidance("cfg", ctx_for(net), w=w, two_pass=True)(z, lam, y)
    default = make_guidance("cfg", ctx_for(net), w=w)(z, lam, y)  # two passes on CPU
    # each image is computed on its own: the two differ only by the rounding of kernels chosen per batch size
    torch.testing.assert_close(batched, two_pass, rtol=1e-4, atol=1e-5)
    assert torch.equal(default, two_pass)
    cond, uncond = net(z, lam, y), net(z, lam, torch.full_like(y, 10))
    expected = (1 + w) * cond - w * uncond
    torch.testing.assert_close(batched, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(two_pass, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(cond, uncond)


@pytest.mark.parametrize("w,nfe_per_step", [(0.0, 1), (0.5, 2)])
def test_cfg_nfe_counts(net, w, nfe_per_step):
    ctx = ctx_for(net)
    sample(make_guidance("cfg", ctx, w=w), (1, 8, 8), range(5), 10, steps=4)
    assert ctx.model.rows == 5 * 4 * nfe_per_step


@torch.no_grad()
def test_uncond_ignores_the_label(net):
    z, lam, y = inputs()
    eps = make_guidance("uncond", ctx_for(net))
    torch.testing.assert_close(eps(z, lam, y), eps(z, lam, (y + 1) % 10))
    torch.testing.assert_close(eps(z, lam, y), net(z, lam, torch.full_like(y, 10)))


def test_registry_errors_list_known_names(net):
    with pytest.raises(GuidanceError, match="known methods: .*cfg.*cond.*uncond"):
        make_guidance("cfgg", ctx_for(net))
    with pytest.raises(GuidanceError, match=r"valid: \['w', 'two_pass'\]"):
        make_guidance("cfg", ctx_for(net), scale=2.0)
    with pytest.raises(ValueError, match="already registered"):
        register_guidance("cfg", label="CFG again")(lambda ctx: None)
    assert {"cfg", "cond", "uncond"} <= set(METHODS.names())
