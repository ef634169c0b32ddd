"""The tuner's calibration on synthetic responses whose argmin and noise are known.

A response is metric(w) = curve(w) plus noise sigma / sqrt(N) (rho z_N + sqrt(1 - rho^2) z_{w,N}): points
scored at one N share their seeds (z_N) and their bootstrap draws (u_b), as the cells of a suite do, and each
replicate is the value plus a draw of the same noise. The shapes:
  quadratic        (w - w*)^2 + 2: the fit's own model;
  kinked           2 + 60 (w - w*)^2 below w*, 2 + 4 (w - w*) above: a steep wall and a slow linear rise, as
                   CFG++'s FID against lambda, not differentiable at w*;
  kinked-mirrored  the same with the wall above w*;
  walled           2 + 3 exp(-k w) + 2 w, argmin log(1.5 k) / k: a smooth asymmetric minimum, as FID against w.
Per shape, `calibrate` runs the search on `runs` draws of w* and reports how often w* lands within delta of
the argmin, how often the reported interval holds the argmin (over all runs, and over the located stops
before their margin, the bootstrap interval alone), how often the search stopped located, and the mean
samples spent. Run `python -m bench.tuning.synthetic` to write
results/tuning/calibration.csv and report.md; tests/tuning/test_search.py runs the same responses.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.tuning.search import LOCATED_MARGIN, Evaluation, Evaluate, Settings, locate

DRAWS = 200


def response(curve: Callable[[float], float], seed: int, sigma: float = 6.0, rho: float = 0.8) -> Evaluate:
    """An `Evaluate` of curve(w) with the shared-seed noise above."""
    rng = np.random.default_rng(seed)
    shared: dict[int, tuple[float, np.ndarray]] = {}

    def evaluate(strengths, n):
        if n not in shared:
            shared[n] = (rng.normal(), rng.normal(size=DRAWS))
        z, u = shared[n]
        scale, own = sigma / np.sqrt(n), np.sqrt(1 - rho ** 2)
        out = []
        for w in strengths:
            value = curve(w) + scale * (rho * z + own * rng.normal())
            replicates = value + scale * (rho * u + own * rng.normal(size=DRAWS))
            out.append(Evaluation(float(w), n, float(value), replicates))
        return out
    return evaluate


def kinked(w: float, w_star: float) -> float:
    return 2 + (60 * (w - w_star) ** 2 if w < w_star else 4 * (w - w_star))


def walled(w: float, k: float) -> float:
    return 2 + 3 * np.exp(-k * w) + 2 * w


@dataclass(frozen=True)
class Shape:
    """A family of curves: curve(w, parameter), run r's parameter and argmin, and the search's settings."""
    name: str
    curve: Callable[[float, float], float]
    draw: Callable[[int], tuple[float, float]]
    settings: Settings
    sigma: float


def _uniform_argmin(lo: float, hi: float) -> Callable[[int], tuple[float, float]]:
    return lambda run: (w := float(np.random.default_rng(run).uniform(lo, hi)), w)


def _walled_draw(run: int) -> tuple[float, float]:
    k = float(np.random.default_rng(run).uniform(4, 12))
    return k, float(np.log(1.5 * k) / k)


ASYMMETRIC = Settings(lo=0.0, hi=1.0, delta=0.05, n0=500, budget=40_000)
SHAPES = {shape.name: shape for shape in (
    Shape("quadratic", lambda w, m: (w - m) ** 2 + 2, _uniform_argmin(0.3, 3.0),
          Settings(lo=0.0, hi=4.0, delta=0.1, n0=250, budget=5_000_000), 6.0),
    Shape("kinked", kinked, _uniform_argmin(0.15, 0.6), ASYMMETRIC, 2.0),
    Shape("kinked-mirrored", lambda w, m: kinked(1 - w, 1 - m), _uniform_argmin(0.15, 0.6), ASYMMETRIC, 2.0),
    Shape("walled", walled, _walled_draw, Settings(lo=0.0, hi=2.0, delta=0.1, n0=500, budget=40_000), 2.0),
)}


def calibrate(shape: Shape, runs: int, sigma: float | None = None) -> dict:
    """The search on `runs` curves of `shape` (run r draws its curve and its noise from seed r)."""
    settings, rows = shape.settings, []
    for run in range(runs):
        parameter, w_star = shape.draw(run)
        result = locate(response(lambda w: shape.curve(w, parameter), run, sigma or shape.sigma), settings)
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
