"""Guidance where today's models are: a flow-matching model trained here (`flow`), and solvers against NFE on
the mnist eps-model and on that flow model (`solvers`).

flow: the mnist suite's data, network, training budget, N, reference and Inception cells, with train.objective=flow
(the velocity eps - x0 on the linear interpolant, logit-normal t) sampled by the flow Euler solver on the uniform-t
grid at the mnist suite's 32 steps (so the same NFE as its ancestral cells); its paper sweep (CFG over p_uncond x w,
classifier guidance with the noisy classifier on the flow path, steps, seed spread), and, at p_uncond = 0.2, the
methods of today's flow models, each in its own space: CFG inside a guidance interval (REPA's t <= 0.7), CFG-Zero*
(flow velocities, zero-init of the first level), APG (denoised predictions) and autoguidance.

solvers: FID against NFE in {8, 16, 32, 64} for each solver (Heun at T = NFE/2 steps, so 2T - 1 evaluations), unguided
and with CFG at the steps sweep's w (fixed before any result), on the mnist p_uncond = 0.2 eps-model (on the paper's
cosine grid; DDIM is its Euler) and on the flow model (on the uniform-t grid; flow Euler).
"""
from __future__ import annotations

import math
from dataclasses import replace

from bench.guidance.autoguidance import GUIDE
from bench.spec.overrides import apply_overrides, parse_overrides
from bench.spec.sections import GuidanceSpec, RunSpec
from bench.suites.cells import Cell, cfg_cell, register_suite, with_inception, with_p
from bench.suites.paper import MNIST_BASE, STEPS_SWEEP_W, inception_sweep

FLOW_BASE = replace(MNIST_BASE, train=replace(MNIST_BASE.train, objective="flow"),
                    sample=replace(MNIST_BASE.sample, sampler="euler", grid="flow", clip_x=False))
REPA_INTERVAL_T = 0.7  # REPA's guidance interval: CFG only where t <= 0.7 (t = 1 noise)
FLOW_METHOD_W = (0.3, 1.0)  # the strengths of the flow-methods cells, the mnist suite's w* and a strong one


def _method(base: RunSpec, name: str, method: str, params: dict, overrides: tuple[str, ...] = ()) -> Cell:
    spec = apply_overrides(base, parse_overrides(list(overrides)))
    spec = replace(spec, guidance=GuidanceSpec(method, tuple(sorted(params.items()))))
    return Cell(f"{name}_p{base.train.p_uncond:g}_T{base.sample.steps}", spec)


def flow_methods(base: RunSpec) -> list[Cell]:
    """The flow models' methods at p_uncond = 0.2, each in its paper's space, with the Inception FID."""
    mid = with_p(base, 0.2)
    lambda_low = 2 * math.log((1 - REPA_INTERVAL_T) / REPA_INTERVAL_T)  # lambda of t = 0.7
    cells = []
    for w in FLOW_METHOD_W:
        cells += [_method(mid, f"interval_t0.7_w{w:g}", "interval",
                          {"inner": "cfg", "inner_params": (("w", w),), "lambda_low": lambda_low, "lambda_high": 40.0}),
                  _method(mid, f"cfg_zero_star_w{w:g}", "cfg_zero_star", {"w": w, "zero_init_steps": 1}),
                  _method(mid, f"apg_w{w:g}", "apg", {"w": w}),
                  _method(mid, f"autoguidance_w{w:g}", "autoguidance", {"w": w}, GUIDE)]
    return [with_inception(c) for c in cells]


@register_suite("flow", "a flow-matching model on full MNIST 16x16 (the mnist suite's shape, flow Euler at matched NFE): "
                        "CFG over p_uncond x w, classifier guidance, steps, seed spread; interval, CFG-Zero*, APG, "
                        "autoguidance in their own spaces", beside="mnist")
def flow() -> list[Cell]:
    return inception_sweep(FLOW_BASE) + flow_methods(FLOW_BASE)


SOLVER_NFE = (8, 16, 32, 64)


def solver_cells(base: RunSpec, model: str, solvers: tuple[str, ...]) -> list[Cell]:
    cells = []
    for solver in solvers:
        for nfe in SOLVER_NFE:
            steps = nfe // 2 if solver == "heun" else nfe
            spec = replace(base, sample=replace(base.sample, sampler=solver, steps=steps))
            for w in (0.0, STEPS_SWEEP_W):
                cell = cfg_cell(spec, w)
                cells.append(Cell(f"{model}_{solver}_nfe{nfe}_w{w:g}", cell.spec))
    return cells


@register_suite("solvers", "FID against NFE in {8, 16, 32, 64} for DDIM/Euler, Heun, DPM-Solver++(2M) and ancestral, "
                           "unguided and CFG at w = 0.3, on the mnist eps-model and the flow model")
def solvers() -> list[Cell]:
    eps_model, flow_model = with_p(MNIST_BASE, 0.2), with_p(FLOW_BASE, 0.2)
    return (solver_cells(eps_model, "eps", ("ddim", "heun", "dpmpp_2m", "ancestral"))
            + solver_cells(flow_model, "flow", ("euler", "heun", "dpmpp_2m", "ancestral")))
