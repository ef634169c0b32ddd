"""How near the machine's limit a network runs: FLOPs per image (torch's flop counter) against the
device's peak FLOP/s for the dtype.

FLOPs: `torch.utils.flop_counter.FlopCounterMode` over one forward pass of one image (a multiply-add
counts 2; convolutions and matrix products only, which is where the arithmetic is).

Peak on a CPU = cores torch uses x clock x FLOPs per cycle per core, where FLOPs per cycle follow from
the vector ISA torch dispatches to (`torch.backends.cpu.get_cpu_capability()`) and the instructions for
the dtype: fp32 FMA is 2 FLOPs per lane, with 2 FMA pipes per core (8 lanes with AVX2, 16 with AVX-512);
AVX512-BF16's dot product (vdpbf16ps) doubles the lanes for bf16; AMX-BF16 tiles do 1,024 bf16 FLOPs per
cycle per core. The clock is /proc/cpuinfo's `cpu MHz` (the current clock; turbo can exceed it, and some
cores run AVX-512 at half width, so the peak is a nominal figure and the table says which). On CUDA the
peak is the data-sheet dense figure of the named GPUs (`CUDA_PEAK_TFLOPS`), NaN for others.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from .fastpath import native_bf16

# dense data-sheet TFLOP/s (fp32 without tensor cores, bf16 with) of the GPUs these sessions may lend
CUDA_PEAK_TFLOPS = {"H100": {"fp32": 67.0, "bf16": 989.0}, "H200": {"fp32": 67.0, "bf16": 989.0},
                    "A100": {"fp32": 19.5, "bf16": 312.0}}


def flops_per_image(model: torch.nn.Module, *inputs: torch.Tensor) -> float:
    """FLOPs of one forward pass on the given inputs, divided by their batch size."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() / inputs[0].shape[0]


def cpu_clock_ghz() -> float:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) / 1000
    raise RuntimeError("no 'cpu MHz' in /proc/cpuinfo: give the clock by hand")


def cpu_flops_per_cycle(dtype: str) -> tuple[float, str]:
    """FLOPs per cycle per core for the dtype on this CPU, and how it was derived."""
    capability = torch.backends.cpu.get_cpu_capability()
    lanes = 16 if capability.startswith("AVX512") else 8 if capability.startswith("AVX2") else 4
    fma = 2 * 2 * lanes  # 2 pipes x 2 FLOPs per lane
    if dtype == "fp32":
        return fma, f"{capability}: 2 FMA pipes x {lanes} fp32 lanes x 2"
    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    if amx:
        return 1024.0, "AMX-BF16 tiles: 1024 bf16 FLOPs per cycle"
    if native_bf16("cpu")[0]:
        return 2 * fma, f"AVX512-BF16 vdpbf16ps: 2 x ({capability} fp32 FMA rate)"
    return fma / 4, "bf16 emulated through fp32 conversions (nominal: a quarter of the fp32 rate)"


def peak_flops(device: str, dtype: str) -> tuple[float, str]:
    """Nominal peak FLOP/s of `device` for `dtype` ('fp32' or 'bf16') and how it was derived."""
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
        for key, peaks in CUDA_PEAK_TFLOPS.items():
            if key in name:
                return peaks[dtype] * 1e12, f"{name}: data-sheet dense {dtype}"
        return float("nan"), f"{name}: no data-sheet peak recorded"
    cores, clock = torch.get_num_threads(), cpu_clock_ghz()
    per_cycle, how = cpu_flops_per_cycle(dtype)
    return cores * clock * 1e9 * per_cycle, f"{cores} cores x {clock:.2f} GHz x {per_cycle:g} ({how})"
