"""`--dry-run`: the plan of a suite (cells, NFE, samples, estimated cost), training nothing.

The cost estimate times one forward pass of each distinct (untrained) network at the
cell's sampling batch size on the current device, and scales it by the NFE the plan needs;
training cost is estimated as 3 forward-equivalents per image per step (forward + backward).
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from .data import nominal_shape
from .suites import Cell
from .unet import UNet


def nfe_per_image(cell: Cell) -> tuple[int, int]:
    """(diffusion-network evaluations, classifier forward+backward passes) per image."""
    spec = cell.spec
    params = spec.guidance.kwargs()
    steps = spec.sample.steps
    if spec.guidance.method == "cfg":
        return steps * (2 if params.get("w", 0.0) != 0 else 1), 0
    if spec.guidance.method == "classifier":
        return steps, steps if params.get("scale", 1.0) != 0 else 0
    return steps, 0


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
        model_key = repr(s.model_key())
        train_nfe = 0 if model_key in trained else 3 * s.train.steps * s.train.batch_size
        trained.add(model_key)
        # a classifier pass (forward + backward) is costed as 3 network evaluations
        total_nfe = s.sample.num_samples * (nfe + 3 * clf)
        rows.append({"cell": cell.name, "samples": s.sample.num_samples, "nfe_per_image": nfe,
                     "classifier_passes_per_image": clf, "sampling_nfe": total_nfe, "training_nfe": train_nfe,
                     "est_seconds": (total_nfe + train_nfe) * timing[key]})
    return pd.DataFrame(rows)
