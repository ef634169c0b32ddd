"""`python -m bench.perf`: sampling throughput ratios measured in one run, the fast path's decision
and its effect on FID/IS, Inception extraction and the roofline; writes results/perf/*.csv and
report.md (results/perf/cuda/ for a GPU)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

from bench.infra.devices import DeviceError, check_device
from bench.infra.envinfo import environment
from bench.infra.store import atomic_write_bytes
from bench.models.fastpath import native_bf16
from bench.perf.coldrun import cold_vs_stored, plan_vs_run
from bench.perf.decision import decision_table
from bench.perf.extraction import extraction_batch_sizes, inception_extraction
from bench.perf.pipeline import pipeline_throughput
from bench.perf.profile import profile_batch_sizes
from bench.perf.quality import quality_comparison
from bench.perf.report import write_report
from bench.perf.roofline import roofline_table
from bench.perf.throughput import measure_throughput, ratios

# (the file an experiment writes, the option that asks for it, how it is measured)
EXPERIMENTS = (
    ("throughput.csv", "throughput", lambda a: measure_throughput(a.rounds, a.batch, a.device, a.bf16, a.compile)),
    ("fastpath_decision.csv", "throughput", lambda a: decision_table(a.device, a.batch, a.compile)),
    ("profile_batch_sizes.csv", "profile", lambda a: profile_batch_sizes(a.device)),
    ("inception_runtimes.csv", "features", lambda a: inception_extraction(a.rounds, a.device)),
    ("inception_batch.csv", "feature_batches", lambda a: extraction_batch_sizes(a.rounds, a.device)),
    ("fast_vs_fp32.csv", "quality", lambda a: quality_comparison(Path("results"))),
    ("pipeline.csv", "pipeline", lambda a: pipeline_throughput(a.device, a.pipeline_samples, a.pipeline_steps)),
    ("mnist_cold_vs_stored.csv", "cold", lambda a: cold_vs_stored(Path(a.cold_run), Path("results/mnist"))),
    ("plan_vs_run.csv", "cold", lambda a: plan_vs_run(Path(a.cold_run))),
)


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
                        help="also time Inception extraction by every runtime and the fast path, and compare their FID")
    parser.add_argument("--feature-batches", action="store_true",
                        help="also time Inception extraction (fp32 and fast) at batch sizes 16 to 128")
    parser.add_argument("--pipeline", action="store_true",
                        help="also time the whole pipeline (sampling, Inception features, FID + bootstrap) on a "
                             "random-weight ADM ImageNet 64x64 network")
    parser.add_argument("--pipeline-samples", type=int, default=10_000)
    parser.add_argument("--pipeline-steps", type=int, default=25)
    parser.add_argument("--cold", action="store_true",
                        help="compare the cold-cache mnist run in --cold-run with the stored suite, and price the same "
                             "run from an empty cache (timed now) against its stage ledger")
    parser.add_argument("--cold-run", default="results/perf/mnist_cold")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    wanted = {"throughput": not args.skip_throughput, "profile": args.profile, "features": args.features,
              "feature_batches": args.feature_batches, "quality": args.quality, "pipeline": args.pipeline,
              "cold": args.cold}
    measures = any(wanted.values())
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

    def write(name: str, table: pd.DataFrame, machine: bool = True) -> None:
        commands[name] = command
        if machine:
            environments[name] = env
        atomic_write_bytes(out / name, table.to_csv(index=False).encode())
    for name, flag, measure in EXPERIMENTS:
        if wanted[flag]:
            write(name, measure(args))
    if (out / "throughput.csv").exists():  # ratios are a function of the stored measurement
        ratio_table = ratios(pd.read_csv(out / "throughput.csv"))
        if wanted["throughput"]:
            commands["ratios.csv"] = command
        atomic_write_bytes(out / "ratios.csv", ratio_table.to_csv(index=False).encode())
        print(ratio_table.to_string(index=False))
    if measures and any((out / name).exists() for name in ("throughput.csv", "inception_runtimes.csv",
                                                           "feature_runtime_decision.json")):
        write("roofline.csv", roofline_table(out, args.device), machine=False)
    atomic_write_bytes(out / "commands.json", json.dumps(commands, indent=1, sort_keys=True).encode())
    atomic_write_bytes(out / "environment.json", json.dumps(environments, indent=1, sort_keys=True).encode())
    print(f"wrote {write_report(out)}")
    return 0
