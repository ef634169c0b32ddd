"""The coverage of a cell's FID intervals, measured on Gaussians where every target is known.

Samples x ~ N(delta 1, s^2 I_d) are scored against a fixed reference of `reference` rows from N(0, I_d),
as a cell is (bench/stats/uncertainty.py). Two targets, two intervals:

  FID at N     target E[FID_N | reference], by Monte Carlo over `truth_draws` fresh sample sets;
               interval: the delete-a-group jackknife's (`fid_lo`, `fid_hi`).
  FID at inf   target the distance of the sample distribution to the reference's empirical moments,
               |delta 1 - mu_r|^2 + Tr (s^2 I + S_r - 2 s S_r^(1/2)) (closed form given the reference);
               interval: the basic bootstrap's (`fid_inf_lo`, `fid_inf_hi`), reported only for N > d.

Run `python -m bench.stats.coverage` to write results/intervals/coverage.csv and report.md;
tests/stats/test_coverage.py runs the same code at fewer repetitions.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench.stats.bootstrap import FrechetReplicates, draw_indices, row_counts
from bench.stats.intervals import LEVEL, interval
from bench.stats.jackknife import jackknife_interval, leave_out_counts


@dataclass(frozen=True)
class Regime:
    """One simulated setting: feature dimension, sample and reference sizes, and the sample's shift/scale."""
    name: str
    dim: int
    n: int
    reference: int
    delta: float = 0.3
    scale: float = 1.2


REGIMES = (Regime("full rank, d = 8", 8, 300, 6000), Regime("full rank, d = 64 (the evaluator's)", 64, 1000, 6000),
           Regime("rank-deficient, N / d = 1/2 (Inception's at N = 1000)", 256, 128, 6000),
           Regime("rank-deficient, N / d = 0.7, N mod 20 != 0", 100, 70, 6000),
           Regime("distance near 0 (FD well below its sd)", 8, 300, 6000, delta=0.1, scale=1.1))


def _fid(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float(FrechetReplicates(x, ref)(torch.ones(1, len(x), dtype=torch.float64))[0])


def _distance_to_reference(regime: Regime, ref: torch.Tensor) -> float:
    mu_r, s_r = ref.mean(0), torch.cov(ref.T)
    vals = torch.linalg.eigvalsh(s_r).clamp(min=0)
    d = regime.dim
    return float(((regime.delta - mu_r) ** 2).sum() + d * regime.scale ** 2 + vals.sum()
                 - 2 * regime.scale * vals.sqrt().sum())


def simulate(regime: Regime, reps: int, truth_draws: int, bootstrap: int = 200, seed: int = 0) -> dict:
    """Coverage of both intervals over `reps` sample sets (one fixed reference), with binomial sds."""
    g = torch.Generator().manual_seed(seed)
    ref = torch.randn(regime.reference, regime.dim, generator=g, dtype=torch.float64)

    def sample() -> torch.Tensor:
        return regime.delta + regime.scale * torch.randn(regime.n, regime.dim, generator=g, dtype=torch.float64)
    expected_at_n = float(np.mean([_fid(sample(), ref) for _ in range(truth_draws)]))
    distance = _distance_to_reference(regime, ref)
    leave_out = leave_out_counts(regime.n)
    counts = row_counts(draw_indices(regime.n, bootstrap), regime.n)
    full_rank = regime.n > regime.dim
    at_n, at_inf = [], []
    for _ in range(reps):
        replicates = FrechetReplicates(sample(), ref)
        point = float(replicates(torch.ones(1, regime.n, dtype=torch.float64))[0])
        lo, hi, _ = jackknife_interval(point, replicates(leave_out), LEVEL, (0.0, np.inf))
        at_n.append(lo <= expected_at_n <= hi)
        if full_rank:
            lo, hi = interval(point, replicates(counts), LEVEL, (0.0, np.inf))
            at_inf.append(lo <= distance <= hi)

    def rate(hits: list[bool]) -> tuple[float, float]:
        p = float(np.mean(hits)) if hits else float("nan")
        return p, float(np.sqrt(LEVEL * (1 - LEVEL) / len(hits))) if hits else float("nan")
    (cov_n, sd_n), (cov_inf, sd_inf) = rate(at_n), rate(at_inf)
    return {**asdict(regime), "reps": reps, "truth_draws": truth_draws, "bootstrap": bootstrap,
            "expected_fid_at_n": expected_at_n, "distance": distance, "coverage_at_n": cov_n, "binomial_sd": sd_n,
            "coverage_at_inf": cov_inf, "binomial_sd_inf": sd_inf}


def main(argv: list[str] | None = None) -> None:
    import pandas as pd
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--truth-draws", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=Path("results/intervals"))
    args = parser.parse_args(argv)
    rows = pd.DataFrame([simulate(r, args.reps, args.truth_draws, seed=i) for i, r in enumerate(REGIMES)])
    args.out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out / "coverage.csv", index=False)
    table = rows[["name", "n", "reference", "reps", "coverage_at_n", "coverage_at_inf", "binomial_sd"]]
    (args.out / "report.md").write_text(
        "# Coverage of the FID intervals on Gaussians\n\nGenerated by `python -m bench.stats.coverage "
        f"--reps {args.reps} --truth-draws {args.truth_draws}` (bench/stats/coverage.py says what is simulated). "
        "`coverage_at_n`: the jackknife interval printed beside FID at N, against E[FID_N | reference]; "
        "`coverage_at_inf`: the basic bootstrap interval of FID∞ against the distance to the reference "
        "(reported only for N > d). Nominal level 95%.\n\n" + table.to_markdown(index=False, floatfmt=".4g") + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
