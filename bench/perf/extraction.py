"""Inception feature extraction: fp32 eager against its fast path (throughput and the FID each gives
on the same samples), and throughput against the extraction batch."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from bench.models.fastpath import native_bf16
from bench.spec.sections import DataSpec


def _inception_variants(device: str) -> dict:
    """The FID Inception as fp32 eager and on its fast path, each built (weights converted) and warmed up."""
    from bench.data.datasets import load_dataset
    from bench.evaluation.features import extract, get_extractor
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

    from bench.data.datasets import load_dataset
    from bench.evaluation.features import extract
    from bench.evaluation.metrics import fid_and_stats
    from bench.stats.bootstrap import FrechetReplicates, draw_indices, row_counts
    from bench.stats.intervals import interval
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
    whose activations stay in cache is faster; the measurement behind Inception's CPU entry in `FeatureKind.batch_sizes`."""
    from bench.data.datasets import load_dataset
    from bench.evaluation.features import extract
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
