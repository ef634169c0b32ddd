"""`python -m bench.runner.draws RUN_DIR`: how many bootstrap draws an interval needs, measured on a stored cell.

For each draw count B, the cell's evaluator-space FID interval is recomputed with several independent
bootstrap seeds; the spread (sd) of its endpoints across seeds is the Monte Carlo error that B leaves,
to compare with the interval's width. Features are extracted again from the cell's samples.npz.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.evaluation.features import reference_features
from bench.evaluation.scoring import cell_extractors, sample_features
from bench.infra.store import cache_root, read_json
from bench.spec.hashing import from_dict
from bench.spec.sections import RunSpec
from bench.stats.bootstrap import FrechetReplicates, draw_indices, row_counts
from bench.stats.intervals import interval


def endpoint_error(run_dir: Path, draw_counts: list[int], seeds: int) -> pd.DataFrame:
    spec = from_dict(RunSpec, read_json(run_dir / "spec.json"))
    extractors = cell_extractors(spec)
    with np.load(run_dir / "samples.npz") as stored:
        images = torch.from_numpy(stored["images"])
    main = extractors.main
    feats = sample_features(extractors, images)[main.fid_layer]
    ref = reference_features(spec.data, spec.eval.reference_split, main, cache_root())[main.fid_layer]
    replicates = FrechetReplicates(feats, ref)
    n = len(feats)
    point = replicates(torch.ones(1, n, dtype=torch.float64))[0]
    rows = []
    for draws in draw_counts:
        ends = np.array([interval(point, replicates(row_counts(draw_indices(n, draws, seed=s), n))) for s in range(seeds)])
        rows.append({"draws": draws, "fid": point, "lo_mean": ends[:, 0].mean(), "hi_mean": ends[:, 1].mean(),
                     "lo_mc_sd": ends[:, 0].std(ddof=1), "hi_mc_sd": ends[:, 1].std(ddof=1), "seeds": seeds})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runner.draws", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--draws", type=int, nargs="+", default=[200, 500, 1000])
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args(argv)
    if not (args.run_dir / "samples.npz").exists():
        print(f"error: {args.run_dir} has no samples.npz (samples are kept only where the cell ran)", file=sys.stderr)
        return 2
    print(endpoint_error(args.run_dir, args.draws, args.seeds).to_string(index=False, float_format="%.3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
