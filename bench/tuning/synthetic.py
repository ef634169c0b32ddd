"""The tuner's calibration on synthetic responses whose argmin and noise are known.

A response is metric(w) = curve(w) plus noise sigma / sqrt(N) (rho z_N + sqrt(1 - rho^2) z_{w,N}): points
scored at one N share their seeds (z_N) and their bootstrap draws (u_b), as the cells of a suite do, and each
replicate is the value plus a draw of the same noise. The shapes:
  quadratic        (w - w*)^2 + 2: the fit's own model;
  kinked           2 + 60 (w - w*)^2 below w*, 2 + 4 (w - w*) above: a steep wall and a slow linear rise, as
                   CFG++'s FID against lambda, not differentiable at w*;
  kinked-mirrored  the same with the wall above w*;
  walled           2 + 3 exp(-k w) + 2 w, argmin log(1.5 k) / k: a smooth asymmetric minimum, as FID against w;
  floored          IS = 5 + 4 (1 - exp(-2 w)) maximised subject to the walled FID <= F (a quality floor): the
                   optimum is where FID rises through F, found by scipy's brentq; each metric has its own noise.
Per shape, `calibrate` runs the search on `runs` draws of w* and reports how often w* lands within delta of
the argmin, how often the reported interval holds the argmin (over all runs, and over the located stops
before their margin, the bootstrap interval alone), how often the search stopped located, and the mean
samples spent. Run `python -m bench.tuning.synthetic` to write
results/tuning/calibration.csv and report.md; tests/tuning/test_search.py runs the same responses.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.tuning.search import LOCATED_MARGIN, Evaluate, Evaluation, Result, Settings, locate

DRAWS = 200


def response(curve: Callable[[float], float], seed: int, sigma: float = 6.0, rho: float = 0.8,
             constraint: Callable[[float], float] | None = None) -> Evaluate:
    """An `Evaluate` of curve(w) with the shared-seed noise above (and of the constraint's curve, with noise of
    its own of the same structure)."""
    rng = np.random.default_rng(seed)
    shared: dict[tuple[int, int], tuple[float, np.ndarray]] = {}

    def noisy(which: int, mean: float, n: int) -> tuple[float, np.ndarray]:
        if (which, n) not in shared:
            shared[which, n] = (rng.normal(), rng.normal(size=DRAWS))
        z, u = shared[which, n]
        scale, own = sigma / np.sqrt(n), np.sqrt(1 - rho ** 2)
        value = mean + scale * (rho * z + own * rng.normal())
        return value, value + scale * (rho * u + own * rng.normal(size=DRAWS))

    def evaluate(strengths, n):
        out = []
        for w in strengths:
            value, replicates = noisy(0, curve(w), n)
            bounded = {} if constraint is None else dict(zip(("constraint", "constraint_replicates"), noisy(1, constraint(w), n)))
            out.append(Evaluation(float(w), n, float(value), replicates, **bounded))
        return out
    return evaluate


def kinked(w: float, w_star: float) -> float:
    return 2 + (60 * (w - w_star) ** 2 if w < w_star else 4 * (w - w_star))


def walled(w: float, k: float) -> float:
    return 2 + 3 * np.exp(-k * w) + 2 * w


def saturating(w: float) -> float:
    return 5 + 4 * (1 - np.exp(-2 * w))


@dataclass(frozen=True)
class Shape:
    """A family of curves: curve(w, parameter), run r's parameter and optimum, and the search's settings; with a
    constraint, its curve(w, parameter) and bound(parameter), the settings' bound for that run."""
    name: str
    curve: Callable[[float, Any], float]
    draw: Callable[[int], tuple[Any, float]]
    settings: Settings
    sigma: float
    constraint: Callable[[float, Any], float] | None = None
    bound: Callable[[Any], float] | None = None

    def search(self, run: int, sigma: float | None = None, settings: Settings | None = None) -> tuple[Result, float]:
        """The search on run `run`'s curve (its curve and noise drawn from seed `run`) and that curve's optimum."""
        parameter, w_star = self.draw(run)
        settings = settings or self.settings
        if self.bound is not None:
            settings = replace(settings, bound=self.bound(parameter))
        constraint = None if self.constraint is None else (lambda w: self.constraint(w, parameter))
        evaluate = response(lambda w: self.curve(w, parameter), run, sigma or self.sigma, constraint=constraint)
        return locate(evaluate, settings), w_star


