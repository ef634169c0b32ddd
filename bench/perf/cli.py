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
from bench.perf.decision import decision_table
from bench.perf.extraction import extraction_batch_sizes, inception_extraction
from bench.perf.profile import profile_batch_sizes
from bench.perf.quality import quality_comparison
from bench.perf.report import write_report
from bench.perf.roofline import roofline_table
from bench.perf.throughput import measure_throughput, ratios


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
