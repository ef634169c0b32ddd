"""Roofline arithmetic (bench/perf/roofline.py): FLOP counts against closed forms, peaks from their parts."""
import pytest
import torch

from bench.perf import roofline


def test_flops_per_image_match_the_closed_forms():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    # a multiply-add is 2 FLOPs: 2 x (output pixels x out channels x in channels x kernel area), per image
    assert roofline.flops_per_image(conv, torch.randn(5, 3, 16, 16)) == 2 * 16 * 16 * 8 * 3 * 9
    linear = torch.nn.Linear(64, 10)
    assert roofline.flops_per_image(linear, torch.randn(7, 64)) == 2 * 64 * 10


def test_cpu_peak_is_cores_times_clock_times_flops_per_cycle(monkeypatch):
    monkeypatch.setattr(roofline, "cpu_clock_ghz", lambda: 2.0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    peak, how = roofline.peak_flops("cpu", "fp32")
    assert peak == 4 * 2.0e9 * 32 and "AVX2" in how and "4 cores" in how
    monkeypatch.setattr(roofline, "native_bf16", lambda device: (False, "no"))
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert roofline.peak_flops("cpu", "bf16")[0] == pytest.approx(peak / 4)  # emulated: below fp32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert roofline.peak_flops("cpu", "bf16")[0] == 4 * 2.0e9 * 1024
