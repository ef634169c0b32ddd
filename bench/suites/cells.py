"""Cells and suites: a cell is a name and a RunSpec, a suite a registered function returning cells,
and a selection is a suite's cells by glob, with KEY=VALUE overrides, then one round-robin shard.

A cell's run id is its name and the stable hash of its full spec; cells that share (data, net, train)
share one trained model. The helpers build the paper's two kinds of cell (CFG at w, classifier
guidance at scale s) and vary a base spec (p_uncond, steps, sample seeds, Inception FID).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from bench.spec.errors import BenchError
from bench.spec.hashing import stable_hash
from bench.spec.overrides import apply_overrides, parse_overrides
from bench.spec.registry import Registry
from bench.spec.sections import GuidanceSpec, RunSpec


@dataclass(frozen=True)
class Cell:
    name: str
    spec: RunSpec

    @property
    def run_id(self) -> str:
        return f"{self.name}-{stable_hash(self.spec, 8)}"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    build: Callable[[], list[Cell]]


SUITES: Registry[Suite] = Registry("suite", "suites")


def register_suite(name: str, description: str) -> Callable[[Callable[[], list[Cell]]], Callable[[], list[Cell]]]:
    def add(fn: Callable[[], list[Cell]]) -> Callable[[], list[Cell]]:
        SUITES.add(name, Suite(name, description, fn))
        return fn
    return add


class SelectionError(BenchError, ValueError):
    """A --shard or --only that selects nothing or is malformed."""


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 1 <= I <= N; cells are dealt round-robin in suite order, so shards are disjoint and stable."""
    try:
        shard, shards = (int(v) for v in text.split("/"))
    except ValueError:
        raise SelectionError(f"--shard {text!r}: expected I/N such as 2/8") from None
    if not 1 <= shard <= shards:
        raise SelectionError(f"--shard {text!r}: I must be between 1 and N")
    return shard, shards


def select_cells(suite: str, *, only: str = "*", overrides: Sequence[str] = (), shard: str = "1/1") -> list[Cell]:
    """The cells of `suite` whose names match the `only` glob, with the KEY=VALUE overrides applied
    (every spec checks its ranges as it is built), then the I-th of N round-robin shards."""
    chosen = SUITES[suite]
    parsed = parse_overrides(list(overrides))
    index, count = parse_shard(shard)
    cells = [Cell(c.name, apply_overrides(c.spec, parsed)) for c in chosen.build() if fnmatch.fnmatch(c.name, only)]
    if not cells:
        raise SelectionError(f"no cell of suite {chosen.name} matches --only {only!r}")
    if index > len(cells):
        raise SelectionError(f"--shard {shard}: the selection has only {len(cells)} cells, so shard {index} is empty")
    return cells[index - 1::count]


def cfg_cell(base: RunSpec, w: float) -> Cell:
    spec = replace(base, guidance=GuidanceSpec("cfg", (("w", w),)))
    return Cell(f"cfg_p{base.train.p_uncond:g}_w{w:g}_T{base.sample.steps}", spec)


def classifier_cell(base: RunSpec, scale: float, *, noise_aware: bool = True, on: str = "cond") -> Cell:
    """Classifier guidance of the `on` model; noise_aware=False is the clean-classifier ablation."""
    spec = replace(base, guidance=GuidanceSpec("classifier", (("base", on), ("scale", scale))),
                   classifier=replace(base.classifier, noise_aware=noise_aware))
    kind = "noisy" if noise_aware else "clean"
    return Cell(f"clf-{kind}_{on}_p{base.train.p_uncond:g}_s{scale:g}_T{base.sample.steps}", spec)


def with_p(base: RunSpec, p_uncond: float) -> RunSpec:
    return replace(base, train=replace(base.train, p_uncond=p_uncond))


def with_steps(base: RunSpec, steps: int) -> RunSpec:
    return replace(base, sample=replace(base.sample, steps=steps))


def with_seed(cell: Cell, seed: int) -> Cell:
    return Cell(f"{cell.name}_seed{seed}", replace(cell.spec, sample=replace(cell.spec.sample, seed=seed)))


def with_inception(cell: Cell) -> Cell:
    return Cell(cell.name, replace(cell.spec, eval=replace(cell.spec.eval, inception_fid=True)))
