"""The fast path written into each cell's spec: per network, the settings measured fastest on this
machine (bench/models/autotune.py), for sampling and for training."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from bench.data.datasets import nominal_shape
from bench.models.autotune import COMPILE_MIN_CALLS, decide
from bench.sampling.nfe import count_for
from bench.sources import SOURCES
from bench.suites.cells import Cell


def network_calls(cell: Cell) -> float:
    """How many times sampling the cell calls its network: batches x network evaluations per image."""
    s = cell.spec.sample
    nfe = count_for(cell.spec)["nfe"]
    return -(-s.num_samples // s.batch_size) * nfe


def fast_cells(cells: Sequence[Cell], device: str) -> list[Cell]:
    """Each cell with the evaluation settings measured fastest for its network (bench/models/autotune.py),
    compile included where the network calls of all the cells sharing it repay its warm-up, and each
    model's training likewise. Feature extraction keeps fp32: bf16 Inception features moved FID by half
    its bootstrap interval (results/perf/report.md), so eval.fast_features stays an explicit choice."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.spec.data, cell.spec.net, cell.spec.sample.batch_size), []).append(cell)
    sample, train = {}, {}
    for (data, net, batch), members in groups.items():
        calls = sum(network_calls(c) for c in members)
        decision = decide(net, nominal_shape(data), 10, batch, device,  # class count: no effect on a pass's cost
                          with_compile=calls >= COMPILE_MIN_CALLS)
        sample.update({c.name: decision.apply(c.spec.sample, calls) for c in members})
    for cell in cells:  # each model is trained once, for train.steps steps
        t = cell.spec.train
        if SOURCES[cell.spec.model.source].trains:
            decision = decide(cell.spec.net, nominal_shape(cell.spec.data), 10, t.batch_size, device, training=True,
                              with_compile=t.steps >= COMPILE_MIN_CALLS)
            train[cell.name] = decision.apply(t, t.steps)
    return [Cell(c.name, replace(c.spec, sample=sample[c.name], train=train.get(c.name, c.spec.train))) for c in cells]
