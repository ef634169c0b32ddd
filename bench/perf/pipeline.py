"""The whole pipeline's throughput on an imagenet64-shaped synthetic workload: the public ADM ImageNet
64x64 network (its official config, random weights: the same cost as the real model), CFG sampling of n
images, Inception features of each batch as it is sampled (the runtime a suite would use), and FID with
its bootstrap interval against a synthetic reference; the seconds of each stage beside the network's
FLOP-bound time (bench/perf/roofline.py), so that what is left above the roofline is visible.

The reference is the Inception features of uniform-noise images (no ImageNet is needed); the numbers
measured are times, not sample quality.
"""
from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd
import torch

from bench.spec.sections import GuidanceSpec


class _NullLabelAsClass(torch.nn.Module):
    """ADM has no null label; for timing, CFG's unconditional half is given class 0 (the same cost)."""

    def __init__(self, net: torch.nn.Module, classes: int):
        super().__init__()
        self.net, self.classes = net, classes

    def forward(self, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(z, lam, torch.where(labels >= self.classes, 0, labels))


def pipeline_throughput(device: str, n: int = 10_000, steps: int = 25, batch: int = 256, reference: int = 10_000) -> pd.DataFrame:
    """One row per stage (sampling, features, reference, metrics, total) of n images, with images per
    second, and for sampling the network's FLOP-bound seconds at the device's peak."""
    from bench.data.datasets import to_uint8
    from bench.evaluation.features import get_extractor
    from bench.evaluation.metrics import fid_and_stats
    from bench.evaluation.scoring import CellExtractors, FeatureStream
    from bench.perf.roofline import flops_per_image, peak_flops
    from bench.sampling.cell import sample_cell
    from bench.sampling.nfe import count_evaluations
    from bench.sources import SOURCES
    from bench.stats.uncertainty import CellUncertainty
    from bench.suites.presets import ADM64_BASE
    spec = replace(ADM64_BASE, guidance=GuidanceSpec("cfg", (("w", 1.0),)),
                   sample=replace(ADM64_BASE.sample, steps=steps, num_samples=n, batch_size=batch))
    shape, classes = (3, 64, 64), 1000
    net = _NullLabelAsClass(SOURCES["adm"].untrained(spec.model, spec.net, shape, classes), classes).to(device).eval()
    inception = get_extractor("inception", spec.data)
    stream = FeatureStream(CellExtractors(inception, None), device)
    feature_seconds = 0.0

    def on_batch(x: torch.Tensor, labels: torch.Tensor) -> None:
        nonlocal feature_seconds
        start = time.perf_counter()
        stream.add(to_uint8(x.clamp(-1, 1)))
        feature_seconds += time.perf_counter() - start
    start = time.perf_counter()
    result = sample_cell(spec, net, shape, classes, device=device, quiet=True, on_batch=on_batch)
    start_reference = time.perf_counter()
    noise = torch.randint(0, 256, (reference, *shape), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    reference_stream = FeatureStream(CellExtractors(inception, None), device)
    for part in noise.split(batch):
        reference_stream.add(part)
    real = reference_stream.features()[inception.fid_layer]
    reference_seconds = time.perf_counter() - start_reference
    sample = stream.features()[inception.fid_layer]
    start_metrics = time.perf_counter()
    uncertainty = CellUncertainty(n, spec.eval.bootstrap)
    uncertainty.frechet("fid", fid_and_stats(sample, real)["fid"], sample, real)
    metrics_seconds = time.perf_counter() - start_metrics
    total = time.perf_counter() - start
    nfe = count_evaluations(spec.guidance, steps=steps, sampler=spec.sample.sampler, v=spec.sample.v,
                            clip_x=spec.sample.clip_x)["nfe"]
    flops = flops_per_image(net, torch.randn(2, *shape, device=device), torch.zeros(2, device=device),
                            torch.zeros(2, dtype=torch.long, device=device))
    peak, peak_from = peak_flops(device, "fp32")
    runtime = stream.runtimes()["extractor_runtime"]
    rows = [("sampling", result.seconds, n, nfe * n * flops / peak), ("features", feature_seconds, n, float("nan")),
            ("reference features", reference_seconds, reference, float("nan")),
            ("metrics (FID + bootstrap)", metrics_seconds, n, float("nan")), ("total", total, n, float("nan"))]
    return pd.DataFrame([{"stage": stage, "seconds": seconds, "images": images, "images_per_second": images / seconds,
                          "roofline_seconds": bound, "network": "ADM imagenet64 (random weights)",
                          "gflops_per_image_per_nfe": flops / 1e9, "nfe_per_image": nfe, "steps": steps, "batch": batch,
                          "feature_runtime": runtime, "device": device, "peak_from": peak_from}
                         for stage, seconds, images, bound in rows])
