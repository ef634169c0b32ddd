"""Locating the strength that minimises a metric with the fewest samples, every comparison paired.

The method (a sequential response-surface search, Box & Wilson 1951, in a span that must bracket the minimum
and on which the fit must not hang on its window; the argmin's interval by the bootstrap of a fitted
statistic, Efron & Tibshirani 1993, ch. 13):
  1. a coarse grid of `coarse` strengths over [lo, hi] at N0 samples each;
  2. fit a cubic (a quadratic on fewer than 5 points) to the metric on the points of the current span (at
     first, the best point and its `window // 2` neighbours each side), take its local minimum, and refit it
     on every bootstrap draw. The cubic carries the next Taylor term of a smooth minimum, the asymmetry
     that biases a quadratic's vertex (a metric against guidance strength rises steeply on one side of its
     minimum and slowly on the other). Points scored at one N share their sample seeds and their bootstrap
     draws, so draw b's values at all strengths move together: the common noise cancels in the fit, and
     the draws' minima are a paired bootstrap of w*;
  3. the interval on the argmin is those draws' 2.5% / 97.5% quantiles, widened to hold the minima of the
     fits without the span's leftmost and without its rightmost point: where the minimum moves with the
     window, the interval says so;
  4. the fit is trusted only where it
     - brackets the minimum: its minimum lies inside the span, or past a range end the span reaches. Else
       the minimum lies beyond the span, and the span is centred on the edge it lies past (same width, cut
       to the range; same N);
     - does not hang on its window: the two end-dropped minima agree within delta / 4, or their paired
       difference's interval holds 0. Else the curve is not yet polynomial on this span (a kink, a wall),
       and the span is halved around the best point (same N), down to 2 delta;
  5. stop when a trusted fit's interval is narrower than delta (then w*, and the argmin where the interval
     covers it, lie within delta of each other), or when the budget ends. A located stop reports its interval
     widened by LOCATED_MARGIN x delta each side: the rule stops at the first fit whose interval is narrow,
     and that selection favours intervals that miss the argmin (a budget stop selects nothing);
  6. else, if the fit is resolved (a local minimum in at least `level` of the draws) and the last
     refinement narrowed the interval, put `coarse` new strengths across twice the interval (never
     narrower than a quarter of the range, so the curvature stays measurable; a strength within a quarter
     spacing of one scored at this N is reused) and fit on them; if not
     (the noise, not the spacing, limits the fit at this N), score the fit's strengths at GROWTH x N (where
     the budget cannot pay for all of them, `window` strengths across them, each moved onto one of them).
     A step at the same N that would score no new strength grows N instead, so every step spends samples.
With a bound on a second metric (maximise IS subject to FID <= F, the paper's quality floor; or precision
at a floor on FID), both metrics are fitted on each draw (a cell's draws resample the same rows for every
metric, so the pair is a joint bootstrap), and a draw's optimum is the best point of its objective's fit
where its constraint's fit meets the bound, on a fine grid across the span; a draw with no feasible point
takes the point nearest feasibility and counts as unresolved. The optimum then often lies where the
constraint's curve crosses its bound, and every step above applies unchanged.
A fitted curve beats golden-section here because every evaluation is noisy: golden-section compares
two points at a time and can be misled by one noisy pair, while the fit pools the window, and its
bootstrap says when the noise, not the curve, decides.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np


SHRINK = 0.75  # a refinement at the same N must narrow the interval by this factor, else N grows
GROWTH = 4  # N's factor: the final N's cost dominates the geometric sum of the smaller ones
MIN_SPAN = 8  # the refinement's span never narrows below the range / 4 (half-width range / 8): its curvature stays visible
LOCATED_MARGIN = 0.5  # a located stop's interval, widened by this x delta each side, holds the argmin in 95% of runs


@dataclass(frozen=True)
class Evaluation:
    """A metric at one strength and N: its value and bootstrap replicates, draw-matched with every other
    evaluation at the same N (shared sample seeds and draws)."""
    strength: float
    n: int
    value: float
    replicates: np.ndarray
    constraint: float = np.nan  # the bounded metric's value and replicates (Settings.bound), draw-matched with these
    constraint_replicates: np.ndarray | None = None


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
    bound: float | None = None  # the constraint metric must stay at most (at_most) or at least this
    at_most: bool = True

    def __post_init__(self):
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(f"the strength range [{self.lo}, {self.hi}] must be finite with lo < hi")
        if not 0 < self.delta < self.hi - self.lo:
            raise ValueError(f"delta={self.delta} must be positive and below the range's width {self.hi - self.lo}")
        if self.coarse < 3 or self.window < 3:
            raise ValueError("the coarse grid and the fit window need at least 3 strengths")
        if self.bound is not None and not np.isfinite(self.bound):
            raise ValueError(f"the constraint's bound {self.bound} must be finite")

    def violation(self, values: np.ndarray) -> np.ndarray:
        """How far the constraint metric's values lie past the bound (<= 0: feasible)."""
        return (values - self.bound) if self.at_most else (self.bound - values)


