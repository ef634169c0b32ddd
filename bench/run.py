"""`python -m bench.run --suite NAME`: run every cell of a suite and write its results.

Per cell: results/<suite>/runs/<run-id>/{spec.json, metrics.json, env.json, grid.png}
(samples.npz is kept beside them, git-ignored). A cell whose metrics.json exists for the
same spec is skipped, so a rerun resumes an interrupted suite.
"""
from __future__ import annotations

import argparse
import io
import fnmatch
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .config import stable_hash, to_dict
from .data import load_dataset, to_uint8
from .envinfo import environment
from .sampling import sample_cell
from .store import atomic_write_bytes, atomic_write_json, read_json
from .suites import SUITES, Cell, get_suite
from .train import train_diffusion
from .grids import save_grid


def run_cell(cell: Cell, run_dir: Path, *, device: str, quiet: bool) -> dict:
    spec = cell.spec
    dataset = load_dataset(spec.data, "train")
    t0 = time.perf_counter()
    model = train_diffusion(spec.data, spec.net, spec.train, device=device, quiet=quiet)
    train_seconds = time.perf_counter() - t0
    result = sample_cell(spec, model, dataset.shape, dataset.num_classes, device=device, quiet=quiet)
    images = to_uint8(result.images)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.numpy(), labels=result.labels.numpy())
    atomic_write_bytes(run_dir / "samples.npz", buffer.getvalue())
    save_grid(run_dir / "grid.png", images[:100])
    metrics = {"cell": cell.name, "run_id": cell.run_id, "spec_hash": stable_hash(spec),
               "num_samples": len(images), "model_seconds": train_seconds, **result.timings()}
    atomic_write_json(run_dir / "env.json", environment(device))
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def is_done(cell: Cell, run_dir: Path) -> bool:
    path = run_dir / "metrics.json"
    if not path.exists():
        return False
    try:
        return read_json(path).get("spec_hash") == stable_hash(cell.spec)
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", help="suite to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument("--out", default="results", help="results root (default: results)")
    parser.add_argument("--only", default="*", help="run only cells whose name matches this glob")
    parser.add_argument("--force", action="store_true", help="recompute cells that already have results")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    if args.list:
        for suite in SUITES.values():
            print(f"{suite.name:10s} {len(suite.build()):4d} cells  {suite.description}")
        return 0
    if not args.suite:
        parser.error("--suite NAME is required (or --list)")
    try:
        suite = get_suite(args.suite)
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    cells = [c for c in suite.build() if fnmatch.fnmatch(c.name, args.only)]
    suite_dir = Path(args.out) / suite.name
    start = time.perf_counter()
    for i, cell in enumerate(cells, 1):
        run_dir = suite_dir / "runs" / cell.run_id
        if not args.force and is_done(cell, run_dir):
            print(f"[{i}/{len(cells)}] {cell.name}: done already ({run_dir})")
            continue
        atomic_write_json(run_dir / "spec.json", to_dict(cell.spec))
        metrics = run_cell(cell, run_dir, device=args.device, quiet=args.quiet)
        print(f"[{i}/{len(cells)}] {cell.name}: {metrics['images_per_second']:.1f} img/s -> {run_dir}")
    print(f"suite {suite.name}: {len(cells)} cells in {time.perf_counter() - start:.1f}s; results in {suite_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
