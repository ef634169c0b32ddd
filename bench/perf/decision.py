"""What --fast chooses for the mnist network here, and why: every candidate's timing, speed-up, warm-up
and eps error, for sampling passes and for training steps (bench/models/autotune.py decides)."""
from __future__ import annotations

import pandas as pd

from bench.models.autotune import candidate_name, decide
from bench.perf.workload import CELL_SAMPLES, MNIST_NET, MNIST_TRAIN, SHAPE, STEPS


def decision_table(device: str, batch: int, with_compile: bool) -> pd.DataFrame:
    """Every candidate --fast weighed for the mnist network here, for sampling passes and for training
    steps: time per pass, speed-up over fp32 eager, warm-up, eps error, and which one it chose (steady
    state, and for the work of one mnist cell / one mnist model)."""
    cell_calls = -(-CELL_SAMPLES // batch) * 2 * STEPS  # a CFG cell of the mnist suite: two passes per step
    rows = []
    for work, batch_, calls, training in (("sampling", batch, cell_calls, False),
                                          ("training", MNIST_TRAIN[0], MNIST_TRAIN[1], True)):
        # sampling was measured afresh by this run's throughput configurations (in a process where nothing
        # was compiled yet, so the warm-ups are a first compilation's); training is measured here
        decision = decide(MNIST_NET, SHAPE, 10, batch_, device, with_compile=with_compile, training=training,
                          remeasure=training)
        baseline = decision.timings[candidate_name(False, "fp32", False)]["seconds"]
        rows += [{"work": work, "candidate": name, "seconds_per_pass": t["seconds"],
                  "speedup_vs_fp32_eager": baseline / t["seconds"], "warmup_seconds": t["warmup_seconds"],
                  "eps_relative_error": t["relative_error"],
                  "chosen_steady_state": name == candidate_name(*decision.settings()),
                  "chosen_for_the_mnist_work": name == candidate_name(*decision.settings(calls)),
                  "batch": batch_, "machine": decision.machine} for name, t in decision.timings.items()]
    return pd.DataFrame(rows)
