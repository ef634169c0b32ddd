"""Throughput benchmarks (pytest-benchmark). Short mode by default (CI); full mode with
BENCH_PERF_FULL=1. Save the JSON with --benchmark-json, e.g.

    BENCH_PERF_FULL=1 python -m pytest tests/perf/test_benchmarks.py --benchmark-json=results/perf/benchmarks.json
"""
import os

import pytest
import torch

from baselines.noisy_classifier import NoisyClassifier
from bench.spec.sections import DataSpec, NetSpec
from bench.data.datasets import load_dataset
from bench.evaluation.features import extract, get_extractor
from bench.guidance import CountedNet, GuidanceContext, make_guidance
from bench.sampling.samplers import sample
from bench.models.unet import UNet

FULL = os.environ.get("BENCH_PERF_FULL") == "1"
ROUNDS = 10 if FULL else 2
BATCH = 256 if FULL else 64
MNIST_NET = NetSpec(channels=16, channel_mult=(1, 2, 2), attention_levels=(2,))  # the mnist suite's network

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def ctx():
    torch.manual_seed(0)
    net = UNet(MNIST_NET, 1, 10).eval()
    clf = NoisyClassifier(1, 10, width=16).eval().requires_grad_(False)
    return GuidanceContext(CountedNet(net), 10, CountedNet(clf.log_prob_grad))


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(BATCH, 1, 28, 28, generator=g), torch.zeros(BATCH), torch.randint(10, (BATCH,), generator=g)


def bench(benchmark, fn, *args):
    with torch.no_grad():
        fn(*args)  # warm-up outside the timing
        return benchmark.pedantic(fn, args=args, rounds=ROUNDS, iterations=1)


@pytest.mark.parametrize("method,params", [
    ("cond", {}), ("cfg", {"w": 0.0}), ("cfg", {"w": 1.0, "two_pass": False}), ("cfg", {"w": 1.0, "two_pass": True}),
    ("classifier", {"scale": 1.0}),
], ids=["unguided", "cfg-w0", "cfg-batched", "cfg-two-pass", "classifier"])
def test_denoiser_evaluation(benchmark, ctx, batch, method, params):
    benchmark.group = f"one guided eps evaluation, batch {BATCH}"
    out = bench(benchmark, make_guidance(method, ctx, **params), *batch)
    assert out.shape == batch[0].shape


def test_full_sampling_run(benchmark, ctx):
    benchmark.group = "sampling"
    eps_fn = make_guidance("cfg", ctx, w=1.0)
    x, _ = bench(benchmark, lambda: sample(eps_fn, (1, 28, 28), range(BATCH // 4), 10, steps=8))
    assert x.shape == (BATCH // 4, 1, 28, 28)


def test_feature_extraction(benchmark):
    benchmark.group = "metrics"
    images = load_dataset(DataSpec("mnist5k"), "heldout").images[:BATCH * 2]
    extractor = get_extractor("evaluator", DataSpec("mnist5k"))
    feats = bench(benchmark, extract, extractor, images)
    assert feats["features"].shape == (len(images), 64)


def test_sampler_own_work_with_a_free_network(benchmark):
    """What the sampler costs besides the network (noise streams, the update): eps = 0 costs nothing."""
    benchmark.group = "sampling"
    x, _ = bench(benchmark, lambda: sample(lambda z, lam, y: torch.zeros_like(z), (1, 16, 16), range(BATCH), 10, steps=32))
    assert x.shape == (BATCH, 1, 16, 16) and x.abs().max() <= 1.0