def _uniform_argmin(lo: float, hi: float) -> Callable[[int], tuple[float, float]]:
    return lambda run: (w := float(np.random.default_rng(run).uniform(lo, hi)), w)


def _walled_draw(run: int) -> tuple[float, float]:
    k = float(np.random.default_rng(run).uniform(4, 12))
    return k, float(np.log(1.5 * k) / k)


def _floored_draw(run: int) -> tuple[tuple[float, float], float]:
    """A walled FID curve (k) and a floor F between its minimum + 0.5 and + 2; the optimum is where FID rises through F."""
    from scipy.optimize import brentq
    rng = np.random.default_rng(run)
    k = float(rng.uniform(4, 12))
    argmin = np.log(1.5 * k) / k
    floor = walled(argmin, k) + float(rng.uniform(0.5, 2.0))
    return (k, floor), float(brentq(lambda w: walled(w, k) - floor, argmin, 2.0))


ASYMMETRIC = Settings(lo=0.0, hi=1.0, delta=0.05, n0=500, budget=40_000)
SHAPES = {shape.name: shape for shape in (
    Shape("quadratic", lambda w, m: (w - m) ** 2 + 2, _uniform_argmin(0.3, 3.0),
          Settings(lo=0.0, hi=4.0, delta=0.1, n0=250, budget=5_000_000), 6.0),
    Shape("kinked", kinked, _uniform_argmin(0.15, 0.6), ASYMMETRIC, 2.0),
    Shape("kinked-mirrored", lambda w, m: kinked(1 - w, 1 - m), _uniform_argmin(0.15, 0.6), ASYMMETRIC, 2.0),
    Shape("walled", walled, _walled_draw, Settings(lo=0.0, hi=2.0, delta=0.1, n0=500, budget=40_000), 2.0),
    Shape("floored", lambda w, _: saturating(w), _floored_draw,
          Settings(lo=0.0, hi=2.0, delta=0.1, n0=500, budget=80_000, maximise=True, bound=0.0), 2.0,
          constraint=lambda w, p: walled(w, p[0]), bound=lambda p: p[1]),
)}


def calibrate(shape: Shape, runs: int, sigma: float | None = None) -> dict:
    """The search on `runs` curves of `shape` (run r draws its curve and its noise from seed r)."""
    settings, rows = shape.settings, []
    for run in range(runs):
        result, w_star = shape.search(run, sigma)
        fit, bootstrap = result.fit, result.path[-1]  # the reported fit, and the last fit before any margin
        rows.append((abs(fit.strength - w_star) <= settings.delta, fit.lo <= w_star <= fit.hi,
                     bootstrap.lo <= w_star <= bootstrap.hi, result.stopped == "located", result.samples))
    hits, holds, holds_unwidened, located, samples = np.array(rows, dtype=float).T
    stops = located.astype(bool)
    return {"shape": shape.name, "sigma": sigma or shape.sigma, "runs": runs, "delta": settings.delta,
            "within_delta": hits.mean(), "interval_holds_argmin": holds.mean(), "located": located.mean(),
            "located_holds_argmin": holds[stops].mean() if stops.any() else np.nan,
            "located_unwidened_holds_argmin": holds_unwidened[stops].mean() if stops.any() else np.nan,
            "mean_samples": samples.mean()}


def main(argv: list[str] | None = None) -> None:
    import pandas as pd
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("results/tuning"))
    args = parser.parse_args(argv)
    table = pd.DataFrame([calibrate(shape, args.runs, sigma=sigma) for shape in SHAPES.values()
                          for sigma in dict.fromkeys((shape.sigma, 3 * shape.sigma))])
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "calibration.csv", index=False)
    (args.out / "report.md").write_text(
        "# The tuner on synthetic responses\n\nGenerated by `python -m bench.tuning.synthetic "
        f"--runs {args.runs}` (bench/tuning/synthetic.py says what is simulated). Per shape and noise level: how "
        "often w* lies within delta of the argmin, how often the reported 95% interval on the argmin holds it, how "
        "often the search stopped located (else on its budget), how often a located stop's interval holds the "
        f"argmin with its margin of {LOCATED_MARGIN:g} x delta each side and without it (the bootstrap interval alone, which the "
        "stop rule's choice of a narrow interval makes too short), and the mean samples.\n\n"
        + table.to_markdown(index=False, floatfmt=".4g") + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
