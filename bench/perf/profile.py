"""Where a doubled batch loses time: torch.profiler self time per operator at two batch sizes."""
from __future__ import annotations

import pandas as pd
import torch

from bench.models.unet import UNet
from bench.perf.workload import MNIST_NET, SHAPE


def profile_batch_sizes(device: str, batches: tuple[int, ...] = (256, 512), passes: int = 10) -> pd.DataFrame:
    """torch.profiler self time per operator for `passes` forward passes of the mnist network at each
    batch size: why one pass of doubled batch (CFG) can cost more than two passes."""
    from torch.profiler import ProfilerActivity, profile
    model = UNet(MNIST_NET, 1, 10).eval().to(device)
    columns = {}
    for batch in batches:
        z, lam, y = torch.randn(batch, *SHAPE, device=device), torch.zeros(batch, device=device), torch.zeros(batch, dtype=torch.long, device=device)
        with torch.inference_mode():
            for _ in range(3):
                model(z, lam, y)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(passes):
                    model(z, lam, y)
        columns[f"seconds_batch{batch}"] = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    table = pd.DataFrame(columns).fillna(0.0)
    first, last = table.columns[0], table.columns[-1]
    table.loc["total"] = table.sum()
    table["ratio"] = table[last] / table[first]
    return table.sort_values(last, ascending=False).head(9).rename_axis("operator").reset_index()
