"""Classifier guidance: the gradient, the s = 0 identity, and a toy problem with a closed form."""
import math

import pytest
import torch

from baselines.noisy_classifier import NoisyClassifier, accuracy_by_noise_level, train_classifier
from bench.spec.sections import ClassifierSpec, DataSpec, NetSpec
from bench.models.process import alpha_sigma
from bench.guidance import CountedNet, GuidanceContext, GuidanceError, make_guidance
from bench.sampling.samplers import sample
from bench.models.unet import UNet


@pytest.mark.slow
def test_noisy_classifier_beats_chance_when_clean_and_is_at_chance_at_lambda_min(tmp_path):
    model = train_classifier(DataSpec("digits"), ClassifierSpec(width=16, steps=150, batch_size=64),
                             cache=tmp_path, quiet=True)
    rows = accuracy_by_noise_level(model, DataSpec("digits"))
    assert rows[0]["accuracy"] > 0.6  # the cleanest eighth of the lambda range
    assert rows[-1]["lambda_low"] == -20 and abs(rows[-1]["accuracy"] - 0.1) < 0.06  # 364 images: sd 0.016
    # cached by spec: a second call loads instead of training
    assert len(list((tmp_path / "classifiers").iterdir())) == 1


def test_guidance_gradient_matches_finite_differences():
    torch.manual_seed(0)
    model = NoisyClassifier(1, 10, width=8).double().eval()
    z = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    lam = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    labels = torch.tensor([3, 7])

    def log_p(z_):
        return torch.log_softmax(model(z_, lam), 1).gather(1, labels[:, None]).sum()

    grad = model.log_prob_grad(z, lam, labels)  # what classifier guidance calls
    assert grad.shape == z.shape and grad.abs().sum() > 0
    h = 1e-5
    for i in range(5):
        direction = torch.randn_like(z)
        numeric = (log_p(z + h * direction) - log_p(z - h * direction)) / (2 * h)
        assert (grad * direction).sum().item() == pytest.approx(numeric.item(), rel=1e-5, abs=1e-8)


def test_scale_zero_reproduces_unguided_sampling_exactly():
    torch.manual_seed(0)
    net = UNet(NetSpec(channels=16), 1, 10).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    clf = NoisyClassifier(1, 10, width=8).eval()
    ctx = GuidanceContext(CountedNet(net), 10, CountedNet(clf.log_prob_grad))
    guided, _ = sample(make_guidance("classifier", ctx, scale=0.0), (1, 8, 8), range(6), 10, steps=6)
    plain, _ = sample(make_guidance("cond", GuidanceContext(CountedNet(net), 10)), (1, 8, 8), range(6), 10, steps=6)
    assert torch.equal(guided, plain)
    assert ctx.classifier.rows == 0


def test_nfe_and_classifier_evaluations_are_counted_separately():
    net = lambda z, lam, y: torch.zeros_like(z)  # noqa: E731
    ctx = GuidanceContext(CountedNet(net), 10, CountedNet(lambda z, lam, y: torch.zeros_like(z)))
    sample(make_guidance("classifier", ctx, scale=2.0), (1, 2, 2), range(4), 10, steps=5)
    assert ctx.model.rows == 4 * 5 and ctx.classifier.rows == 4 * 5


def test_bad_base_and_missing_classifier_are_clear_errors():
    ctx = GuidanceContext(CountedNet(lambda *a: None), 10)
    with pytest.raises(GuidanceError, match="valid: cond, uncond"):
        make_guidance("classifier", ctx, scale=1.0, base="both")
    with pytest.raises(GuidanceError, match=r"needs noisy_classifier \(a classifier of noisy images\), which this run does not provide"):
        make_guidance("classifier", ctx, scale=1.0)


# Toy problem: x ~ 1/2 N(-m, s^2) + 1/2 N(+m, s^2), class y = 0 / 1 picks the component.
# With v = alpha^2 s^2 + sigma^2:  p(z | y) = N(alpha mu_y, v),  log p(y | z) = softmax_y(-(z - alpha mu_y)^2 / 2v),
# and the exact unconditional eps(z) = sum_y p(y|z) sigma (z - alpha mu_y) / v.
M, S = 1.0, 0.5


def _toy_terms(z, lam):
    alpha, sigma = (t.reshape(-1, 1, 1, 1) for t in alpha_sigma(lam))
    v = alpha ** 2 * S ** 2 + sigma ** 2
    means = torch.stack([-alpha * M, alpha * M])  # (2, B, 1, 1, 1)
    log_lik = -(z[None] - means) ** 2 / (2 * v)
    post = torch.softmax(log_lik, dim=0)
    return alpha, sigma, v, means, post


def toy_uncond_eps(z, lam, labels):
    _, sigma, v, means, post = _toy_terms(z, lam)
    return (post * sigma * (z[None] - means) / v).sum(0)


def toy_grad_log_p(z, lam, labels):
    _, _, v, means, post = _toy_terms(z, lam)
    score_y = -(z[None] - means) / v  # grad_z log p(z | y)
    mixture = (post * score_y).sum(0)
    chosen = torch.where(labels.reshape(-1, 1, 1, 1) == 1, score_y[1], score_y[0])
    return chosen - mixture  # grad_z log p(y | z) = grad log p(z|y) - grad log p(z)


def toy_samples(scale, n=3000):
    ctx = GuidanceContext(CountedNet(toy_uncond_eps), 2, CountedNet(toy_grad_log_p))
    eps_fn = make_guidance("classifier", ctx, scale=scale, base="uncond")
    x, _ = sample(eps_fn, (1, 1, 1), range(n), 2, labels=torch.ones(n, dtype=torch.long), steps=200,
                  clip_x=False, dtype=torch.float64)
    return x.flatten()


def test_toy_scale_one_gives_the_exact_conditional():
    """s = 1 turns the unconditional score into grad log p(z | y) at every noise level,
    so the samples must follow N(+m, s^2)."""
    x = toy_samples(1.0)
    # 3,000 samples: standard errors 0.009 (mean) and 0.0065 (variance); 5 of them
    assert x.mean().item() == pytest.approx(M, abs=0.05)
    assert x.var().item() == pytest.approx(S ** 2, abs=0.035)


def test_toy_guidance_moves_samples_toward_the_class_as_theory_predicts():
    """p_s(x) ~ p(x) p(y|x)^s: the mass on the requested side grows with s, from one half at s = 0
    to Phi(m/s) = 0.977 at s = 1, and beyond it for s > 1."""
    fractions = [(toy_samples(s) > 0).double().mean().item() for s in (0.0, 1.0, 3.0)]
    assert fractions[0] == pytest.approx(0.5, abs=0.04)
    phi = 0.5 * (1 + math.erf(M / S / math.sqrt(2)))
    assert fractions[1] == pytest.approx(phi, abs=0.02)
    assert fractions[2] > fractions[1]
