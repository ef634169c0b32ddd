"""The methods frontier, generated from the guidance records: every example of every registered
method (bench/guidance: each record's `examples`) on the mnist5k p_uncond 0.2 model, so a new method
joins the frontier by its own file alone. CFG and classifier guidance are the paper's cells (named as
in the paper suites, whose stored runs they share); every other example is the cell
<method>_<label>_p0.2_T32, with the spec changes its example names."""
from __future__ import annotations

from dataclasses import replace

from bench.guidance import METHODS, Example
from bench.spec.overrides import apply_overrides, parse_overrides
from bench.spec.sections import GuidanceSpec, RunSpec
from bench.suites.cells import Cell, cfg_cell, classifier_cell, register_suite, with_p
from bench.suites.paper import MNIST5K_BASE

PAPER_CELLS = {"cfg": lambda base, params: cfg_cell(base, params["w"]),
               "classifier": lambda base, params: classifier_cell(base, params["scale"], on=params["base"])}


def method_cell(base: RunSpec, method: str, label: str, **params) -> Cell:
    spec = replace(base, guidance=GuidanceSpec(method, tuple(sorted(params.items()))))
    return Cell(f"{method}_{label}_p{base.train.p_uncond:g}_T{base.sample.steps}", spec)


def example_cell(base: RunSpec, method: str, example: Example) -> Cell:
    """The cell that runs one example of a method on `base`."""
    spec = apply_overrides(base, parse_overrides(list(example.overrides)))
    params = dict(example.params)
    if method in PAPER_CELLS:
        return PAPER_CELLS[method](spec, params)
    return method_cell(spec, method, example.label, **params)


@register_suite("methods", "every registered guidance method on the mnist5k p_uncond 0.2 model: one FID–IS frontier "
                           "with cost (each method's examples, from its record)")
def methods() -> list[Cell]:
    base = with_p(MNIST5K_BASE, 0.2)
    return [example_cell(base, m.name, example) for m in METHODS.values() for example in m.examples]
