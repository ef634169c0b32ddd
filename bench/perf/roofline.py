"""How near the machine's limit a network runs: FLOPs per image (torch's flop counter) against the
device's peak FLOP/s for the dtype.

FLOPs: `torch.utils.flop_counter.FlopCounterMode` over one forward pass of one image (a multiply-add
counts 2; convolutions and matrix products only, which is where the arithmetic is).

Peak on a CPU = cores torch uses x clock x FLOPs per cycle per core, where FLOPs per cycle follow from
the vector ISA torch dispatches to (`torch.backends.cpu.get_cpu_capability()`) and the instructions for
the dtype: fp32 FMA is 2 FLOPs per lane, with 2 FMA pipes per core (8 lanes with AVX2, 16 with AVX-512),
except on AMD family 19h (Zen 4), which executes a 512-bit FMA as two 256-bit halves, so its AVX-512 has
the lanes of AVX2; AVX512-BF16's dot product (vdpbf16ps) doubles the lanes for bf16; AMX-BF16 tiles do
1,024 bf16 FLOPs per cycle per core. The clock is /proc/cpuinfo's `cpu MHz` (the nominal clock; boost can
exceed it, so the peak is a nominal figure and the table says how it was derived). Beside it stands what
this machine attains: the FLOP/s of a large matrix product in the dtype, timed here (`attainable_flops`),
the practical roof for dense convolution. On CUDA the peak is the data-sheet dense figure of the named
GPUs (`CUDA_PEAK_TFLOPS`), NaN for others.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.models.fastpath import native_bf16
from bench.models.unet import UNet
from bench.perf.workload import MNIST_NET, SHAPE
from bench.spec.sections import DataSpec

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


def _cpuinfo(field: str) -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(field):
            return line.split(":", 1)[1].strip()
    return ""


def cpu_flops_per_cycle(dtype: str) -> tuple[float, str]:
    """FLOPs per cycle per core for the dtype on this CPU, and how it was derived."""
    capability = torch.backends.cpu.get_cpu_capability()
    lanes = 16 if capability.startswith("AVX512") else 8 if capability.startswith("AVX2") else 4
    split = capability.startswith("AVX512") and _cpuinfo("vendor_id") == "AuthenticAMD" and _cpuinfo("cpu family") == "25"
    lanes = 8 if split else lanes
    fma = 2 * 2 * lanes  # 2 pipes x 2 FLOPs per lane
    if dtype == "fp32":
        return fma, (f"{capability} on AMD family 19h (Zen 4: 512-bit ops as two 256-bit halves): 2 FMA pipes x 8 fp32 "
                     "lanes x 2" if split else f"{capability}: 2 FMA pipes x {lanes} fp32 lanes x 2")
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


def attainable_flops(device: str, dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a size x size matrix product in the dtype on `device`, the best of `repeats` after a warm-up."""
    import time
    kind = torch.bfloat16 if dtype == "bf16" else torch.float32
    a, b = (torch.randn(size, size, device=device).to(kind) for _ in range(2))
    best = float("inf")
    for _ in range(repeats + 1):
        start = time.perf_counter()
        a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def _inception_rates(out: Path) -> dict[str, tuple[str, float]]:
    """Inception's measured images per second by extraction (runtime or fast path) and dtype: from
    inception_runtimes.csv, else from the runtime decision a run recorded (feature_runtime_decision.json)."""
    import json
    if (out / "inception_runtimes.csv").exists():
        return {row.extraction: ("bf16" if row.extraction == "fast" and row.native_bf16 else "fp32", row.images_per_second)
                for row in pd.read_csv(out / "inception_runtimes.csv").itertuples()}
    if (out / "feature_runtime_decision.json").exists():
        candidates = json.loads((out / "feature_runtime_decision.json").read_text())["candidates"]
        return {name: ("fp32", row["images_per_second"]) for name, row in candidates.items() if "images_per_second" in row}
    return {}


def roofline_table(out: Path, device: str) -> pd.DataFrame:
    """Achieved FLOP/s of the measured networks beside the device's peak for their dtype: the mnist
    network from throughput.csv (network time per evaluated image) and Inception from `_inception_rates`;
    beside each, the attainable FLOP/s of a large matrix product in its dtype, timed here."""
    from bench.evaluation.features import get_extractor
    rows = []
    if (out / "throughput.csv").exists():
        unet = UNet(MNIST_NET, 1, 10).eval()
        flops = flops_per_image(unet, torch.randn(4, *SHAPE), torch.zeros(4), torch.zeros(4, dtype=torch.long))
        for row in pd.read_csv(out / "throughput.csv").itertuples():
            if row.method != "cond":
                continue
            per_image = row.network_seconds / (row.batch * row.nfe_per_image)
            rows.append({"network": f"mnist UNet ({row.config})", "dtype": "bf16" if row.network_dtype == "bfloat16" else "fp32",
                         "gflops_per_image": flops / 1e9, "images_per_second": 1 / per_image})
    inception = _inception_rates(out)
    if inception:
        from torch_fidelity.utils import create_feature_extractor
        extractor = get_extractor("inception", DataSpec("mnist"))
        net = create_feature_extractor(extractor.name, extractor.layers, cuda=False, verbose=False)
        flops = flops_per_image(net, torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
        for name, (dtype, rate) in inception.items():
            rows.append({"network": f"FID Inception ({name})", "dtype": dtype, "gflops_per_image": flops / 1e9,
                         "images_per_second": rate})
    table = pd.DataFrame(rows)
    if len(table):
        table["achieved_gflops"] = table.gflops_per_image * table.images_per_second
        peaks = {dtype: peak_flops(device, dtype) for dtype in ("fp32", "bf16")}
        table["peak_gflops"] = [peaks[d][0] / 1e9 for d in table.dtype]
        table["fraction_of_peak"] = table.achieved_gflops / table.peak_gflops
        attained = {dtype: attainable_flops(device, dtype) / 1e9 for dtype in set(table.dtype)}
        table["attainable_gflops"] = [attained[d] for d in table.dtype]
        table["fraction_of_attainable"] = table.achieved_gflops / table.attainable_gflops
        table["peak_from"] = [peaks[d][1] for d in table.dtype]
    return table
