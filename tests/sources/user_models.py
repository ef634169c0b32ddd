"""Networks a user's `model.function` might return (the callable model source), for tests/sources/test_sources.py."""
import torch

DATA_STD = 0.5  # the Gaussian data of `gaussian_denoiser`


class TinyEpsNet(torch.nn.Module):
    """An eps-model net(x_t, t, labels) on a discrete schedule, with a null label (num_classes)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.label = torch.nn.Embedding(num_classes + 1, channels)

    def forward(self, x, t, labels):
        return self.conv(x) * torch.cos(t / 1000)[:, None, None, None] + self.label(labels)[:, :, None, None]


def tiny_eps_net(spec, shape, num_classes):
    return TinyEpsNet(shape[0], num_classes)


class GaussianDenoiser(torch.nn.Module):
    """The exact EDM denoiser of N(0, s^2 I) data: D(x; sigma) = x s^2 / (s^2 + sigma^2)."""

    def forward(self, x, sigma, labels):
        return x * (DATA_STD ** 2 / (DATA_STD ** 2 + sigma ** 2))[:, None, None, None]


def gaussian_denoiser(spec, shape, num_classes):
    return GaussianDenoiser()


def not_a_network(spec, shape, num_classes):
    return "a string"


def wrong_signature(spec):
    """A function that takes one argument where the source passes (spec, shape, num_classes)."""
    return TinyEpsNet(1, 10)


class OneArgumentNet(torch.nn.Module):
    def forward(self, x):
        return x


def one_argument_net(spec, shape, num_classes):
    return OneArgumentNet()


def raises(spec, shape, num_classes):
    raise RuntimeError("the user's code failed\nwith a second line")


class TinyFlowNet(TinyEpsNet):
    """A flow-matching network net(x_t, t, labels) -> velocity, t in [0, 1], t = 1 noise (REPA's convention),
    with TinyEpsNet's layers."""

    def forward(self, x, t, labels):
        return self.conv(x) * torch.cos(2 * t)[:, None, None, None] + self.label(labels)[:, :, None, None] - 0.5 * x


class SiTConvention(torch.nn.Module):
    """The same network in SiT's convention: x_t = t x0 + (1 - t) eps, velocity x0 - eps."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, t, labels):
        return -self.net(x, 1 - t, labels)


def tiny_flow_net(spec, shape, num_classes):
    return TinyFlowNet(shape[0], num_classes)


def tiny_flow_net_sit(spec, shape, num_classes):
    return SiTConvention(TinyFlowNet(shape[0], num_classes))


class VFromEps(torch.nn.Module):
    """TinyEpsNet re-expressed as a v-prediction on the same discrete cosine schedule: v = alpha eps - sigma x0,
    with alpha, sigma at the fractional t the harness asks for (log sigma interpolated, as it maps lambda to t)."""

    def __init__(self, net: torch.nn.Module, timesteps: int):
        super().__init__()
        from bench.sources.noise import SCHEDULES, DiscreteTimesteps
        self.net, self.log_sigmas = net, DiscreteTimesteps(SCHEDULES["cosine"](timesteps)).log_sigmas

    def forward(self, x, t, labels):
        low = t.double().floor().long().clamp(max=len(self.log_sigmas) - 2)
        frac = t.double() - low
        log_sigma = self.log_sigmas[low] + frac * (self.log_sigmas[low + 1] - self.log_sigmas[low])
        lam = (-2 * log_sigma).to(x.dtype)
        alpha, sigma = (v[:, None, None, None] for v in (torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()))
        eps = self.net(x, t, labels)
        return alpha * eps - sigma * (x - sigma * eps) / alpha


def tiny_v_net(spec, shape, num_classes):
    return VFromEps(TinyEpsNet(shape[0], num_classes), spec.timesteps)
