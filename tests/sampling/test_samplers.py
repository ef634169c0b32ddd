"""The samplers against a closed form: for x ~ N(mu, s^2 I) the exact eps is known,
    z = alpha x + sigma eps ~ N(alpha mu, alpha^2 s^2 + sigma^2),
    E[eps | z] = sigma (z - alpha mu) / (alpha^2 s^2 + sigma^2),
so with that eps both samplers must reproduce the data mean and variance."""
import pytest
import torch

from bench.spec.sections import SAMPLERS

from bench.models.process import alpha_sigma
from bench.sampling.samplers import SampleNoise, sample

MU, S = 0.5, 0.3
SHAPE = (1, 2, 2)


def exact_eps(z, lam, labels):
    alpha, sigma = (t.reshape(-1, 1, 1, 1) for t in alpha_sigma(lam))
    return sigma * (z - alpha * MU) / (alpha ** 2 * S ** 2 + sigma ** 2)


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_sampler_reproduces_gaussian_marginals(sampler):
    n = 4000
    x, _ = sample(exact_eps, SHAPE, range(n), 10, sampler=sampler, steps=200, clip_x=False, dtype=torch.float64)
    values = x.flatten()
    # 16,000 values: standard error of the mean S/sqrt(16000) = 0.0024, of the variance
    # S^2 sqrt(2/16000) = 0.001; tolerances are 5 standard errors plus a small allowance
    # for the 200-step discretisation (measured well below it).
    assert values.mean().item() == pytest.approx(MU, abs=0.015)
    assert values.var().item() == pytest.approx(S ** 2, abs=0.008)


def test_sampler_rejects_unknown_name():
    with pytest.raises(ValueError, match="known samplers: ancestral, ddim, euler, heun, dpmpp_2m"):
        sample(exact_eps, SHAPE, range(2), 10, sampler="rk4")


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samples_do_not_depend_on_batch_size(sampler):
    def fake_net(z, lam, labels):  # depends on labels too, so label streams are checked
        return 0.5 * z + 0.01 * labels.reshape(-1, 1, 1, 1)

    seeds = range(100, 164)
    full, labels = sample(fake_net, SHAPE, seeds, 10, sampler=sampler, steps=8)
    parts = [sample(fake_net, SHAPE, seeds[i:i + 7], 10, sampler=sampler, steps=8) for i in range(0, 64, 7)]
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), full, rtol=0, atol=1e-6)
    assert torch.equal(torch.cat([p[1] for p in parts]), labels)


def test_different_seeds_give_different_samples():
    a, _ = sample(exact_eps, SHAPE, range(0, 8), 10, steps=4)
    b, _ = sample(exact_eps, SHAPE, range(8, 16), 10, steps=4)
    assert not torch.allclose(a, b)


def test_one_step_returns_x_hat_of_the_first_evaluation():
    calls = []

    def net(z, lam, labels):
        calls.append(lam[0].item())
        return torch.zeros_like(z)

    sample(net, SHAPE, range(3), 10, steps=1, clip_x=False)
    assert calls == [pytest.approx(-20.0, abs=1e-3)]


@pytest.mark.parametrize("shape, draws, chunked", [((1, 16, 16), 5, True), ((1, 8, 8), 32, True), ((3, 28, 28), 7, True),
                                                   ((1, 5, 5), 4, False), ((1, 2, 2), 3, False)])
def test_noise_drawn_ahead_in_chunks_equals_one_call_per_draw(shape, draws, chunked):
    """The streams must not depend on how many draws a generator makes per call; where torch's fill
    would make them depend on it (a draw of other than a multiple of 16 values), draws are one per call."""
    seeds = [3, 11, 12345]
    noise = SampleNoise(seeds, shape, 10, draws=draws)
    assert (noise.chunk > 1) == chunked
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    for g in generators:
        torch.randint(10, (), generator=g)  # the label comes first
    for _ in range(draws + 2):  # past the chunk: the refill continues each stream
        expected = torch.stack([torch.randn(shape, generator=g) for g in generators])
        assert torch.equal(noise.draw(), expected)
