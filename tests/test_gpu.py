"""The CUDA paths, run wherever a GPU is present (`.ci/gpu`); skipped on CPU-only machines.

What only a GPU exercises: the per-sample noise streams copied through two pinned buffers, CUDA-event
timing of the networks, CFG as one pass of doubled batch (the CUDA default), and the same samples as
on the CPU. TF32 convolutions (PyTorch's CUDA default for cuDNN) round to 10 significand bits, so
CPU-vs-GPU agreement is asserted to 1e-2 in [-1, 1] (about one uint8 level).
"""
import pytest
import torch

from bench.spec.sections import NetSpec, SampleSpec
from bench.models.fastpath import NetworkRunner
from bench.guidance import CountedNet, GuidanceContext, make_guidance
from bench.sampling.samplers import SampleNoise, sample
from bench.models.unet import UNet

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")]
SHAPE = (1, 16, 16)


def perturbed_net() -> UNet:
    torch.manual_seed(0)
    net = UNet(NetSpec(channels=16, channel_mult=(1, 2), attention_levels=(1,)), 1, 10).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def draw(net, device: str, **cfg):
    ctx = GuidanceContext(CountedNet(NetworkRunner(net.to(device), SampleSpec(), device)), 10)
    images, labels = sample(make_guidance("cfg", ctx, w=0.3, **cfg), SHAPE, range(16), 10, steps=8, device=device)
    return images.cpu(), labels.cpu(), ctx.model


def test_noise_streams_through_pinned_buffers_equal_the_cpu_draws():
    cpu, gpu = SampleNoise(range(8), SHAPE, 10, "cpu", draws=3), SampleNoise(range(8), SHAPE, 10, "cuda", draws=3)
    assert torch.equal(cpu.labels, gpu.labels) and gpu.chunk == 3
    for _ in range(7):  # more draws than a chunk: the buffer is refilled only after its copy finished
        expected = cpu.draw().clone()
        assert torch.equal(gpu.draw().cpu(), expected)


def test_cuda_samples_match_the_cpu_and_are_timed_by_events():
    net = perturbed_net()
    cpu_images, cpu_labels, _ = draw(net, "cpu", two_pass=True)
    gpu_images, gpu_labels, counted = draw(net, "cuda")
    assert torch.equal(cpu_labels, gpu_labels)
    torch.testing.assert_close(gpu_images, cpu_images, rtol=0, atol=1e-2)
    assert counted.rows == 16 * 8 * 2 and counted.seconds > 0


@pytest.fixture
def full_fp32_convolutions():
    """cuDNN without TF32: at TF32's 10-bit significand the batch size alone (which picks the convolution
    algorithm) moves samples by more than fp32 rounding over 8 steps (results/perf/cuda/notes.md)."""
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = allowed


def test_doubled_batch_cfg_equals_two_passes_on_cuda(full_fp32_convolutions):
    net = perturbed_net()
    doubled, _, counted = draw(net, "cuda", two_pass=False)
    two, _, _ = draw(net, "cuda", two_pass=True)
    torch.testing.assert_close(doubled, two, rtol=0, atol=1e-4)
    assert counted.rows == 16 * 8 * 2


def test_the_tiny_suite_runs_end_to_end_on_cuda(tmp_path, monkeypatch):
    """Every stage on the GPU (training, both guidances, features, metrics, the report): where a CPU
    tensor meets a CUDA network, this is the test that finds it."""
    from bench.runner.suite import run_suite
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    table = run_suite("tiny", out=tmp_path, device="cuda", quiet=True)
    assert len(table) == 8 and table.fid.notna().all()
    assert (table.guidance_classifier_accuracy.notna()).any()
