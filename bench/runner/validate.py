"""Everything about a list of cells that a registry decides, checked before any work and without
writing anything (so --dry-run uses it too)."""
from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from bench.data.datasets import DATASETS, PACKAGED, DatasetError, load_dataset, nominal_shape
from bench.evaluation import dinov2, reference_stats
from bench.evaluation.features import FEATURES, inception_weights_path
from bench.evaluation.metrics import check_sample_count
from bench.guidance import make_guidance, stub_context
from bench.sampling.grids import GRIDS, evaluated_range
from bench.sources import check_source
from bench.infra.store import ResultsError, results_folder
from bench.spec.errors import SpecError
from bench.suites.cells import Cell


def validate_cells(cells: Sequence[Cell]) -> None:
    """Everything about the cells that a registry decides, checked before any work and without
    writing anything (so --dry-run can use it): the dataset and its root (a packaged dataset is read, so a
    missing one stops here), an image size the network
    can halve at every level, the guidance method and its parameters (built once against stub
    networks), the feature extractor, and a sample count above its feature dimension."""
    for cell in cells:
        spec = cell.spec
        DATASETS.check(spec.data.name)
        if spec.data.root and not Path(spec.data.root).expanduser().exists():
            raise DatasetError(f"data.root={spec.data.root!r} does not exist; name the folder that holds the dataset")
        if not spec.data.root and spec.data.name in PACKAGED:  # readable here, before the plan prices the run
            load_dataset(spec.data, spec.eval.reference_split)
        side = nominal_shape(spec.data)[-1]
        factor = 2 ** (len(spec.net.channel_mult) - 1)
        if side % factor:
            raise SpecError(f"data.size={spec.data.size}: images of side {side} cannot be halved {factor.bit_length() - 1} "
                            f"times by a network with net.channel_mult={list(spec.net.channel_mult)}; use a multiple of {factor}")
        source = check_source(spec.model, 0)
        if source.latent(spec.model) and spec.sample.clip_x:
            raise SpecError("a latent model's samples are latents, which clipping to [-1, 1] would corrupt: "
                            "set sample.clip_x=false")
        make_guidance(spec.guidance.method, replace(stub_context(), null_label=source.null_label(spec.model)),
                      spec.guidance.space, **spec.guidance.kwargs())
        check_grid_range(spec, source.noise_range(spec.model))
        kind = FEATURES[spec.eval.features]
        dinov2.check_cells([spec])
        if spec.eval.reference_stats:
            reference_stats.for_extractor(spec.eval.reference_stats, spec.eval.features, kind.feature_dim)
        if kind.full_rank:
            check_sample_count(spec.sample.num_samples, kind.feature_dim)
        check_sample_memory(spec.sample.num_samples, nominal_shape(spec.data))


def check_grid_range(spec, noise_range: tuple[float, float]) -> None:
    """A grid other than the paper's cosine one is evaluated only where the model was trained (its lambdas,
    from the source's record), else a SpecError naming both ranges in the grid's own variable."""
    grid = GRIDS[spec.sample.grid]
    if not grid.bounded:
        return
    low, high = evaluated_range(spec.sample)
    tolerance = 1e-9 * max(1.0, abs(low), abs(high))
    if low < noise_range[0] - tolerance or high > noise_range[1] + tolerance:
        def shown(a: float, b: float) -> str:
            return (f"lambda in [{a:.4g}, {b:.4g}] (sigma in [{math.exp(-b / 2):.4g}, {math.exp(-a / 2):.4g}], "
                    f"flow t in [{1 / (1 + math.exp(b / 2)):.4g}, {1 / (1 + math.exp(a / 2)):.4g}])")
        raise SpecError(f"sample.grid={spec.sample.grid!r} evaluates the model at {shown(low, high)}, outside the "
                        f"noise levels it was trained at, {shown(*noise_range)}; set the grid's ends "
                        f"({', '.join('sample.' + f for f in grid.fields)}) within them")


def memory_bytes() -> int:
    """Physical memory of this machine (0 where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def check_sample_memory(num_samples: int, shape: tuple[int, ...]) -> None:
    """A cell's samples are held in memory as uint8 (and as model-range floats while a batch is
    decoded), so those that do not fit in half of this machine's memory are refused up front."""
    need, have = num_samples * math.prod(shape), memory_bytes()
    if have and need > have // 2:
        fits = max(1, have // 2 // math.prod(shape))
        raise SpecError(f"sample.num_samples={num_samples:,} images of shape {'x'.join(map(str, shape))} need "
                        f"{need / 2**30:,.1f} GiB held in memory, more than half of this machine's "
                        f"{have / 2**30:,.1f} GiB; use at most {fits:,} per cell (split seeds over cells with sample.seed)")


def check_destination(suite_dir: Path) -> None:
    """The results folder can be written (created if missing): proven by writing and removing a probe
    file before any work, so a read-only or full filesystem stops the run before its first cell."""
    results_folder(suite_dir.parent)
    probe = suite_dir / f".write-probe-{os.getpid()}"
    try:
        suite_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ResultsError(f"cannot write results to {suite_dir} ({err.strerror or type(err).__name__}); "
                           "name a writable folder with --out (or out= in Python)") from None


def check_named_files(inception_weights: str | None) -> None:
    """A weights file the user named is checked whether or not a cell uses it: a typo is an error,
    not something silently ignored."""
    if inception_weights or os.environ.get("BENCH_INCEPTION_WEIGHTS"):
        inception_weights_path(inception_weights)
