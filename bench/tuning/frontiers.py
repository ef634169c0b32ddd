"""Frontier records: what a best-against-best study is (bench/tuning/best_against_best.py runs one): the model
and sampler every method runs on (`base`), the methods (by default every registered method with a strength,
wrappers included through their inner method's, so a new method file joins), each method's search range (by
default [0, its largest example strength], the span its examples show), the tuned metric, the search's first N and budget, and the
optimum cells' N and sample seed, which lies beyond every tuning cell's seeds. Records load without torch, so
the command line checks a request against them before any work."""
from __future__ import annotations

from dataclasses import dataclass

from bench.guidance.registry import METHODS, strength
from bench.spec.errors import SpecError
from bench.spec.names import check_plain_name
from bench.spec.registry import Registry
from bench.spec.sections import RunSpec
from bench.suites.cells import Cell, with_p
from bench.suites.methods import example_cell
from bench.suites.flow import FLOW_BASE
from bench.suites.paper import FASHION_BASE, MNIST_BASE, TINY_BASE


@dataclass(frozen=True)
class Frontier:
    name: str
    description: str
    base: RunSpec  # the model, sampler and evaluator every method runs on
    methods: tuple[str, ...] = ()  # empty: every registered method with a strength
    ranges: tuple[tuple[str, float, float], ...] = ()  # (method, lo, hi) search ranges; others [0, largest example]
    metric: str = "fid"  # tuned on (the domain evaluator's FID: 64-d features, cheap)
    n0: int = 500  # samples per point of the coarse grid
    budget: int = 20_000  # samples per method's search
    final_n: int = 2_000
    final_seed: int = 1_000_000  # the optimum cells' first sample seed: beyond every tuning cell's
    reference: str = "cfg"  # the method every other is compared with
    grid_suite: str = ""  # a suite whose stored CFG grid minimum the tuned CFG optimum is checked against
    final_inception: bool = True  # the optimum cells' Inception FID beside the tuned metric

    def __post_init__(self):
        check_plain_name(self.name, "frontier")
        last_tuning_seed = self.base.sample.seed + self.budget  # sample i of a cell uses seed + i, and N <= budget
        if self.final_seed < last_tuning_seed:
            raise ValueError(f"frontier {self.name}: final_seed={self.final_seed} must be >= sample.seed + budget = "
                             f"{last_tuning_seed}, so the optimum cells' samples are not the tuning cells'")

    def method_names(self) -> list[str]:
        names = list(self.methods) or [m.name for m in METHODS.values() if tunable(m.name)]
        unknown = [m for m in names if m not in METHODS]
        if unknown:
            raise SpecError(f"frontier {self.name}: methods {unknown} are not registered; known: {', '.join(sorted(METHODS))}")
        return names

    def tuning_base(self, method: str) -> Cell:
        """The method's first example on `base` (the spec changes it needs), which the search varies."""
        record = METHODS[method]
        if not record.examples:
            raise SpecError(f"method {method!r} has no example to take its parameters from")
        return example_cell(self.base, method, record.examples[0])

    def search_range(self, method: str) -> tuple[float, float]:
        for name, lo, hi in self.ranges:
            if name == method:
                return lo, hi
        top = max(strength(method, dict(e.params))[1] or 0.0 for e in METHODS[method].examples)
        return 0.0, top


def tunable(method: str) -> bool:
    """A method with examples whose strength (its own or, for a wrapper, its inner method's) is set."""
    examples = METHODS[method].examples
    return bool(examples) and all(strength(method, dict(e.params))[0] is not None for e in examples)


FRONTIERS: Registry[Frontier] = Registry("frontier", "frontiers", SpecError)

# The digit models' ranges: the strengths where the methods suite's and the flow suite's grids put every optimum,
# and past it (w* near a range's end is reported as such by the interval on it); delta is range / 20.
DIGIT_RANGES = (("cfg", 0.0, 2.0), ("apg", 0.0, 2.0), ("autoguidance", 0.0, 2.0), ("cfg_zero_star", 0.0, 2.0),
                ("cfgpp", 0.0, 1.0), ("classifier", 0.0, 4.0), ("interval", 0.0, 2.0), ("rescaled_cfg", 0.0, 2.0),
                ("schedule", 0.0, 2.0))

for frontier in (
        Frontier("methods-tiny", "CFG and CFG-Zero* tuned on the tiny model (seconds: tests, trying the tuner)",
                 with_p(TINY_BASE, 0.1), methods=("cfg", "cfg_zero_star"), n0=72, budget=1_440, final_n=144,
                 final_seed=10_000, final_inception=False),
        Frontier("methods-mnist", "every registered method tuned on the full-MNIST p_uncond = 0.2 model's evaluator FID, "
                 "then scored at its optimum (N = 2,000, Inception FID too) against tuned CFG",
                 with_p(MNIST_BASE, 0.2), ranges=DIGIT_RANGES, grid_suite="mnist"),
        Frontier("methods-fashion", "the methods-mnist frontier on the Fashion-MNIST p_uncond = 0.2 model",
                 with_p(FASHION_BASE, 0.2), ranges=DIGIT_RANGES, grid_suite="fashion"),
        Frontier("methods-flow", "the methods-mnist frontier on the full-MNIST flow-matching model (flow Euler), each "
                 "method in its paper's space", with_p(FLOW_BASE, 0.2), ranges=DIGIT_RANGES, grid_suite="flow")):
    FRONTIERS.add(frontier.name, frontier)
