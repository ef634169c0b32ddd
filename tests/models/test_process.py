import math

import pytest
import torch

from bench.models.process import (LAMBDA_MAX, LAMBDA_MIN, add_noise, alpha_sigma, drop_labels, lambda_of_u,
                                  sampling_lambdas, x_from_eps)


def test_schedule_endpoints_and_monotone():
    u = torch.linspace(0, 1, 1001, dtype=torch.float64)
    lam = lambda_of_u(u)
    assert lam[0].item() == pytest.approx(LAMBDA_MAX, abs=1e-9)
    assert lam[-1].item() == pytest.approx(LAMBDA_MIN, abs=1e-9)
    assert torch.all(lam[1:] < lam[:-1])


def test_schedule_matches_formula_at_a_midpoint():
    b = math.atan(math.exp(-LAMBDA_MAX / 2))
    a = math.atan(math.exp(-LAMBDA_MIN / 2)) - b
    assert lambda_of_u(torch.tensor(0.37, dtype=torch.float64)).item() == pytest.approx(-2 * math.log(math.tan(a * 0.37 + b)))


def test_alpha_sigma_variance_preserving():
    lam = torch.linspace(-20, 20, 401, dtype=torch.float64)
    alpha, sigma = alpha_sigma(lam)
    torch.testing.assert_close(alpha ** 2 + sigma ** 2, torch.ones_like(lam))
    assert torch.allclose(alpha ** 2 / sigma ** 2, lam.exp())


def test_x_from_eps_inverts_noising():
    x, eps = torch.randn(8, 1, 4, 4, dtype=torch.float64), torch.randn(8, 1, 4, 4, dtype=torch.float64)
    lam = torch.linspace(-5, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(x_from_eps(add_noise(x, lam, eps), lam, eps), x)


def test_sampling_grid_runs_from_noisy_to_clean():
    lam = sampling_lambdas(16)
    assert len(lam) == 17 and lam[0].item() == pytest.approx(LAMBDA_MIN, abs=1e-4) and lam[-1].item() == pytest.approx(LAMBDA_MAX, abs=1e-4)


@pytest.mark.parametrize("p_uncond", [0.0, 0.1, 0.2, 0.5, 1.0])
def test_label_dropout_fraction(p_uncond):
    g = torch.Generator().manual_seed(1)
    n, null = 0, 0
    for _ in range(50):
        labels = torch.randint(10, (1000,), generator=g)
        dropped = drop_labels(labels, p_uncond, 10, g)
        assert torch.equal(dropped[dropped != 10], labels[dropped != 10])
        null += (dropped == 10).sum().item()
        n += labels.numel()
    # binomial standard error over 50,000 draws is <= 0.0023; allow 4 of them
    assert null / n == pytest.approx(p_uncond, abs=0.01)
