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


@pytest.mark.parametrize("vendor, family, lanes", [("AuthenticAMD", "25", 8), ("AuthenticAMD", "26", 16),
                                                   ("GenuineIntel", "6", 16)])
def test_avx512_lanes_follow_the_core_that_executes_them(monkeypatch, vendor, family, lanes):
    """Zen 4 (AMD family 19h = 25) runs a 512-bit FMA as two 256-bit halves; Zen 5 and Intel do not."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(roofline, "_cpuinfo", lambda field: {"vendor_id": vendor, "cpu family": family}[field])
    assert roofline.cpu_flops_per_cycle("fp32")[0] == 2 * 2 * lanes


def test_the_attainable_rate_is_a_positive_gemm_rate():
    assert roofline.attainable_flops("cpu", "fp32", size=256, repeats=2) > 1e8
