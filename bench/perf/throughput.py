"""Sampling throughput: full sampling runs of the mnist suite's network for each configuration,
interleaved round by round (A B C, B C A, ...: the order rotates so no configuration always follows
the same one) so that drifts in machine load hit every configuration alike. Ratios use the fastest
of the rounds (the least disturbed run; on a shared machine slow-downs only add time); medians are
reported beside them. Weights are random (perturbed): the cost of a network evaluation does not
depend on its weights. `ratios` sets each ratio beside its target."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace

import pandas as pd
import torch

from bench.guidance import CountedNet, GuidanceContext, make_guidance
from bench.models.autotune import decide
from bench.models.fastpath import NetworkRunner, native_bf16
from bench.models.unet import UNet
from bench.perf.workload import MNIST_NET, SHAPE, STEPS
from bench.sampling.samplers import sample
from bench.sources.classifier import NOISY_CLASSIFIER
from bench.spec.sections import SampleSpec


@dataclass(frozen=True)
class Config:
    name: str
    method: str
    params: tuple = ()
    sample: SampleSpec = SampleSpec()


def configs(device: str, batch: int, with_bf16: bool, with_compile: bool) -> list[Config]:
    """The timed configurations; "fast" is what --fast chooses here for this network (bench/models/autotune.py)."""
    fast = decide(MNIST_NET, SHAPE, 10, batch, device, with_compile=with_compile, remeasure=True).apply(SampleSpec())
    out = [Config("unguided", "cond"), Config("cfg w=0", "cfg", (("w", 0.0),)),
           Config("cfg batched", "cfg", (("w", 0.3), ("two_pass", False))),
           Config("cfg two-pass", "cfg", (("w", 0.3), ("two_pass", True))),
           Config("interval cfg", "interval", (("inner_params", (("w", 0.3),)),)), Config("apg", "apg", (("w", 0.3),)),
           Config("classifier", "classifier", (("scale", 1.0),)),
           Config("unguided fast", "cond", (), fast), Config("cfg batched fast", "cfg", (("w", 0.3), ("two_pass", False)), fast)]
    if with_bf16 and fast.precision != "bf16":
        native = "native" if native_bf16(device)[0] else "emulated"
        out.append(Config(f"unguided bf16 ({native} here)", "cond", (), replace(fast, precision="bf16")))
    if with_compile and not fast.compile:
        out.append(Config("unguided fast+compile", "cond", (), replace(fast, compile=True)))
    return out


def measure_once(config: Config, model: torch.nn.Module, classifier: torch.nn.Module, batch: int, device: str) -> dict:
    runner = NetworkRunner(model, config.sample, device)
    ctx = GuidanceContext(CountedNet(runner), 10, CountedNet(classifier.log_prob_grad))
    eps_fn = make_guidance(config.method, ctx, **dict(config.params))
    start = time.perf_counter()
    sample(eps_fn, SHAPE, range(batch), 10, steps=STEPS, device=device)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "network_seconds": ctx.model.seconds, "classifier_seconds": ctx.classifier.seconds,
            "nfe_per_image": ctx.model.rows / batch, **runner.describe()}


def measure_throughput(rounds: int, batch: int, device: str, with_bf16: bool, with_compile: bool) -> pd.DataFrame:
    torch.manual_seed(0)
    model = UNet(MNIST_NET, 1, 10).eval().to(device)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    classifier = NOISY_CLASSIFIER.network(1, 10, width=16).eval().requires_grad_(False).to(device)
    todo = configs(device, batch, with_bf16, with_compile)
    for config in todo:  # warm-up outside the timings; compiled networks at the timed shape
        measure_once(config, model, classifier, batch if config.sample.compile else min(batch, 8), device)
    samples = {c.name: [] for c in todo}
    for r in range(rounds):
        for config in todo[r % len(todo):] + todo[:r % len(todo)]:
            if config.sample.precision == "bf16" and r > 0 and not native_bf16(device)[0]:
                continue  # emulated bf16 is slow: one round is enough to show it
            samples[config.name].append(measure_once(config, model, classifier, batch, device))
            print(f"round {r + 1}/{rounds} {config.name}: {samples[config.name][-1]['seconds']:.2f}s", flush=True)
    rows = []
    for config in todo:
        runs = samples[config.name]
        best = min(runs, key=lambda run: run["seconds"])
        rows.append({"config": config.name, "method": config.method, "rounds": len(runs),
                     "seconds": best["seconds"], "median_seconds": statistics.median(run["seconds"] for run in runs),
                     "network_seconds": best["network_seconds"], "classifier_seconds": best["classifier_seconds"],
                     "other_seconds": best["seconds"] - best["network_seconds"] - best["classifier_seconds"],
                     "images_per_second": batch / best["seconds"],
                     "nfe_per_image": runs[0]["nfe_per_image"], "network_dtype": runs[0]["network_dtype"],
                     "memory_format": runs[0]["memory_format"], "compiled": runs[0]["compiled"],
                     "batch": batch, "steps": STEPS, "device": device})
    table = pd.DataFrame(rows)
    table["cost_vs_unguided"] = table.seconds / table.set_index("config").at["unguided", "seconds"]
    table["median_cost_vs_unguided"] = table.median_seconds / table.set_index("config").at["unguided", "median_seconds"]
    return table


def ratios(table: pd.DataFrame) -> pd.DataFrame:
    """The issue's targets, each a ratio of two best-of-rounds times from the same interleaved run."""
    t = table.set_index("config")
    unguided = t.loc["unguided"]
    rows = [
        ("sampler overhead / network time, unguided", unguided.other_seconds / unguided.network_seconds, "<=", 0.03),
        ("CFG (w=0.3) cost / unguided, one pass of doubled batch", t.at["cfg batched", "seconds"] / unguided.seconds, "<=", 2.05),
        ("CFG (w=0.3) cost / unguided, two passes (the CPU default)", t.at["cfg two-pass", "seconds"] / unguided.seconds, "<=", 2.05),
        ("CFG w=0 cost / unguided", t.at["cfg w=0", "seconds"] / unguided.seconds, "<=", 1.02),
        ("CFG batched / CFG two-pass", t.at["cfg batched", "seconds"] / t.at["cfg two-pass", "seconds"], "<=", 1.0),
        ("fast path speed-up over fp32 eager, unguided", unguided.seconds / t.at["unguided fast", "seconds"], ">=", 2.5),
        ("fast path speed-up over fp32 eager, CFG", t.at["cfg batched", "seconds"] / t.at["cfg batched fast", "seconds"], ">=", 2.5),
    ]
    if "unguided fast+compile" in t.index:
        rows.append(("fast path + torch.compile speed-up over fp32 eager, unguided",
                     unguided.seconds / t.at["unguided fast+compile", "seconds"], ">=", 2.5))
    out = pd.DataFrame(rows, columns=["ratio", "measured", "target_op", "target"])
    out["met"] = [m <= tg if op == "<=" else m >= tg for m, op, tg in zip(out.measured, out.target_op, out.target)]
    return out
