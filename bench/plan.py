"""`--dry-run`: the plan of a suite (cells, NFE, samples, estimated cost), training nothing.

NFE per image are counted by running each cell's method through its sampler against stubs (the
method records, bench/guidance/registry.py), so the plan counts what the run will evaluate. The cost
estimate times one forward pass of each distinct (untrained) network on the current device, and scales
it by those NFE; training cost is estimated as 3 forward-equivalents per image per step (forward +
backward), an autoguidance guide costed as a main-size network.
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from .data import nominal_shape
from .guidance import count_evaluations, method_needs
from .suites import Cell
from .unet import UNet


def nfe_per_image(cell: Cell) -> tuple[float, float]:
    """(diffusion-network evaluations, classifier forward+backward passes) per image, counted by
    running the cell's method through its sampler against stubs (bench/guidance/registry.py)."""
    s = cell.spec.sample
    counted = count_evaluations(cell.spec.guidance, steps=s.steps, sampler=s.sampler, v=s.v, clip_x=s.clip_x)
    return counted["nfe"], counted["classifier_evals"]


def seconds_per_nfe(cell: Cell, device: str, repeats: int = 1) -> float:
    """Measured seconds for one image through the cell's network on `device` (untrained weights)."""
    shape = nominal_shape(cell.spec.data)
    net = UNet(cell.spec.net, shape[0], 10).to(device).eval()
    batch = min(cell.spec.sample.batch_size, 8)
    z = torch.randn(batch, *shape, device=device)
    lam, labels = torch.zeros(batch, device=device), torch.zeros(batch, dtype=torch.long, device=device)
    with torch.no_grad():
        net(z, lam, labels)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            net(z, lam, labels)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / (repeats * batch)


def plan(cells: list[Cell], device: str) -> pd.DataFrame:
    timing: dict[str, float] = {}
    trained: set[str] = set()
    rows = []
    for cell in cells:
        s = cell.spec
        key = repr((s.data, s.net))
        if key not in timing:
            timing[key] = seconds_per_nfe(cell, device)
        nfe, clf = nfe_per_image(cell)
        models = [(s.net, s.train)]
        if "guide" in method_needs(s.guidance.method, s.guidance.kwargs()):
            models.append(s.guide_net_and_train())  # costed as a main-size network: an upper bound
        train_nfe = 0
        for net, train in models:
            key_ = repr((s.data, net, train))
            train_nfe += 0 if key_ in trained else 3 * train.steps * train.batch_size
            trained.add(key_)
        # a classifier pass (forward + backward) is costed as 3 network evaluations
        total_nfe = s.sample.num_samples * (nfe + 3 * clf)
        rows.append({"cell": cell.name, "samples": s.sample.num_samples, "nfe_per_image": nfe,
                     "classifier_passes_per_image": clf, "sampling_nfe": total_nfe, "training_nfe": train_nfe,
                     "est_seconds": (total_nfe + train_nfe) * timing[key]})
    return pd.DataFrame(rows)
