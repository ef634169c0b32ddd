"""The maps between eps, x0, v and flow-velocity predictions at a fixed (z, lambda): exact round trips in float64,
each against its textbook definition, and the linear interpolant as the VP path rescaled."""
import pytest
import torch

from bench.models.parameterisation import (SPACES, FlowVelocityModel, PredictingNet, flow_scale, flow_time, from_eps,
                                           lambda_of_flow_time, to_eps)
from bench.models.process import alpha_sigma


def _point(batch: int = 5):
    g = torch.Generator().manual_seed(0)
    lam = torch.linspace(-19.0, 19.0, batch, dtype=torch.float64)
    x0, eps = torch.randn(batch, 2, 3, 3, generator=g, dtype=torch.float64), torch.randn(batch, 2, 3, 3, generator=g, dtype=torch.float64)
    alpha, sigma = (t[:, None, None, None] for t in alpha_sigma(lam))
    return lam, x0, eps, alpha * x0 + sigma * eps, alpha, sigma


@pytest.mark.parametrize("space", SPACES)
def test_every_space_round_trips_through_eps_in_float64(space):
    lam, _, eps, z, _, _ = _point()
    torch.testing.assert_close(to_eps(space, z, lam, from_eps(space, z, lam, eps)), eps, rtol=1e-9, atol=1e-9)


def test_each_prediction_is_its_definition():
    """x0 is the data, v = alpha eps - sigma x0, u = eps - x0 = d x_t / dt on x_t = (1 - t) x0 + t eps."""
    lam, x0, eps, z, alpha, sigma = _point()
    torch.testing.assert_close(from_eps("x0", z, lam, eps), x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(from_eps("v", z, lam, eps), alpha * eps - sigma * x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(from_eps("flow", z, lam, eps), eps - x0, rtol=1e-9, atol=1e-9)
    t = flow_time(lam)[:, None, None, None]
    torch.testing.assert_close(z * flow_scale(lam, z), (1 - t) * x0 + t * eps, rtol=1e-12, atol=1e-12)
    h = 1e-6  # the velocity is the time derivative of the interpolant at fixed (x0, eps)
    ahead = (1 - (t + h)) * x0 + (t + h) * eps
    torch.testing.assert_close((ahead - ((1 - t) * x0 + t * eps)) / h, eps - x0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lambda_of_flow_time(flow_time(lam)), lam, rtol=1e-9, atol=1e-9)


def test_a_v_network_and_a_flow_network_are_wrapped_as_the_eps_they_imply():
    lam, x0, eps, z, alpha, sigma = _point()

    class Predicts(torch.nn.Module):
        def __init__(self, target):
            super().__init__()
            self.target = target

        def forward(self, x, lam, labels):
            return self.target

    torch.testing.assert_close(PredictingNet(Predicts(alpha * eps - sigma * x0), "v")(z, lam, None), eps)
    torch.testing.assert_close(PredictingNet(Predicts(eps - x0), "flow")(z, lam, None), eps)


def test_the_two_time_conventions_of_one_flow_network_give_one_eps():
    """SiT's x_t = t x0 + (1 - t) eps and velocity x0 - eps is REPA's with t -> 1 - t and the sign flipped."""
    lam, _, _, z, _, _ = _point()
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(2, 2, 1, 1, generator=g, dtype=torch.float64)

    def repa(x, t, labels):
        return torch.nn.functional.conv2d(x, weight) * torch.cos(3 * t)[:, None, None, None]

    class Net(torch.nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x, t, labels):
            return self.fn(x, t, labels)

    sit = Net(lambda x, t, labels: -repa(x, 1 - t, labels))
    torch.testing.assert_close(FlowVelocityModel(Net(repa), "noise_at_1")(z, lam, None),
                               FlowVelocityModel(sit, "noise_at_0")(z, lam, None), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="time convention 'backwards' unknown"):
        FlowVelocityModel(sit, "backwards")
