"""Inception feature extraction: every runtime against fp32 eager and the bf16 fast path (throughput
interleaved, feature differences, and the FID each gives on the same samples), and throughput against
the extraction batch."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from bench.models.fastpath import native_bf16
from bench.spec.sections import DataSpec


def _inception_variants(device: str) -> dict:
    """The FID Inception's features function on each runtime that can run here (bench/evaluation/runtimes.py)
    and on the bf16 fast path, each built (exported where it needs to be) and warmed up."""
    from bench.data.datasets import load_dataset
    from bench.evaluation.features import _fast_features, _module, get_extractor
    from bench.evaluation.runtimes import RUNTIMES
    from bench.infra.store import cache_root
    exact = get_extractor("inception", DataSpec("mnist"))
    warm = load_dataset(DataSpec("mnist"), "heldout").images[:16]
    module = _module(exact, device)
    variants = {("fp32 eager" if name == "torch-eager" else name): RUNTIMES[name].build(module, tuple(warm.shape[1:]),
                                                                                        cache_root() / "feature-runtimes",
                                                                                        exact.sha256)
                for name in RUNTIMES if RUNTIMES[name].unavailable(device) is None}
    variants["fast"] = _fast_features(_module(replace(exact, fast=True), device), device)
    for features in variants.values():
        features(warm)
    return variants


def _features(features, images: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([features(part)[0] for part in images.split(batch)])


def inception_extraction(rounds: int, device: str, samples: Path | None = None, n: int = 1000) -> pd.DataFrame:
    """Inception feature extraction by every runtime and by the bf16 fast path (eval.fast_features), timed
    interleaved on the same 128 images at the kind's batch (best of `rounds`), each runtime's largest feature
    difference from fp32 eager, and the FID each gives: `samples` (a cell's samples.npz, default the mnist
    suite's w=0.3 cell) against the first n MNIST held-out images, with fp32 eager's bootstrap interval."""
    import numpy as np

    from bench.data.datasets import load_dataset
    from bench.evaluation.features import FEATURES
    from bench.evaluation.metrics import fid_and_stats
    from bench.evaluation.runtime_choice import relative_error
    from bench.stats.bootstrap import FrechetReplicates, draw_indices, row_counts
    from bench.stats.intervals import interval
    data = DataSpec("mnist")
    batch = FEATURES["inception"].batch_size(device)
    variants = _inception_variants(device)
    reference = load_dataset(data, "heldout").images[:n]
    paths = [samples] if samples else sorted(Path("results/mnist/runs").glob("cfg_p0.2_w0.3_T32-*/samples.npz"))
    generated = (torch.from_numpy(np.load(paths[0])["images"][:n]) if paths and paths[0].exists()
                 else load_dataset(data, "train").images[:n])
    timed = reference[:128]
    best = {name: float("inf") for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            _features(variants[name], timed, batch)
            best[name] = min(best[name], time.perf_counter() - start)
    rows, eager = [], None
    for name, features in variants.items():
        feats, ref = _features(features, generated, batch), _features(features, reference, batch)
        eager = eager if eager is not None else (feats, ref)
        fid = fid_and_stats(feats, ref)["fid"]
        lo, hi = interval(fid, FrechetReplicates(feats, ref)(row_counts(draw_indices(len(feats), 200), len(feats))))
        rows.append({"extraction": name, "images_per_second": len(timed) / best[name], "batch": batch, "fid": fid,
                     "fid_lo": lo, "fid_hi": hi,
                     "feature_error_vs_eager": max(relative_error((feats,), (eager[0],)), relative_error((ref,), (eager[1],))),
                     "samples": str(paths[0]) if paths else "mnist train images", "n": len(feats),
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
    variants = _inception_variants(device)
    timed = load_dataset(DataSpec("mnist"), "heldout").images[:max(batches)]
    grid = [(name, batch) for name in variants for batch in batches]
    best = dict.fromkeys(grid, float("inf"))
    for r in range(rounds):
        for name, batch in grid[r % len(grid):] + grid[:r % len(grid)]:
            start = time.perf_counter()
            _features(variants[name], timed, batch)
            best[name, batch] = min(best[name, batch], time.perf_counter() - start)
    table = pd.DataFrame([{"extraction": name, "batch": batch, "images_per_second": len(timed) / seconds,
                           "rounds": rounds, "device": device} for (name, batch), seconds in best.items()])
    table["vs_largest_batch"] = table.images_per_second / table.groupby("extraction").images_per_second.transform("last")
    return table
