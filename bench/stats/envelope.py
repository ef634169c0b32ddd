"""The lower envelope of a quality curve: for a method's cells with a quality x (IS, class accuracy)
and FID y, the best FID it reaches at x or beyond, env(x) = min over cells with x' >= x of y(x'),
read between cells by linear interpolation. Frontier verdicts and the method ranking both read it."""
from __future__ import annotations

import numpy as np


def lower_envelope(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x sorted ascending and env at each of those x."""
    order = np.argsort(x)
    return np.asarray(x)[order], np.minimum.accumulate(np.asarray(y)[order][::-1])[::-1]


def envelope_at(x: np.ndarray, y: np.ndarray, targets: np.ndarray, *, outside: float | None = None) -> np.ndarray:
    """env at `targets`; with `outside` given, that value where a target lies beyond the range of x
    (else np.interp's clamping to the end values)."""
    xs, env = lower_envelope(x, y)
    out = np.interp(targets, xs, env)
    if outside is None:
        return out
    return np.where((targets >= xs[0]) & (targets <= xs[-1]), out, outside)
