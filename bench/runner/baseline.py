"""`python -m bench.regression --suite ci --seeds 0 1000 2000 3000`: re-measure the CI gate's files.

Runs the suite once per sample-seed set and writes results/<suite>/baseline.csv and its bootstrap
replicates (first seed set) and tolerances.csv (the practical size per metric: the standard deviation
across the seed sets, pooled over cells, with the command that measured it)."""
from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.claims.gate import BASELINE_REPLICATES, CHECKED_METRICS, REPO_RESULTS, suite_replicates
from bench.infra.store import atomic_write_bytes
from bench.runner.suite import run_suite


def measure(suite: str, seeds: list[int], results: Path = REPO_RESULTS) -> None:
    """Run the suite once per sample-seed set; write baseline.csv and its replicates (first seed)
    and tolerances.csv (practical size = sd across seed sets, pooled over cells)."""
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            table = run_suite(suite, Path(tmp) / f"seed{seed}", overrides=[f"sample.seed={seed}"], quiet=True)
            tables.append(table.assign(seed_set=seed))
        replicates = suite_replicates(tables[0], Path(tmp) / f"seed{seeds[0]}" / suite)
    both = pd.concat(tables)
    sd = both.groupby("cell")[list(CHECKED_METRICS)].std()
    pooled = np.sqrt((sd ** 2).mean())
    tolerances = pd.DataFrame({"metric": CHECKED_METRICS, "practical_size": [pooled[m] for m in CHECKED_METRICS],
                               "seed_sets": len(seeds),
                               "command": f"python -m bench.regression --suite {suite} --seeds {' '.join(map(str, seeds))}"})
    baseline = tables[0][["cell", *CHECKED_METRICS]]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: v for k, v in replicates.items() if k.split("|")[1] in CHECKED_METRICS})
    atomic_write_bytes(results / suite / BASELINE_REPLICATES, buffer.getvalue())
    atomic_write_bytes(results / suite / "baseline.csv", baseline.to_csv(index=False).encode())
    atomic_write_bytes(results / suite / "tolerances.csv", tolerances.to_csv(index=False).encode())
    print(tolerances.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.regression", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="ci")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1000, 2000, 3000])
    args = parser.parse_args(argv)
    measure(args.suite, args.seeds)
    return 0