@dataclass(frozen=True)
class Fit:
    strength: float  # the fitted argmin
    lo: float
    hi: float
    resolved: bool  # a local minimum in at least `level` of the draws
    window: tuple[float, ...]
    n: int
    brackets: bool = True  # the fit's minimum (the lowest point, where none) lies inside the window, or past a range end
    shift: float = 0.0  # the minimum without the leftmost point minus without the rightmost (0: too few points)
    shifts: bool = False  # that shift exceeds delta / 4 and its paired interval excludes 0
    best: float = np.nan  # the window's lowest point


@dataclass
class Result:
    fit: Fit
    stopped: str  # located | budget
    samples: int
    evaluations: list[Evaluation] = field(default_factory=list)
    path: list[Fit] = field(default_factory=list)


def fit_degree(points: int) -> int:
    """The fitted polynomial's degree on `points` strengths: a cubic on 5 or more, else a quadratic."""
    return 3 if points >= 5 else 2


def _coefficients(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Least-squares cubic (a quadratic on fewer than 5 points) through (xs, ys[b]) for every row b, in the scaled
    coordinate u = (x - centre) / scale: (centre, scale, coefficients highest first, one column per row)."""
    centre, scale = xs.mean(), np.ptp(xs) or 1.0
    u = (xs - centre) / scale
    design = np.stack([u ** k for k in range(fit_degree(len(xs)), -1, -1)], axis=1)
    return centre, scale, np.linalg.lstsq(design, ys.T, rcond=None)[0]


def _polynomial(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's fitted local minimum, NaN where it has none, and its curvature there (p'' / 2 in the scaled
    coordinate; -1: none). The local minimum of p(u) = c3 u^3 + c2 u^2 + c1 u + c0 is the root of p' with p'' > 0,
    u = -c1 / (c2 + sqrt(c2^2 - 3 c3 c1)), which is the quadratic's -c1 / (2 c2) at c3 = 0."""
    centre, scale, coef = _coefficients(xs, ys)
    c3 = coef[0] if fit_degree(len(xs)) == 3 else np.zeros(coef.shape[1])
    c2, c1 = coef[-3], coef[-2]
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(c2 ** 2 - 3 * c3 * c1)  # p''(u) = 2 root at the minimum
        denominator = c2 + root
        ok = np.isfinite(root) & (root > 0) & (denominator != 0)
        vertex = np.where(ok, centre + scale * (-c1 / denominator), np.nan)
    return vertex, np.where(ok, root, -1.0)


def _on_grid(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Every row's fitted polynomial at the strengths `grid`: (rows, len(grid))."""
    centre, scale, coef = _coefficients(xs, ys)
    u = (grid - centre) / scale
    return (np.stack([u ** k for k in range(len(coef) - 1, -1, -1)], axis=1) @ coef).T


def _argmins(xs: np.ndarray, ys: np.ndarray, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's fitted minimum clipped to `bounds` (the row's lowest point where the fit has none), and whether
    the fit has a local minimum (positive curvature)."""
    vertex, curvature = _polynomial(xs, ys)
    return np.where(np.isfinite(vertex), np.clip(vertex, *bounds), xs[np.argmin(ys, axis=1)]), curvature > 0


def _constrained_argmins(xs: np.ndarray, ys: np.ndarray, violations: np.ndarray,
                         points: int = 401) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best point of its objective's fit where its constraint's fit (violation <= 0) is met, on a
    grid of `points` strengths across xs; where none is, the point nearest feasibility, and False."""
    grid = np.linspace(xs.min(), xs.max(), points)
    objective, violation = _on_grid(xs, ys, grid), _on_grid(xs, violations, grid)
    feasible = violation <= 0
    best = np.where(feasible.any(axis=1), np.where(feasible, objective, np.inf).argmin(axis=1), violation.argmin(axis=1))
    return grid[best], feasible.any(axis=1)


def _best_index(ys: np.ndarray, violations: np.ndarray | None) -> int:
    """The best point: the lowest (signed) objective among the feasible points; where none is, the least infeasible."""
    if violations is None:
        return int(np.argmin(ys))
    feasible = violations <= 0
    return int(np.argmin(np.where(feasible, ys, np.inf))) if feasible.any() else int(np.argmin(violations))


def fit_argmin(evaluations: Sequence[Evaluation], settings: Settings, around: tuple[float, float] | None = None) -> Fit:
    """The polynomial fit at one N, with its paired bootstrap interval: on the evaluations inside `around`
    (the current span) when it holds at least `window` of them, else on the best evaluation and its
    `window // 2` neighbours each side."""
    points = sorted(evaluations, key=lambda e: e.strength)
    sign = -1.0 if settings.maximise else 1.0
    bounded = settings.bound is not None
    if bounded and any(e.constraint_replicates is None for e in points):
        raise ValueError("a search with a bound needs every evaluation's constraint value and replicates")
    violations = settings.violation(np.array([e.constraint for e in points])) if bounded else None
    best = _best_index(sign * np.array([e.value for e in points]), violations)
    inside = [e for e in points if around is not None and around[0] - 1e-12 <= e.strength <= around[1] + 1e-12]
    if len(inside) >= settings.window:
        chosen = inside
    else:
        start = max(0, min(best - settings.window // 2, len(points) - settings.window))
        chosen = points[start:start + settings.window]
    xs = np.array([e.strength for e in chosen])
    # row 0: the values; rows 1..B: the bootstrap draws, matched across strengths
    ys = sign * np.vstack([[e.value for e in chosen], np.stack([e.replicates for e in chosen], axis=1)])
    cs = settings.violation(np.vstack([[e.constraint for e in chosen],
                                       np.stack([e.constraint_replicates for e in chosen], axis=1)])) if bounded else None
    bounds = (settings.lo, settings.hi)

    def optima(keep: slice) -> tuple[np.ndarray, np.ndarray]:
        """Every row's optimum on the chosen points `keep`, and whether the row's fit has one."""
        if bounded:
            return _constrained_argmins(xs[keep], ys[:, keep], cs[:, keep])
        return _argmins(xs[keep], ys[:, keep], bounds)
    found, ok = optima(slice(None))
    lowest = xs[_best_index(ys[0], None if cs is None else cs[0])]
    if bounded:  # the optimum at an end of the window's grid may lie past it
        point = float(found[0])
        edge = (np.isclose(point, xs.min()), np.isclose(point, xs.max()))
    else:  # the pooled fit says on which side the minimum lies; with no local minimum, the lowest point does
        vertex = _polynomial(xs, ys[:1])[0][0]
        point = float(np.clip(vertex, *bounds)) if np.isfinite(vertex) else float(lowest)
        edge = (vertex < xs.min(), vertex > xs.max()) if np.isfinite(vertex) else (lowest == xs.min(), lowest == xs.max())
    tail = (1 - settings.level) / 2
    lo, hi = np.quantile(found[1:], [tail, 1 - tail])
    lo, hi = min(lo, point), max(hi, point)
    shift, shifts = 0.0, False
    if len(xs) >= 4:  # refit without each end: the minimum's dependence on the window
        left, right = optima(slice(1, None))[0], optima(slice(None, -1))[0]
        moved = left - right
        shift, low, high = moved[0], *np.quantile(moved[1:], [tail, 1 - tail])
        shifts = bool(abs(shift) > settings.delta / 4 and (low > 0 or high < 0))
        lo, hi = min(lo, left[0], right[0]), max(hi, left[0], right[0])
    room = (xs.min() > settings.lo + 1e-12, xs.max() < settings.hi - 1e-12)  # strengths beyond each end
    brackets = not ((room[0] and edge[0]) or (room[1] and edge[1]))
    resolved = bool(np.mean(ok[1:]) >= settings.level)
    return Fit(point, float(lo), float(hi), resolved, tuple(xs), chosen[0].n, brackets, float(shift), shifts,
               float(lowest))


def locate(evaluate: Evaluate, settings: Settings) -> Result:
    """Search [lo, hi] for the argmin (argmax with `maximise`) of the metric `evaluate` returns."""
    done: dict[tuple[float, int], Evaluation] = {}
    n, points, used, path = settings.n0, list(np.linspace(settings.lo, settings.hi, settings.coarse)), 0, []
    around, last_width = None, np.inf
    while True:
        new = [w for w in dict.fromkeys(round(float(w), 9) for w in points) if (w, n) not in done]
        if used + len(new) * n > settings.budget:
            return Result(path[-1], "budget", used, list(done.values()), path) if path else _no_budget(settings)
        for evaluation in evaluate(new, n):
            done[(round(evaluation.strength, 9), n)] = evaluation
        used += len(new) * n
        fit = fit_argmin([e for (_, m), e in done.items() if m == n], settings, around)
        path.append(fit)
        width, span = fit.hi - fit.lo, max(fit.window) - min(fit.window)
        hangs = fit.shifts and span > 2 * settings.delta + 1e-12
        if fit.brackets and not hangs and width <= settings.delta:
            return Result(_widened(fit, settings), "located", used, list(done.values()), path)
        if not fit.brackets:  # the minimum lies beyond the span: move the span to the edge it lies past
            edge = min(fit.window) if fit.strength <= min(fit.window) else max(fit.window)
            around = _span(edge, span / 2, settings)
        elif hangs:  # the minimum moves with the window (an asymmetric curve): halve the span around the best point
            around = _span(fit.best, max(span / 4, settings.delta), settings)
        elif fit.resolved and width < SHRINK * last_width:  # refine around w* at this N
            around = _span(fit.strength, max(2 * width, (settings.hi - settings.lo) / MIN_SPAN), settings)
            last_width = width
        else:
            around = None
        points = _spread(around, [w for (w, m) in done if m == n], settings.coarse) if around else []
        if not any((round(float(w), 9), n) not in done for w in points):  # nothing new at this N: grow it
            n, points, last_width = GROWTH * n, list(fit.window), np.inf
            around = (min(fit.window), max(fit.window))
            if used + len(points) * n > settings.budget:  # the whole window does not fit: the fit's fewest across it
                points = _spread(around, fit.window, settings.window)


def _widened(fit: Fit, settings: Settings) -> Fit:
    """The located fit with its interval widened by LOCATED_MARGIN x delta each side, cut to the range (its
    coverage, with and without the margin: results/tuning/report.md)."""
    margin = LOCATED_MARGIN * settings.delta
    return replace(fit, lo=max(settings.lo, fit.lo - margin), hi=min(settings.hi, fit.hi + margin))


def _span(centre: float, half: float, settings: Settings) -> tuple[float, float]:
    """[centre - half, centre + half], cut to the range."""
    return max(settings.lo, centre - half), min(settings.hi, centre + half)


def _spread(around: tuple[float, float], scored: Sequence[float], count: int) -> list[float]:
    """`count` strengths evenly across `around`, each moved onto a strength already scored at this N where one
    lies within a quarter of their spacing (a point that close adds samples, not information)."""
    points = np.linspace(*around, count)
    near = np.asarray(scored, dtype=float)
    if not len(near):
        return list(points)
    tolerance = (around[1] - around[0]) / (count - 1) / 4
    nearest = near[np.abs(near[None] - points[:, None]).argmin(axis=1)]
    return list(np.where(np.abs(nearest - points) <= tolerance, nearest, points))


def _no_budget(settings: Settings) -> Result:
    raise ValueError(f"a budget of {settings.budget} samples cannot pay for the coarse grid "
                     f"({settings.coarse} x {settings.n0})")
