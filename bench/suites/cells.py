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
from bench.spec.errors import SpecError
from bench.spec.hashing import stable_hash
from bench.spec.names import check_plain_name
from bench.spec.overrides import apply_overrides, parse_overrides
from bench.spec.registry import Registry
from bench.spec.sections import GuidanceSpec, RunSpec
from bench.suites.protocols import protocol as find_protocol


@dataclass(frozen=True)
class Cell:
    """A named spec; the name is a plain name (bench/spec/names.py), as it names the cell's folder."""
    name: str
    spec: RunSpec

    def __post_init__(self):
        check_plain_name(self.name, "cell")
        if not isinstance(self.spec, RunSpec):
            raise SpecError(f"cell {self.name}: spec must be a RunSpec, got {type(self.spec).__name__}")

    @property
    def run_id(self) -> str:
        return f"{self.name}-{stable_hash(self.spec, 8)}"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    build: Callable[[], list[Cell]]
    beside: str = ""  # a suite whose best cells this suite's report sets beside its own (same seeds, paired)
    protocol: str = ""  # the published protocol its cells follow (bench/suites/protocols.py)

    def __post_init__(self):
        check_plain_name(self.name, "suite")


SUITES: Registry[Suite] = Registry("suite", "suites")


def register_suite(name: str, description: str, beside: str = "", protocol: str = ""
                   ) -> Callable[[Callable[[], list[Cell]]], Callable[[], list[Cell]]]:
    def add(fn: Callable[[], list[Cell]]) -> Callable[[], list[Cell]]:
        SUITES.add(name, Suite(name, description, fn, beside, protocol))
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


def _param(name: str) -> Callable[[RunSpec], object]:
    return lambda spec: dict(spec.guidance.params).get(name)


# The spec fields a cell name spells out, one "_"-separated segment each (cfg_p0.1_w0.5_T32)
NAME_SEGMENTS: dict[str, Callable[[RunSpec], object]] = {
    "T": lambda spec: spec.sample.steps, "p": lambda spec: spec.train.p_uncond, "seed": lambda spec: spec.sample.seed,
    "w": _param("w"), "s": _param("scale")}


def _segment(prefix: str, value: object) -> str | None:
    return f"{prefix}{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _method_segment(spec: RunSpec) -> str:
    """How a name spells the guidance method (classifier guidance: clf-noisy or clf-clean)."""
    if spec.guidance.method == "classifier":
        return "clf-noisy" if spec.classifier.noise_aware else "clf-clean"
    return spec.guidance.method


def renamed(cell: Cell, spec: RunSpec) -> Cell:
    """`cell` with `spec`, its name's segments that spell a field (NAME_SEGMENTS, and the method)
    rewritten to the new spec's values, so that an override never runs a cell under a name that
    describes another spec; an override the name cannot follow is refused."""
    segments = cell.name.split("_")
    old_method, new_method = _method_segment(cell.spec), _method_segment(spec)
    at = 0
    if old_method != new_method:
        spelled = [i for i, seg in enumerate(segments) if seg in (old_method, cell.spec.guidance.method, "clf")]
        if not spelled:
            raise SelectionError(f"cell {cell.name}: the override makes its guidance {new_method}, which its name "
                                 "does not spell; select cells of that method instead (--list, --only)")
        at = spelled[0]
        segments[at] = new_method
    for prefix, field in NAME_SEGMENTS.items():
        old, new = _segment(prefix, field(cell.spec)), _segment(prefix, field(spec))
        if old == new:
            continue
        if old is not None and old in segments:  # the name spells the field: follow it, or drop it with its value
            segments = [new if seg == old else seg for seg in segments if seg != old or new is not None]
        elif old is None and old_method != new_method:  # a parameter of the new method: spell it after the method
            at += 1
            segments.insert(at, new)
    return Cell("_".join(segments), spec)


def unique_names(cells: list[Cell]) -> list[Cell]:
    """The cells with exact repeats (one name, one spec) dropped; one name for two specs is an error."""
    seen: dict[str, Cell] = {}
    for cell in cells:
        if cell.name in seen and seen[cell.name].spec != cell.spec:
            raise SelectionError(f"two different specs are named {cell.name} in one selection (hashes "
                                 f"{stable_hash(seen[cell.name].spec, 8)} and {stable_hash(cell.spec, 8)}); "
                                 "name each cell after what differs")
        seen.setdefault(cell.name, cell)
    return list(seen.values())


def select_cells(suite: str, *, only: str = "*", overrides: Sequence[str] = (), shard: str = "1/1",
                 protocol: str = "") -> list[Cell]:
    """The cells of `suite` whose names match the `only` glob, with the KEY=VALUE overrides applied
    (every spec checks its ranges as it is built; names follow, `renamed`), cells made identical by an
    override kept once, then the I-th of N round-robin shards. A `protocol` (bench/suites/protocols.py)
    applies its overrides first (the user's win) and repeats each cell over its seed sets."""
    chosen = SUITES[suite]
    protocol = protocol or chosen.protocol
    record = find_protocol(protocol) if protocol else None
    parsed = parse_overrides([*(record.overrides if record else ()), *overrides])
    index, count = parse_shard(shard)
    cells = [renamed(c, apply_overrides(c.spec, parsed)) for c in chosen.build() if fnmatch.fnmatch(c.name, only)]
    if record is not None and record.seed_sets > 1:
        cells = [c if k == 0 else with_seed(c, c.spec.sample.seed + k * c.spec.sample.num_samples)
                 for c in cells for k in range(record.seed_sets)]
    cells = unique_names(cells)
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
