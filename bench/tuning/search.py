"""Locating the strength that minimises a metric with the fewest samples, every comparison paired.

The method (a sequential response-surface search; Box & Wilson 1951, with the argmin's interval by the
bootstrap of a fitted statistic, Efron & Tibshirani 1993, ch. 13):
  1. a coarse grid of `coarse` strengths over [lo, hi] at N0 samples each;
  2. fit a quadratic to the metric on the best point and its `window // 2` neighbours each side, and
     refit it on every bootstrap draw. Points scored at one N share their sample seeds and their
     bootstrap draws, so draw b's values at all strengths move together: the common noise cancels in
     the fit, and the draws' argmins are a paired bootstrap of w* (its 2.5% / 97.5% quantiles are the
     interval on the argmin itself);
  3. stop when that interval is narrower than delta (then w*, and the argmin where the interval covers
     it, lie within delta of each other), or when the budget ends;
  4. else, if the fit is resolved (a positive curvature in at least `level` of the draws) and the last
     refinement narrowed the interval, put `coarse` new strengths across twice the interval (never
     narrower than a quarter of the range, so the curvature stays measurable) and fit on them; if not
     (the noise, not the spacing, limits the fit at this N), score the fit's strengths at GROWTH x N.
A fitted curve beats golden-section here because every evaluation is noisy: golden-section compares
two points at a time and can be misled by one noisy pair, while the fit pools the window, and its
bootstrap says when the noise, not the curve, decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


SHRINK = 0.75  # a refinement at the same N must narrow the interval by this factor, else N grows
GROWTH = 4  # N's factor: the final N's cost dominates the geometric sum of the smaller ones
MIN_SPAN = 8  # the fit's span never narrows below the range / 4 (half-width range / 8): its curvature stays visible


@dataclass(frozen=True)
class Evaluation:
    """A metric at one strength and N: its value and bootstrap replicates, draw-matched with every other
    evaluation at the same N (shared sample seeds and draws)."""
    strength: float
    n: int
    value: float
    replicates: np.ndarray


Evaluate = Callable[[Sequence[float], int], list[Evaluation]]


@dataclass(frozen=True)
class Settings:
    lo: float
    hi: float
    delta: float  # locate w* to +-delta
    n0: int  # samples per point of the coarse grid
    budget: int  # samples in all
    coarse: int = 5
    window: int = 5
    level: float = 0.95
    maximise: bool = False

    def __post_init__(self):
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(f"the strength range [{self.lo}, {self.hi}] must be finite with lo < hi")
        if not 0 < self.delta < self.hi - self.lo:
            raise ValueError(f"delta={self.delta} must be positive and below the range's width {self.hi - self.lo}")
        if self.coarse < 3 or self.window < 3:
            raise ValueError("the coarse grid and the fit window need at least 3 strengths")


@dataclass(frozen=True)
class Fit:
    strength: float  # the fitted argmin
    lo: float
    hi: float
    resolved: bool
    window: tuple[float, ...]
    n: int


@dataclass
class Result:
    fit: Fit
    stopped: str  # located | budget
    samples: int
    evaluations: list[Evaluation] = field(default_factory=list)
    path: list[Fit] = field(default_factory=list)


def _argmins(xs: np.ndarray, ys: np.ndarray, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Argmin of the least-squares quadratic through (xs, ys[b]) for every row b (clipped to `bounds`;
    the row's best point where its curvature is not positive), and each row's curvature."""
    centre, scale = xs.mean(), np.ptp(xs) or 1.0
    u = (xs - centre) / scale
    design = np.stack([u ** 2, u, np.ones_like(u)], axis=1)
    coef = np.linalg.lstsq(design, ys.T, rcond=None)[0]  # (3, B)
    a, b = coef[0], coef[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(a > 0, centre + scale * (-b / (2 * a)), np.nan)
    best = xs[np.argmin(ys, axis=1)]
    return np.where(np.isfinite(vertex), np.clip(vertex, *bounds), best), a


def fit_argmin(evaluations: Sequence[Evaluation], settings: Settings, around: tuple[float, float] | None = None) -> Fit:
    """The quadratic fit at one N, with its paired bootstrap interval: on the evaluations inside `around`
    (the span the last refinement covered) when it holds at least `window` of them, else on the best
    evaluation and its `window // 2` neighbours each side."""
    points = sorted(evaluations, key=lambda e: e.strength)
    sign = -1.0 if settings.maximise else 1.0
    values = sign * np.array([e.value for e in points])
    best = int(np.argmin(values))
    inside = [e for e in points if around is not None and around[0] - 1e-12 <= e.strength <= around[1] + 1e-12]
    if len(inside) >= settings.window:
        chosen = inside
    else:
        start = max(0, min(best - settings.window // 2, len(points) - settings.window))
        chosen = points[start:start + settings.window]
    xs = np.array([e.strength for e in chosen])
    bounds = (settings.lo, settings.hi)
    point, _ = _argmins(xs, sign * np.array([[e.value for e in chosen]]), bounds)
    draws, curvature = _argmins(xs, sign * np.stack([e.replicates for e in chosen], axis=1), bounds)
    tail = (1 - settings.level) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    lo, hi = min(lo, point[0]), max(hi, point[0])
    resolved = bool(np.mean(curvature > 0) >= settings.level)
    return Fit(float(point[0]), float(lo), float(hi), resolved, tuple(xs), chosen[0].n)


def locate(evaluate: Evaluate, settings: Settings) -> Result:
    """Search [lo, hi] for the argmin (argmax with `maximise`) of the metric `evaluate` returns."""
    done: dict[tuple[float, int], Evaluation] = {}
    n, points, used, path = settings.n0, list(np.linspace(settings.lo, settings.hi, settings.coarse)), 0, []
    around, last_width = None, np.inf
    while True:
        new = [w for w in dict.fromkeys(round(float(w), 12) for w in points) if (w, n) not in done]
        if used + len(new) * n > settings.budget:
            return Result(path[-1], "budget", used, list(done.values()), path) if path else _no_budget(settings)
        for evaluation in evaluate(new, n):
            done[(round(evaluation.strength, 12), n)] = evaluation
        used += len(new) * n
        fit = fit_argmin([e for (_, m), e in done.items() if m == n], settings, around)
        path.append(fit)
        width = fit.hi - fit.lo
        if width <= settings.delta:  # w* and the argmin (where the interval covers it) are then within delta
            return Result(fit, "located", used, list(done.values()), path)
        if fit.resolved and width < SHRINK * last_width:  # refine around w* at this N
            half = max(2 * width, (settings.hi - settings.lo) / MIN_SPAN)
            around = (max(settings.lo, fit.strength - half), min(settings.hi, fit.strength + half))
            points, last_width = list(np.linspace(*around, settings.coarse)), width
        else:  # no longer narrowing at this N: the fit's strengths at GROWTH times the samples
            n, points, last_width = GROWTH * n, list(fit.window), np.inf
            around = (min(fit.window), max(fit.window))


def _no_budget(settings: Settings) -> Result:
    raise ValueError(f"a budget of {settings.budget} samples cannot pay for the coarse grid "
                     f"({settings.coarse} x {settings.n0})")
