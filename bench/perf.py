"""`python -m bench.perf`: sampling throughput ratios measured in one run, and the fast path's
effect on FID/IS; writes results/perf/{throughput.csv, ratios.csv, fast_vs_fp32.csv, report.md}.

Throughput: full sampling runs of the mnist suite's network (16x16, batch 256, T=32
ancestral steps) for each configuration, interleaved round by round (A B C, B C A, ...: the
order rotates so no configuration always follows the same one) so that drifts in machine load
hit every configuration alike. Ratios use the fastest of the rounds (the least disturbed run;
on a shared machine slow-downs only add time); medians are reported beside them. Weights are
random (perturbed): the cost of a network evaluation does not depend on its weights.

Quality (--quality): the `ci` suite run with fp32 eager, with `--fast`, and with bf16 forced: each
variant minus fp32 with its paired 95% bootstrap interval, and in units of the seed spread measured for
the CI gate (results/ci/tolerances.csv).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from baselines.noisy_classifier import NoisyClassifier

from .bootstrap import paired_interval
from .config import DataSpec, NetSpec, SampleSpec
from .envinfo import DeviceError, check_device, environment
from .autotune import candidate_name, decide
from .fastpath import NetworkRunner, native_bf16
from .guidance import CountedNet, GuidanceContext, make_guidance
from .pipeline import run_suite
from .samplers import sample
from .store import atomic_write_bytes, notes_section, read_replicates
from .unet import UNet

MNIST_NET = NetSpec(channels=16, channel_mult=(1, 2, 2), attention_levels=(2,))  # the mnist suite's network
SHAPE, STEPS = (1, 16, 16), 32
QUALITY_METRICS = ("fid", "is_mean", "class_accuracy")


@dataclass(frozen=True)
class Config:
    name: str
    method: str
    params: tuple = ()
    sample: SampleSpec = SampleSpec()


def configs(device: str, batch: int, with_bf16: bool, with_compile: bool) -> list[Config]:
    """The timed configurations; "fast" is what --fast chooses here for this network (bench/autotune.py)."""
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


def measure_once(config: Config, model: torch.nn.Module, classifier: NoisyClassifier, batch: int, device: str) -> dict:
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
    classifier = NoisyClassifier(1, 10, width=16).eval().requires_grad_(False).to(device)
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


def _inception_variants(device: str) -> dict:
    """The FID Inception as fp32 eager and on its fast path, each built (weights converted) and warmed up."""
    from .data import load_dataset
    from .features import extract, get_extractor
    exact = get_extractor("inception", DataSpec("mnist"))
    variants = {"fp32 eager": exact, "fast": replace(exact, fast=True)}
    warm = load_dataset(DataSpec("mnist"), "heldout").images[:8]
    for extractor in variants.values():
        extract(extractor, warm, device=device)
    return variants


def inception_extraction(rounds: int, device: str, samples: Path | None = None, n: int = 1000) -> pd.DataFrame:
    """Inception feature extraction fp32 eager vs its fast path (eval.fast_features), timed interleaved on
    the same images (best of `rounds`), and the FID each gives: `samples` (a cell's samples.npz, default
    the mnist suite's w=0.3 cell) against the first n MNIST held-out images, with fp32's bootstrap interval."""
    import numpy as np
    from .bootstrap import FrechetReplicates, draw_indices, interval, row_counts
    from .data import load_dataset
    from .features import extract
    from .metrics import fid_and_stats
    data = DataSpec("mnist")
    variants = _inception_variants(device)
    reference = load_dataset(data, "heldout").images[:n]
    paths = [samples] if samples else sorted(Path("results/mnist/runs").glob("cfg_p0.2_w0.3_T32-*/samples.npz"))
    generated = (torch.from_numpy(np.load(paths[0])["images"][:n]) if paths and paths[0].exists()
                 else load_dataset(data, "train").images[:n])
    timed = reference[:128]
    best = {name: float("inf") for name in variants}
    for r in range(rounds):
        names = list(variants)[r % 2:] + list(variants)[:r % 2]
        for name in names:
            start = time.perf_counter()
            extract(variants[name], timed, device=device)
            best[name] = min(best[name], time.perf_counter() - start)
    rows = []
    for name, extractor in variants.items():
        feats, ref = extract(extractor, generated, device=device)["2048"], extract(extractor, reference, device=device)["2048"]
        fid = fid_and_stats(feats, ref)["fid"]
        lo, hi = interval(fid, FrechetReplicates(feats, ref)(row_counts(draw_indices(len(feats), 200), len(feats))))
        rows.append({"extraction": name, "images_per_second": len(timed) / best[name], "fid": fid, "fid_lo": lo,
                     "fid_hi": hi, "samples": str(paths[0]) if paths else "mnist train images", "n": len(feats),
                     "native_bf16": native_bf16(device)[0], "device": device})
    table = pd.DataFrame(rows)
    table["speedup_vs_fp32"] = table.images_per_second / table.images_per_second.iloc[0]
    table["fid_minus_fp32"] = table.fid - table.fid.iloc[0]
    return table


def extraction_batch_sizes(rounds: int, device: str, batches: tuple[int, ...] = (16, 32, 64, 128)) -> pd.DataFrame:
    """Inception extraction throughput (fp32 eager and the fast path) against the batch it runs at, on the
    same MNIST images (as many as the largest batch), timed interleaved (best of `rounds`): whether a batch
    whose activations stay in cache is faster; the measurement behind Inception's `FeatureKind.batch_size`."""
    from .data import load_dataset
    from .features import extract
    variants = _inception_variants(device)
    timed = load_dataset(DataSpec("mnist"), "heldout").images[:max(batches)]
    grid = [(name, batch) for name in variants for batch in batches]
    best = dict.fromkeys(grid, float("inf"))
    for r in range(rounds):
        for name, batch in grid[r % len(grid):] + grid[:r % len(grid)]:
            start = time.perf_counter()
            extract(variants[name], timed, batch_size=batch, device=device)
            best[name, batch] = min(best[name, batch], time.perf_counter() - start)
    table = pd.DataFrame([{"extraction": name, "batch": batch, "images_per_second": len(timed) / seconds,
                           "rounds": rounds, "device": device} for (name, batch), seconds in best.items()])
    table["vs_largest_batch"] = table.images_per_second / table.groupby("extraction").images_per_second.transform("last")
    return table


def roofline_table(out: Path, device: str) -> pd.DataFrame:
    """Achieved FLOP/s of the measured networks beside the device's peak for their dtype: the mnist
    network from throughput.csv (network time per evaluated image) and Inception from inception_fast.csv."""
    from .features import get_extractor
    from .roofline import flops_per_image, peak_flops
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
    if (out / "inception_fast.csv").exists():
        from torch_fidelity.utils import create_feature_extractor
        extractor = get_extractor("inception", DataSpec("mnist"))
        net = create_feature_extractor(extractor.name, extractor.layers, cuda=False, verbose=False)
        flops = flops_per_image(net, torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
        for row in pd.read_csv(out / "inception_fast.csv").itertuples():
            dtype = "bf16" if row.extraction == "fast" and row.native_bf16 else "fp32"
            rows.append({"network": f"FID Inception ({row.extraction})", "dtype": dtype,
                         "gflops_per_image": flops / 1e9, "images_per_second": row.images_per_second})
    table = pd.DataFrame(rows)
    if len(table):
        table["achieved_gflops"] = table.gflops_per_image * table.images_per_second
        peaks = {dtype: peak_flops(device, dtype) for dtype in ("fp32", "bf16")}
        table["peak_gflops"] = [peaks[d][0] / 1e9 for d in table.dtype]
        table["fraction_of_peak"] = table.achieved_gflops / table.peak_gflops
        table["peak_from"] = [peaks[d][1] for d in table.dtype]
    return table


MNIST_TRAIN = (128, 1500)  # the mnist suite's training batch and steps


def decision_table(device: str, batch: int, with_compile: bool) -> pd.DataFrame:
    """Every candidate --fast weighed for the mnist network here, for sampling passes and for training
    steps: time per pass, speed-up over fp32 eager, warm-up, eps error, and which one it chose (steady
    state, and for the work of one mnist cell / one mnist model)."""
    cell_calls = -(-1000 // batch) * 2 * STEPS  # a CFG cell of the mnist suite: 1,000 images, two passes per step
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


def quality_comparison(results: Path) -> pd.DataFrame:
    """The ci suite with fp32, --fast and bf16 forced: each variant minus fp32 with its paired 95%
    bootstrap interval (same seeds, same draws), and in units of the metric's seed sd."""
    variants = {"fp32": {}, "fast": {"fast": True}, "bf16": {"fast": True, "overrides": ["sample.precision=bf16"]}}
    tables, replicates = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in variants.items():
            tables[name] = run_suite("ci", Path(tmp) / name, quiet=True, **options).set_index("cell")
            replicates[name] = {cell: read_replicates(Path(tmp) / name / "ci" / "runs" / run_id)
                                for cell, run_id in tables[name].run_id.items()}
    sd = pd.read_csv(results / "ci" / "tolerances.csv").set_index("metric").practical_size
    rows = []
    for cell in tables["fp32"].index:
        for metric in QUALITY_METRICS:
            row = {"cell": cell, "metric": metric, "fp32": tables["fp32"].at[cell, metric], "seed_sd": sd[metric]}
            for name in ("fast", "bf16"):
                diff, lo, hi = paired_interval(tables[name].at[cell, metric], row["fp32"],
                                               replicates[name][cell][metric], replicates["fp32"][cell][metric])
                row.update({name: tables[name].at[cell, metric], f"{name}_minus_fp32": diff,
                            f"{name}_minus_fp32_lo": lo, f"{name}_minus_fp32_hi": hi,
                            f"{name}_minus_fp32_in_sd": diff / sd[metric]})
            rows.append(row)
    for cell in tables["fp32"].index:  # throughput beside: the ratio to fp32, not in sd units
        row = {"cell": cell, "metric": "images_per_second", "fp32": tables["fp32"].at[cell, "images_per_second"]}
        for name in ("fast", "bf16"):
            row[name] = tables[name].at[cell, "images_per_second"]
            row[f"{name}_over_fp32"] = row[name] / row["fp32"]
        rows.append(row)
    return pd.DataFrame(rows)


def stage_breakdown(suite_dir: Path, name: str) -> list[str]:
    """A suite's stage breakdown (its ledger, and the stages its cells recorded), as report lines headed `name`."""
    from .figures import stage_sections
    from .store import load_runs
    if not (suite_dir / "runs").exists():
        return []
    lines = []
    for title, text, frame in stage_sections(load_runs(suite_dir), suite_dir):
        lines += [f"## {name}: {title.lower()}", "", text, "",
                  frame.to_markdown(index=False, floatfmt=".3f"), ""]
    return lines


def write_report(out: Path) -> Path:
    """report.md from whatever of throughput.csv, ratios.csv and fast_vs_fp32.csv exist."""
    commands = json.loads((out / "commands.json").read_text()) if (out / "commands.json").exists() else {}
    lines = ["# Throughput and the fast path", "", "Every number below is from the CSV files beside this report, "
             "measured on the machine described at the end, by:", ""]
    lines += [f"- `{cmd}` → `{name}`" for name, cmd in sorted(commands.items())] + [""]
    if (out / "throughput.csv").exists():
        table = pd.read_csv(out / "throughput.csv")
        lines += ["## Sampling throughput (fastest of the interleaved rounds; medians beside)", "",
                  table[["config", "images_per_second", "cost_vs_unguided", "median_cost_vs_unguided", "nfe_per_image",
                         "seconds", "median_seconds", "network_seconds", "classifier_seconds", "other_seconds",
                         "network_dtype", "memory_format", "compiled", "rounds"]]
                  .to_markdown(index=False, floatfmt=".3f"), ""]
    if (out / "fastpath_decision.csv").exists():
        lines += ["## What --fast chose here, and why (bench/autotune.py)", "",
                  "Every candidate timed interleaved on the mnist network (best of 3 rounds of 3 passes, perturbed random "
                  "weights), for sampling passes and for training steps (forward + backward); bf16 is eligible only "
                  "within 2% relative RMS error of fp32's eps; compile only where its saving repays its warm-up over "
                  "the work (one mnist cell's network calls; one mnist model's 1,500 training steps).", "",
                  pd.read_csv(out / "fastpath_decision.csv").to_markdown(index=False, floatfmt=".4g"), ""]
    if (out / "inception_fast.csv").exists():
        lines += ["## Inception feature extraction: fp32 eager vs the fast path", "",
                  "Throughput on 128 MNIST images (best of the interleaved rounds) and the FID each gives on the same "
                  "samples and reference, with fp32's 95% bootstrap interval: the fast path's FID change must stay far "
                  "inside it.", "", pd.read_csv(out / "inception_fast.csv").to_markdown(index=False, floatfmt=".4g"), ""]
    if (out / "inception_batch.csv").exists():
        lines += ["## Inception feature extraction against its batch size", "",
                  "The same 128 MNIST images extracted at each batch size, interleaved (best of the rounds); "
                  "`vs_largest_batch` is the throughput over that of the largest batch timed.", "",
                  pd.read_csv(out / "inception_batch.csv").to_markdown(index=False, floatfmt=".4g"), ""]
    if (out / "roofline.csv").exists():
        lines += ["## Roofline: achieved FLOP/s against the peak", "",
                  "FLOPs per image from torch's flop counter; peak from cores x clock x FLOPs per cycle "
                  "(bench/roofline.py states the derivation; `peak_from` shows it per row).", "",
                  pd.read_csv(out / "roofline.csv").to_markdown(index=False, floatfmt=".4g"), ""]
    lines += stage_breakdown(Path("results") / "mnist", "The `mnist` suite (every invocation)")
    lines += stage_breakdown(out / "mnist_cold", "The `mnist` suite in one cold-cache run (`mnist_cold/`, see the notes)")
    if (out / "ratios.csv").exists():
        lines += ["## Targets", "", pd.read_csv(out / "ratios.csv").to_markdown(index=False, floatfmt=".3f"), ""]
    if (out / "profile_batch_sizes.csv").exists():
        lines += ["## Where a doubled batch loses time (torch.profiler, self time of 10 forward passes)", "",
                  pd.read_csv(out / "profile_batch_sizes.csv").to_markdown(index=False, floatfmt=".3f"), ""]
    if (out / "fast_vs_fp32.csv").exists():
        q = pd.read_csv(out / "fast_vs_fp32.csv")
        worst = q[["fast_minus_fp32_in_sd", "bf16_minus_fp32_in_sd"]].abs().max()
        speed = q[q.metric == "images_per_second"][["fast_over_fp32", "bf16_over_fp32"]].median()
        lines += ["## Does the fast path change the science? (ci cells)", "",
                  "Differences are in units of the seed standard deviation measured for the CI gate "
                  "(results/ci/tolerances.csv): |difference| < 1 sd means the fast path moves the metric less "
                  "than drawing another set of sample seeds does.", "",
                  q.to_markdown(index=False, floatfmt=".3f"), "",
                  f"Largest |difference|: fast path {worst.iloc[0]:.2f} sd, bf16 {worst.iloc[1]:.2f} sd. "
                  f"Median throughput over fp32 on these cells: fast path {speed.iloc[0]:.2f}x, bf16 {speed.iloc[1]:.2f}x.", ""]
    lines += notes_section(out)
    if (out / "environment.json").exists():
        lines += ["## Machine and commit of each measurement", "", "```", (out / "environment.json").read_text().strip(),
                  "```", ""]
    path = out / "report.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="default results/perf, results/perf/cuda for a GPU (tagged by device)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast where it is not native")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to warm up on CPU)")
    parser.add_argument("--quality", action="store_true", help="also run the ci suite fp32 vs fast vs bf16")
    parser.add_argument("--profile", action="store_true", help="also profile the network at batch 256 vs 512")
    parser.add_argument("--features", action="store_true",
                        help="also time Inception extraction fp32 vs fast and compare their FID")
    parser.add_argument("--feature-batches", action="store_true",
                        help="also time Inception extraction (fp32 and fast) at batch sizes 16 to 128")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    measures = not args.skip_throughput or args.profile or args.features or args.feature_batches or args.quality
    try:
        if measures:  # with nothing to measure, the report is rebuilt from the stored files on any machine
            check_device(args.device)
    except DeviceError as err:
        parser.error(str(err))
    out = Path(args.out or ("results/perf/cuda" if args.device.startswith("cuda") else "results/perf"))
    command = "python -m bench.perf " + " ".join(argv if argv is not None else sys.argv[1:])
    env = {**environment(args.device), "native_bf16": native_bf16(args.device)}
    commands = json.loads((out / "commands.json").read_text()) if (out / "commands.json").exists() else {}
    environments = json.loads((out / "environment.json").read_text()) if (out / "environment.json").exists() else {}
    if not args.skip_throughput:
        commands.update({"throughput.csv": command, "ratios.csv": command})
        environments["throughput.csv"] = env
        table = measure_throughput(args.rounds, args.batch, args.device, args.bf16, args.compile)
        atomic_write_bytes(out / "throughput.csv", table.to_csv(index=False).encode())
        commands["fastpath_decision.csv"] = command
        environments["fastpath_decision.csv"] = env
        decisions = decision_table(args.device, args.batch, args.compile)
        atomic_write_bytes(out / "fastpath_decision.csv", decisions.to_csv(index=False).encode())
    if (out / "throughput.csv").exists():  # ratios are a function of the stored measurement
        ratio_table = ratios(pd.read_csv(out / "throughput.csv"))
        atomic_write_bytes(out / "ratios.csv", ratio_table.to_csv(index=False).encode())
        print(ratio_table.to_string(index=False))
    if args.profile:
        commands["profile_batch_sizes.csv"] = command
        environments["profile_batch_sizes.csv"] = env
        atomic_write_bytes(out / "profile_batch_sizes.csv", profile_batch_sizes(args.device).to_csv(index=False).encode())
    if args.features:
        commands["inception_fast.csv"] = command
        environments["inception_fast.csv"] = env
        atomic_write_bytes(out / "inception_fast.csv",
                           inception_extraction(args.rounds, args.device).to_csv(index=False).encode())
    if args.feature_batches:
        commands["inception_batch.csv"] = command
        environments["inception_batch.csv"] = env
        atomic_write_bytes(out / "inception_batch.csv",
                           extraction_batch_sizes(args.rounds, args.device).to_csv(index=False).encode())
    if measures and ((out / "throughput.csv").exists() or (out / "inception_fast.csv").exists()):
        commands["roofline.csv"] = command
        atomic_write_bytes(out / "roofline.csv", roofline_table(out, args.device).to_csv(index=False).encode())
    if args.quality:
        commands["fast_vs_fp32.csv"] = command
        environments["fast_vs_fp32.csv"] = env
        atomic_write_bytes(out / "fast_vs_fp32.csv", quality_comparison(Path("results")).to_csv(index=False).encode())
    atomic_write_bytes(out / "commands.json", json.dumps(commands, indent=1, sort_keys=True).encode())
    atomic_write_bytes(out / "environment.json", json.dumps(environments, indent=1, sort_keys=True).encode())
    print(f"wrote {write_report(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
