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
