"""The interval machinery tested as statistics: exact replicates, coverage of a known Frechet
distance, paired differences of identical cells, and FID extrapolated in N."""
import numpy as np
import pytest
import torch
from scipy import linalg

from bench.stats.bootstrap import (FrechetReplicates, KernelReplicates, ManifoldMemberships, draw_indices, mean_replicates,
                                   row_counts)
from bench.stats.intervals import interval, paired_interval
from bench.stats.extrapolate import extrapolate, subset_sizes
from bench.evaluation.metrics import fid_and_stats, kid, precision_recall
from bench.stats.uncertainty import CellUncertainty


def gaussian_pair(d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    cov = a @ a.T + 0.5 * np.eye(d)
    mu = np.full(d, 0.3)
    truth = float((mu ** 2).sum() + np.trace(cov) + d - 2 * np.trace(linalg.sqrtm(cov)).real)
    return rng, np.linalg.cholesky(cov), mu, truth


@pytest.mark.parametrize("n, d", [(300, 16), (120, 200)])  # d x d form and Gram form
def test_frechet_replicates_equal_torch_fidelity_on_the_same_rows(n, d):
    torch.manual_seed(0)
    x, y = torch.randn(n, d) * 1.3 + 0.2, torch.randn(1500, d)
    replicates = FrechetReplicates(x, y)
    assert replicates.gram_form == (n < d)
    idx = draw_indices(n, 4)
    got = replicates(torch.cat([torch.ones(1, n, dtype=torch.float64), row_counts(idx, n)]))
    want = [fid_and_stats(x, y)["fid"]] + [fid_and_stats(x[rows], y)["fid"] for rows in idx]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_manifold_and_kernel_replicates_reproduce_the_point_estimates():
    torch.manual_seed(1)
    x, y = torch.randn(200, 8) + 0.3, torch.randn(800, 8)
    full = torch.ones(1, 200, dtype=torch.float64)
    memberships = ManifoldMemberships.of(x, y)
    points = precision_recall(x, y)
    assert memberships.precision(full)[0] == pytest.approx(points["precision"], abs=1e-6)
    assert memberships.recall(full)[0] == pytest.approx(points["recall"], abs=1e-6)
    point = kid(x, y)["kid_mean"]
    assert KernelReplicates(x, y, point)(full)[0] == pytest.approx(point, rel=1e-9)


def test_draws_depend_only_on_n_and_seed():
    assert torch.equal(draw_indices(50, 10), draw_indices(50, 10))
    assert not torch.equal(draw_indices(50, 10), draw_indices(50, 10, seed=1))
    assert row_counts(draw_indices(50, 10), 50).sum(1).eq(50).all()


def test_basic_interval_covers_a_known_frechet_distance_at_the_nominal_rate():
    """200 independent sample sets from N(mu, S) against a large fixed reference from N(0, I):
    the 95% basic interval covers the closed-form distance in 95% +- 2 binomial sd of them."""
    d, n, repetitions, draws = 8, 300, 200, 200
    rng, chol, mu, truth = gaussian_pair(d)
    reference = torch.tensor(rng.normal(size=(6000, d)))
    counts = row_counts(draw_indices(n, draws), n)
    full = torch.ones(1, n, dtype=torch.float64)
    covered = 0
    for _ in range(repetitions):
        x = torch.tensor(rng.normal(size=(n, d)) @ chol.T + mu)
        replicates = FrechetReplicates(x, reference)
        lo, hi = interval(replicates(full)[0], replicates(counts))
        covered += lo <= truth <= hi
    binomial_sd = np.sqrt(0.95 * 0.05 / repetitions)
    assert abs(covered / repetitions - 0.95) <= 2 * binomial_sd, covered


def test_paired_interval_of_identical_cells_is_exactly_zero():
    torch.manual_seed(2)
    x, y = torch.randn(150, 6), torch.randn(600, 6)
    counts = row_counts(draw_indices(150, 100), 150)
    a = FrechetReplicates(x, y)
    point = a(torch.ones(1, 150, dtype=torch.float64))[0]
    diff, lo, hi = paired_interval(point, point, a(counts), a(counts))
    assert diff == 0 and lo <= 0 <= hi and lo == hi == 0


def test_paired_interval_is_narrower_than_either_cell_when_cells_share_their_noise():
    """Two 'cells' whose samples share most of their variation (same seeds, slightly different
    model): the paired difference is resolved far better than the two intervals suggest."""
    torch.manual_seed(3)
    shared, ref = torch.randn(400, 6), torch.randn(3000, 6) + 0.4
    a, b = shared, shared * 1.1
    counts = row_counts(draw_indices(400, 200), 400)
    full = torch.ones(1, 400, dtype=torch.float64)
    ra, rb = FrechetReplicates(a, ref), FrechetReplicates(b, ref)
    pa, pb = ra(full)[0], rb(full)[0]
    diff, lo, hi = paired_interval(pb, pa, rb(counts), ra(counts))
    lo_a, hi_a = interval(pa, ra(counts))
    assert lo > 0 and hi - lo < (hi_a - lo_a) / 3


def test_extrapolated_fid_is_closer_to_the_truth_than_fid_at_n():
    d, n = 24, 800
    rng, chol, mu, truth = gaussian_pair(d, seed=4)
    reference = torch.tensor(rng.normal(size=(30000, d)))
    at_n, at_inf = [], []
    for _ in range(6):
        replicates = FrechetReplicates(torch.tensor(rng.normal(size=(n, d)) @ chol.T + mu), reference)
        at_n.append(abs(replicates(torch.ones(1, n, dtype=torch.float64))[0] - truth))
        fit = extrapolate(replicates, n, "fid")
        at_inf.append(abs(fit["fid_inf"] - truth))
        assert [m for m, _ in fit["fid_inf_points"]] == subset_sizes(n)
    assert np.mean(at_inf) < 0.75 * np.mean(at_n)


def test_cell_uncertainty_columns_bracket_their_points():
    torch.manual_seed(5)
    x, y = torch.randn(200, 8) + 0.2, torch.randn(1000, 8)
    cell = CellUncertainty(200, draws=60)
    point = fid_and_stats(x, y)["fid"]
    cell.frechet("fid", point, x, y)
    cell.mean("class_accuracy", 0.5, torch.arange(200) % 2 == 0)
    cols = cell.columns
    assert cols["fid_dim"] == 8 and cols["jackknife_groups"] == 20
    assert 0 <= cols["fid_lo"] < point < cols["fid_hi"]  # the jackknife interval at N contains its value
    assert cols["fid_inf_lo"] <= cols["fid_inf"] <= cols["fid_inf_hi"] and cols["fid_inf"] < point
    assert np.isfinite(cols["fid_cf_inf"]) and len(cols["fid_cf_inf_points"]) == len(subset_sizes(200))
    assert 0 <= cols["class_accuracy_lo"] < 0.5 < cols["class_accuracy_hi"] <= 1
    assert set(cell.replicates) == {"fid", "class_accuracy"} and len(cell.replicates["fid"]) == 60


def test_interval_ignores_failed_draws_and_respects_bounds():
    lo, hi = interval(0.99, np.array([0.97, 0.98, 0.99, 1.0, np.nan]), bounds=(0, 1))
    assert hi <= 1 and lo < 0.99
    assert np.isnan(interval(1.0, np.array([np.nan]))[0])


def test_resampling_the_reference_widens_the_interval_when_the_reference_is_small():
    torch.manual_seed(6)
    x, y = torch.randn(300, 4) + 0.3, torch.randn(150, 4)
    point = fid_and_stats(x, y)["fid"]
    fixed, both = CellUncertainty(300, draws=100), CellUncertainty(300, draws=100, resample_reference=True)
    fixed.frechet("fid", point, x, y)
    both.frechet("fid", point, x, y)
    assert both.columns["bootstrap_reference"] and not fixed.columns["bootstrap_reference"]
    width = {name: cell.columns["fid_hi"] - cell.columns["fid_lo"] for name, cell in (("fixed", fixed), ("both", both))}
    assert width["both"] > 1.2 * width["fixed"]


def test_differences_from_a_reference_method_pair_by_strength_and_pick_the_best_each_way():
    """Method B minus method A: rows at the strengths both ran (a copy of A's cell differs by exactly 0),
    and best against best, lowest for FID and highest where higher is better."""
    import pandas as pd
    from bench.stats.paired import CellReplicates, differences_from_method
    rng = np.random.default_rng(5)
    cells = [("a", 0.0, 3.0), ("a", 1.0, 2.0), ("a", 2.0, 4.0), ("b", 1.0, 2.0), ("b", 2.0, 1.5), ("b", 3.0, 6.0)]
    table = pd.DataFrame([{"run_id": f"{m}{s:g}", "method": m, "strength": s, "fid": f, "p_uncond": 0.2, "steps": 32,
                           "seed": 0, "num_samples": 100, "bootstrap_seed": 0} for m, s, f in cells])
    replicates = CellReplicates(table.iloc[:0])
    draws = {row.run_id: {"fid": row.fid + rng.normal(size=200)} for row in table.itertuples()}
    draws["b1"] = draws["a1"]  # the same samples: a difference of exactly 0
    replicates.by_run = draws
    lower = differences_from_method(table, "a", "fid", replicates=replicates).set_index("at")
    assert list(lower.index) == ["strength 1", "strength 2", "best (2 vs 1)"]
    assert lower.loc["strength 1", ["difference", "lo", "hi"]].tolist() == [0.0, 0.0, 0.0]
    assert lower.loc["strength 2", "difference"] == pytest.approx(-2.5) and lower.loc["best (2 vs 1)", "difference"] == -0.5
    higher = differences_from_method(table, "a", "fid", higher_is_better=True, replicates=replicates).set_index("at")
    assert higher.loc["best (3 vs 2)", "difference"] == pytest.approx(2.0)
    assert lower.paired.all()


def test_gram_form_replicates_equal_an_independent_dxd_computation_to_1e9():
    """The parallel Gram-form replicates (one LAPACK call per draw, the centring's null vector
    deflated) against the d x d form written out here: the resample's scatter S* has rank k - 1 (k
    distinct rows), so Tr (S_r^(1/2) S* S_r^(1/2))^(1/2) sums the square roots of its k - 1 largest
    eigenvalues (the other d - k + 1 are zero up to rounding, left out so that their sqrt(eps) noise
    does not decide the comparison)."""
    torch.manual_seed(1)
    n, d = 150, 180
    x, y = (torch.relu(torch.randn(n, d)) + 0.1).double(), torch.relu(torch.randn(900, d)).double()
    counts = torch.cat([torch.ones(1, n, dtype=torch.float64), row_counts(draw_indices(n, 12), n)])
    got = FrechetReplicates(x, y)(counts)
    mu_r, s_r = y.mean(0), torch.cov(y.T)
    vals, vecs = torch.linalg.eigh(s_r)
    root = (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
    for c, fid in zip(counts, got):
        m = c.sum()
        mu = c @ x / m
        scatter = (x - mu).T @ (c[:, None] * (x - mu)) / (m - 1)
        k = int((c > 0).sum())
        top = torch.linalg.eigvalsh(root @ scatter @ root)[-(k - 1):]
        want = ((mu - mu_r) ** 2).sum() + torch.trace(scatter) + torch.trace(s_r) - 2 * top.sqrt().sum()
        assert fid == pytest.approx(float(want), rel=1e-9)


def test_reference_statistics_are_computed_once_per_reference_tensor():
    from bench.stats.bootstrap import reference_moments
    y = torch.randn(400, 8)
    first = reference_moments(y)
    assert reference_moments(y) is first
    y.mul_(2)  # an in-place change is seen
    assert reference_moments(y) is not first
    np.testing.assert_allclose(reference_moments(y)[2], 4 * first[2], rtol=1e-12)
    key = id(y)
    del y
    assert key not in reference_moments.cache  # freed with its tensor: a new tensor cannot inherit it


def test_fid_at_infinity_is_not_estimated_below_full_rank():
    torch.manual_seed(6)
    x, y = torch.randn(60, 80) + 0.2, torch.randn(500, 80)
    cell = CellUncertainty(60, draws=50)
    point = fid_and_stats(x, y)["fid"]
    cell.frechet("fid", point, x, y)
    cols = cell.columns
    assert cols["fid_lo"] <= point <= cols["fid_hi"]
    assert np.isnan(cols["fid_inf"]) and np.isnan(cols["fid_inf_lo"]) and "N = 60 <= d = 80" in cols["fid_inf_note"]


def test_density_and_coverage_are_prdcs():
    """The per-row memberships behind the points and intervals give the maintained implementation's (prdc)
    density and coverage on the full sample, and coverage equals a direct count."""
    import contextlib
    import io

    import prdc
    torch.manual_seed(7)
    x, y = torch.randn(300, 5) + 0.3, torch.randn(400, 5)
    cell = CellUncertainty(300, draws=50)
    points = cell.manifold({"precision": 0.5, "recall": 0.5}, x, y)
    with contextlib.redirect_stdout(io.StringIO()):
        reference = prdc.compute_prdc(y.numpy(), x.numpy(), nearest_k=5)
    assert points["density"] == pytest.approx(reference["density"], abs=1e-12)
    assert points["coverage"] == pytest.approx(reference["coverage"], abs=1e-12)
    assert cell.columns["coverage_lo"] <= points["coverage"] <= cell.columns["coverage_hi"]
    direct_coverage = np.mean([(torch.cdist(y[i:i + 1], x).min() < torch.cdist(y[i:i + 1], y).kthvalue(6).values).item()
                               for i in range(len(y))])
    assert points["coverage"] == pytest.approx(direct_coverage)
    assert len(ManifoldMemberships.of(x, y).balls) == 300


def test_inception_score_leave_out_keeps_torch_fidelitys_splits():
    """With every row kept, the leave-out IS is torch-fidelity's IS exactly (same shuffle, same chunks), and
    the jackknife's standard error from it is close to IS's sampling sd over fresh sample sets."""
    from torch_fidelity.metric_isc import isc_features_to_metric

    from bench.stats.bootstrap import inception_score_leave_out
    from bench.stats.jackknife import jackknife_se, leave_out_counts

    def logits_of(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        labels, logits = torch.randint(0, 10, (1000,), generator=g), torch.randn(1000, 10, generator=g)
        logits[torch.arange(1000), labels] += 6
        return logits
    logits = logits_of(8)
    full = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)["inception_score_mean"]
    assert inception_score_leave_out(logits, torch.ones(1, 1000))[0] == pytest.approx(full, rel=1e-12)
    se = jackknife_se(inception_score_leave_out(logits, leave_out_counts(1000)))
    sd = np.std([isc_features_to_metric(logits_of(100 + s))["inception_score_mean"] for s in range(100)])
    assert 0.8 < se / sd < 1.4, (se, sd)


def test_blocked_memberships_equal_the_dense_distance_matrix_at_any_block_size():
    """Recall and coverage from the sparse pairs, computed in blocks of 7 samples, equal those read off the
    full N x M distance matrix, on resamples too."""
    torch.manual_seed(3)
    x, y = torch.randn(60, 4) + 0.2, torch.randn(90, 4)
    counts = row_counts(draw_indices(60, 30), 60)
    blocked = ManifoldMemberships.of(x, y, rows_per_block=7)
    dist = torch.cdist(x, y)
    ref_k3 = torch.cdist(y, y).kthvalue(4, dim=1).values
    ref_k5 = torch.cdist(y, y).kthvalue(6, dim=1).values
    own_k3 = torch.cdist(x, x).kthvalue(4, dim=1).values
    covers, in_ball = dist <= own_k3[:, None], dist < ref_k5[None, :]
    kept = (counts > 0).double()
    np.testing.assert_allclose(blocked.recall(counts), ((kept @ covers.double()) > 0).double().mean(1).numpy())
    np.testing.assert_allclose(blocked.coverage(counts), ((kept @ in_ball.double()) > 0).double().mean(1).numpy())
    np.testing.assert_allclose(blocked.precision(counts), mean_replicates((dist <= ref_k3[None, :]).any(1), counts))
    np.testing.assert_allclose(blocked.density(counts), mean_replicates(in_ball.sum(1).double() / 5, counts))
    assert blocked.covers.shape == (2, int(covers.sum())) and blocked.in_ball.shape == (2, int(in_ball.sum()))
