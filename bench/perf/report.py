"""results/perf/report.md from whatever measurement files exist beside it, with the command and the
machine of each."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.infra.store import atomic_write_bytes, notes_section


def stage_breakdown(suite_dir: Path, name: str) -> list[str]:
    """A suite's stage breakdown (its ledger, and the stages its cells recorded), as report lines headed `name`."""
    from bench.infra.store import load_runs
    from bench.report.markdown import stage_sections
    if not (suite_dir / "runs").exists():
        return []
    lines = []
    for title, text, frame in stage_sections(load_runs(suite_dir), suite_dir):
        lines += [f"## {name}: {title.lower()}", "", text, "",
                  frame.to_markdown(index=False, floatfmt=".3f"), ""]
    return lines


def csv_section(out: Path, name: str, title: str, text: str = "", floatfmt: str = ".4g") -> list[str]:
    """A report section showing the measurement file `name`, or nothing where it was not measured."""
    if not (out / name).exists():
        return []
    return [f"## {title}", "", *([text, ""] if text else []),
            pd.read_csv(out / name).to_markdown(index=False, floatfmt=floatfmt), ""]


def runtime_decision_section(out: Path) -> list[str]:
    """The feature-runtime decision a run recorded (feature_runtime_decision.json), as a table."""
    path = out / "feature_runtime_decision.json"
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    table = pd.DataFrame([{"runtime": name, **row} for name, row in record["candidates"].items()])
    return ["## Which runtime computes Inception's features here (bench/evaluation/runtime_choice.py)", "",
            f"The decision the cold-cache mnist run made on {record['machine']} for images {record['shape']} at batch "
            f"{record['batch']}: every runtime checked against torch eager on {record['checked_on']} (eligible within "
            f"{record['tolerance']:g} relative), timed on {record['timed_on']}; chosen: **{record['chosen']}** "
            f"({record['versions']}).", "", table.to_markdown(index=False, floatfmt=".4g"), ""]


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
    lines += csv_section(out, "fastpath_decision.csv", "What --fast chose here, and why (bench/models/autotune.py)",
                         "Every candidate timed interleaved on the mnist network (best of 3 rounds of 3 passes, perturbed "
                         "random weights), for sampling passes and for training steps (forward + backward); bf16 is "
                         "eligible only within 2% relative RMS error of fp32's eps; compile only where its saving repays "
                         "its warm-up over the work (one mnist cell's network calls; one mnist model's training).")
    lines += runtime_decision_section(out)
    lines += csv_section(out, "inception_runtimes.csv", "Inception feature extraction: every runtime, fp32 eager and the fast path",
                         "Throughput on 128 MNIST images at the extraction batch (best of the interleaved rounds), each "
                         "one's largest feature difference from fp32 eager (relative to the largest feature), and the FID "
                         "each gives on the same samples and reference, with its 95% bootstrap interval. A runtime is used "
                         "by default only within 1e-4 of eager (bench/evaluation/runtime_choice.py); the bf16 fast path "
                         "stays opt-in.")
    lines += csv_section(out, "inception_fast.csv", "Inception feature extraction: fp32 eager vs the fast path (an earlier measurement)",
                         "Throughput on 128 MNIST images in one batch (best of the interleaved rounds) and the FID each gives "
                         "on the same samples and reference, with fp32's 95% bootstrap interval.")
    lines += csv_section(out, "inception_batch.csv", "Inception feature extraction against its batch size",
                         "The same 128 MNIST images extracted at each batch size, interleaved (best of the rounds); "
                         "`vs_largest_batch` is the throughput over that of the largest batch timed.")
    lines += csv_section(out, "roofline.csv", "Roofline: achieved FLOP/s against the peak",
                         "FLOPs per image from torch's flop counter; peak from cores x clock x FLOPs per cycle "
                         "(bench/perf/roofline.py states the derivation; `peak_from` shows it per row); attainable: a "
                         "2048 x 2048 matrix product in the dtype, timed in the same run.")
    lines += csv_section(out, "pipeline.csv", "The whole pipeline on an imagenet64-shaped workload (bench/perf/pipeline.py)",
                         "A random-weight ADM ImageNet 64x64 network sampled with CFG, Inception features of each batch "
                         "as it is sampled, FID with its bootstrap against noise images' features; `roofline_seconds` is "
                         "the sampling network's FLOPs at the device's nominal fp32 peak.")
    lines += csv_section(out, "plan_vs_run.csv", "The plan against the run (bench/perf/coldrun.py)",
                         "`--dry-run`'s price of the mnist suite from an empty cache and no ledgers (every rate timed "
                         "then), beside the minutes each stage took in the cold-cache run of `mnist_cold/`.")
    lines += csv_section(out, "mnist_cold_vs_stored.csv", "The cold-cache run against the stored suite",
                         "Each metric of each cold-run cell beside the stored cell of the same run id, with its tolerance, "
                         "and the cell's bootstrap seconds as a share of its sampling, feature and scoring seconds.")
    lines += stage_breakdown(Path("results") / "mnist", "The `mnist` suite (every invocation)")
    lines += stage_breakdown(out / "mnist_cold", "The `mnist` suite in one cold-cache run (`mnist_cold/`, see the notes)")
    lines += csv_section(out, "ratios.csv", "Targets", floatfmt=".3f")
    lines += csv_section(out, "profile_batch_sizes.csv",
                         "Where a doubled batch loses time (torch.profiler, self time of 10 forward passes)", floatfmt=".3f")
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
