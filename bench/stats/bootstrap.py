"""Bootstrap replicates of every per-cell metric, and the intervals built from them.

A cell's N samples are resampled with replacement eval.bootstrap times; draw b uses the same row indices in
every cell with the same N (`draw_indices` is a fixed function of N and the seed), and cells of a
suite share their sample seeds, so row i of two cells came from the same noise: the difference of
two cells' replicates, draw by draw, is a paired bootstrap of their difference.

Intervals are basic (reverse-percentile) bootstrap intervals, [2 t - q(1 - a/2), 2 t - q(a/2)]
(Davison & Hinkley 1997, eq. 5.6): FID is biased upward in 1/N and a resample of N rows from N
carries about the same bias again, so the basic interval is centred on the bias-corrected estimate
2 t - mean(t*) and covers the population value, where the percentile interval would sit above the
estimate. tests/stats/test_bootstrap.py measures the coverage on Gaussians with a known Frechet distance.

The reference set stays fixed unless `resample_reference`: then each draw also resamples the
reference rows (a second, independent stream) and the Frechet replicates recompute the reference
statistics each draw (d x d eigendecompositions: slow for 2048-d features).

Each replicate is computed exactly, not approximated:
  FID*   |mu* - mu_r|^2 + Tr S* + Tr S_r - 2 Tr (S* S_r)^(1/2), where the nonzero eigenvalues of
         S* S_r are those of the small symmetric matrix of `_frechet_trace_sqrt` (Gram form when the
         resample has fewer distinct rows than dimensions);
  IS*    torch-fidelity's Inception Score of the resampled logits;
  KID*   the unbiased MMD^2 of Binkowski et al. (2018) with pairs of the same original row left out,
         shifted so that the full sample gives the point estimate of torch-fidelity (whose Kyy term
         is constant under resampling of the samples);
  precision*, recall*   the k-NN manifold memberships of Kynkaanniemi et al. (2019), computed once
         per row and resampled (sample radii stay those of the full sample);
  density*, coverage*   Naeem et al. (2020, eq. 3-4) from the same per-row view, k = 5:
         density = (1 / kN) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))] (a mean over samples Y_j),
         coverage = (1 / M) sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))] (over reference points X_i);
         computed here rather than by `prdc`, which holds the N x N and M x M distance matrices
         (10 GB each at N = 50,000); tests/stats/test_bootstrap.py checks them against prdc;
  accuracy*             the mean of the resampled per-row correctness.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from threadpoolctl import threadpool_limits
from torch_fidelity.metric_isc import isc_features_to_metric

from bench.stats.memo import per_tensor

SEED = 20260101
PRC_NEIGHBORHOOD = 3
DC_NEIGHBORHOOD = 5  # density and coverage's k (Naeem et al. 2020)
CHUNK = 64  # draws per batched eigendecomposition in the d x d form
OUTER_PRODUCT_ELEMENTS = 2 ** 26  # float64 elements (512 MiB) of the precomputed row outer products


def draw_indices(n: int, draws: int, seed: int = SEED) -> torch.Tensor:
    """(draws, n) row indices, the same for every cell with n samples."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + n)
    return torch.randint(0, n, (draws, n), generator=generator)


def row_counts(idx: torch.Tensor, n: int) -> torch.Tensor:
    """(draws, n) float64 multiplicities of each row in each draw of row indices."""
    idx = idx.reshape(-1, idx.shape[-1])
    return torch.zeros(len(idx), n, dtype=torch.float64).scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (len(x) - 1)


@per_tensor
def reference_moments(ref_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mean, covariance and its trace (float64) of a reference set's features: computed once per
    reference tensor and shared by every cell that scores against it."""
    mu, sigma = _stats(ref_feats.double())
    return mu, sigma, float(torch.trace(sigma))


def _sqrt_psd(s: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(s)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


class FrechetReplicates:
    """FID of weighted resamples of `feats` against fixed reference statistics, exactly and fast.

    With per-row counts c (summing to m) the resample's centred scatter is X^T K X with
    K = D - c c^T / m, D = diag(c). The nonzero eigenvalues of S* S_r then equal those of
    (I - q q^T) D^(1/2) X S_r X^T D^(1/2) (I - q q^T) / (m - 1) with q = c^(1/2) / m^(1/2) (Gram
    form, its size the number of distinct rows, less the null vector q), or of S_r^(1/2) S* S_r^(1/2)
    (d x d form, batched over draws), whichever is smaller. The Gram matrix X S_r X^T and the
    reference statistics are computed once; the draws' eigenvalue problems run in parallel.
    """

    def __init__(self, feats: torch.Tensor, ref_feats: torch.Tensor | None = None,
                 ref_moments: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Against a reference's features, or its (mu, sigma) alone (a statistics file)."""
        self.x = feats.double()
        if ref_moments is not None:
            mu_r, s_r = (torch.as_tensor(m, dtype=torch.float64) for m in ref_moments)
            self.mu_r, self.s_r, self.trace_r = mu_r, s_r, float(torch.trace(s_r))
        else:
            self.mu_r, self.s_r, self.trace_r = reference_moments(ref_feats)
        self.gram_form = len(self.x) < self.x.shape[1]
        self.gram = self.x @ self.s_r @ self.x.T if self.gram_form else None
        self.gram_np: np.ndarray | None = None
        self.root_r = None if self.gram_form else _sqrt_psd(self.s_r)
        self.outer: torch.Tensor | None = None

    def _trace_sqrt_gram(self, c: np.ndarray) -> float:
        """Tr (S* S_r)^(1/2) of one draw from the Gram form (numpy, so that draws run in parallel threads).
        The centring's null vector q is removed exactly: with the Householder reflection P that maps q
        onto e_0, P H P restricted to the other k - 1 coordinates is the centred matrix without its
        zero eigenvalue, whose rounding would otherwise enter the sum as sqrt(+-eps)."""
        rows = c.nonzero()[0]
        m = c.sum()
        s = np.sqrt(c[rows])
        h = s[:, None] * self.gram_np[np.ix_(rows, rows)] * s[None, :] / (m - 1)
        v = s / m ** 0.5
        v[0] += np.copysign(1.0, v[0])  # P = I - 2 v v^T / |v|^2 sends q = s / sqrt(m) to -+e_0
        v *= np.sqrt(2.0) / np.linalg.norm(v)
        hv = h @ v
        h += np.outer(v, (v @ hv) * v - hv) - np.outer(hv, v)  # P H P = H - v hv^T - hv v^T + (v.hv) v v^T
        values = scipy.linalg.eigvalsh(h[1:, 1:], driver="evd", check_finite=False, overwrite_a=True)
        return float(np.sqrt(values.clip(min=0)).sum())

    def _trace_sqrt_grams(self, counts: torch.Tensor) -> torch.Tensor:
        """The Gram form of every draw: one single-threaded LAPACK call per draw, as many at once as
        torch has threads (faster here than multithreaded calls one after another, which also contend
        with torch's idle threads)."""
        if self.gram_np is None:
            self.gram_np = self.gram.numpy()
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(torch.get_num_threads()) as pool:
            return torch.tensor(list(pool.map(self._trace_sqrt_gram, counts.numpy())), dtype=torch.float64)

    def _second_moments(self, counts: torch.Tensor) -> torch.Tensor:
        """sum_i c_i x_i x_i^T per draw, through the rows' outer products when they fit in memory; a 0/1
        subset that leaves out few rows (a jackknife's) as the total minus the left-out rows' part."""
        n, d = self.x.shape
        if n * d * d <= OUTER_PRODUCT_ELEMENTS:
            if self.outer is None:
                self.outer = (self.x[:, :, None] * self.x[:, None, :]).reshape(n, d * d)
            return (counts @ self.outer).reshape(len(counts), d, d)
        if ((counts == 0) | (counts == 1)).all() and (counts == 0).sum(1).max() < n // 2:
            total = self.x.T @ self.x
            return torch.stack([total - self.x[c == 0].T @ self.x[c == 0] for c in counts])
        return torch.stack([(self.x * c[:, None]).T @ self.x for c in counts])

    def _trace_sqrt_dense(self, counts: torch.Tensor, m: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        second = self._second_moments(counts)
        scatter = (second - m[:, None, None] * mu[:, :, None] * mu[:, None, :]) / (m[:, None, None] - 1)
        return torch.linalg.eigvalsh(self.root_r @ scatter @ self.root_r).clamp(min=0).sqrt().sum(1)

    def __call__(self, counts: torch.Tensor) -> np.ndarray:
        """FID of each row of `counts` (row multiplicities: a resample, or a 0/1 subset)."""
        out = []
        for part in counts.split(CHUNK):
            m = part.sum(1)
            mu = part @ self.x / m[:, None]
            trace = ((part @ (self.x ** 2).sum(1)) - m * (mu ** 2).sum(1)) / (m - 1)
            fid = ((mu - self.mu_r) ** 2).sum(1) + trace + self.trace_r
            if self.gram_form:
                fid -= 2 * self._trace_sqrt_grams(part)
            else:
                fid -= 2 * self._trace_sqrt_dense(part, m, mu)
            out.append(fid)
        return torch.cat(out).numpy()


def frechet_with_reference_resampled(feats: torch.Tensor, ref_feats: torch.Tensor, idx: torch.Tensor,
                                     ref_idx: torch.Tensor) -> np.ndarray:
    """FID replicates when both sets are resampled (the reference statistics change every draw)."""
    return np.array([FrechetReplicates(feats[rows], ref_feats[ref_rows])(torch.ones(1, len(rows), dtype=torch.float64))[0]
                     for rows, ref_rows in zip(idx, ref_idx)])


def inception_score_replicates(logits: torch.Tensor, idx: torch.Tensor, seed: int) -> np.ndarray:
    """IS (10 splits, as the point estimate) of each resample of the logits."""
    return np.array([isc_features_to_metric(logits[rows], splits=10, shuffle=True, rng_seed=seed)["inception_score_mean"]
                     for rows in idx])


IS_SPLITS, IS_SHUFFLE_SEED = 10, 2020  # torch-fidelity's defaults, which the point estimate uses (evaluation/metrics.py)


def inception_score_leave_out(logits: torch.Tensor, keep: torch.Tensor) -> np.ndarray:
    """IS of each 0/1 subset of rows (a jackknife's leave-outs) with every kept row in the split the full
    sample's IS put it in (torch-fidelity's shuffle and chunks), so a leave-out changes which rows count,
    not how they are split: the split assignment's own noise stays out of the jackknife's spread."""
    n = len(logits)
    position = np.empty(n, dtype=np.int64)
    position[np.random.RandomState(IS_SHUFFLE_SEED).permutation(n)] = np.arange(n)
    bounds = np.array([i * n // IS_SPLITS for i in range(IS_SPLITS + 1)])
    split = torch.from_numpy(np.searchsorted(bounds, position, side="right") - 1)
    p, log_p = logits.double().softmax(1), logits.double().log_softmax(1)
    out = []
    for row in keep.bool():
        scores = []
        for k in range(IS_SPLITS):
            rows = row & (split == k)
            q = p[rows].mean(0, keepdim=True)
            scores.append(float((p[rows] * (log_p[rows] - q.log())).sum(1).mean().exp()))
        out.append(np.mean(scores))
    return np.array(out)


def mean_replicates(per_row: torch.Tensor, counts: torch.Tensor) -> np.ndarray:
    """Replicates of a mean of per-row values (class accuracy, precision memberships)."""
    return (counts @ per_row.double() / counts.sum(1)).numpy()


def _kth_neighbour_radii(x: torch.Tensor, k: int, rows_per_block: int = 1024) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row (the row itself is its nearest, at 0)."""
    return torch.cat([torch.cdist(block, x).kthvalue(k + 1, dim=1).values for block in x.split(rows_per_block)])


@per_tensor
def _reference_radii(ref_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference rows' k-th neighbour radii for precision/recall and for density/coverage, once per
    reference tensor (every cell shares them)."""
    return (_kth_neighbour_radii(ref_feats.float(), PRC_NEIGHBORHOOD),
            _kth_neighbour_radii(ref_feats.float(), DC_NEIGHBORHOOD))


@dataclass(frozen=True)
class ManifoldMemberships:
    """Per-row k-NN manifold memberships: `inside` (sample inside the reference manifold; its mean is
    precision), `balls` (how many k = 5 reference balls hold the sample, over k; its mean is density), and
    two sparse (sample, reference point) relations, each a (2, pairs) index tensor: `covers` (the sample's
    ball contains the reference point; recall is the fraction of reference points covered by some sample)
    and `in_ball` (the sample lies in the reference point's k = 5 ball; coverage is the fraction of
    reference points with some sample inside). Precision/recall use <= as torch-fidelity, density/coverage
    < as prdc. Distances are computed in blocks of samples and only the pairs that relate are kept, so
    memory grows with N + M and the pairs, not with N x M (50,000 x 50,000 float distances are 10 GB)."""
    inside: torch.Tensor
    balls: torch.Tensor
    covers: torch.Tensor
    in_ball: torch.Tensor
    references: int

    @classmethod
    def of(cls, feats: torch.Tensor, ref_feats: torch.Tensor, rows_per_block: int = 1024) -> "ManifoldMemberships":
        ref_radii, ref_dc_radii = _reference_radii(ref_feats)
        feats, ref_feats = feats.float(), ref_feats.float()
        radii = _kth_neighbour_radii(feats, PRC_NEIGHBORHOOD)
        inside, balls, covers, in_ball = [], [], [], []
        for start in range(0, len(feats), rows_per_block):
            dist = torch.cdist(feats[start:start + rows_per_block], ref_feats)
            inside.append((dist <= ref_radii[None, :]).any(1))
            held = dist < ref_dc_radii[None, :]
            balls.append(held.sum(1).double() / DC_NEIGHBORHOOD)
            in_ball.append(_pairs(held, start))
            covers.append(_pairs(dist <= radii[start:start + rows_per_block, None], start))
        return cls(inside=torch.cat(inside), balls=torch.cat(balls), covers=torch.cat(covers, 1),
                   in_ball=torch.cat(in_ball, 1), references=len(ref_feats))

    def precision(self, counts: torch.Tensor) -> np.ndarray:
        return mean_replicates(self.inside, counts)

    def recall(self, counts: torch.Tensor) -> np.ndarray:
        return _fraction_reached(self.covers, self.references, counts)

    def density(self, counts: torch.Tensor) -> np.ndarray:
        return mean_replicates(self.balls, counts)

    def coverage(self, counts: torch.Tensor) -> np.ndarray:
        return _fraction_reached(self.in_ball, self.references, counts)


def _pairs(relates: torch.Tensor, first_row: int) -> torch.Tensor:
    """(2, pairs) (sample, reference point) indices of a block's true entries, rows offset to the full sample."""
    pairs = relates.nonzero().T
    pairs[0] += first_row
    return pairs


def _fraction_reached(pairs: torch.Tensor, references: int, counts: torch.Tensor, rows_per_chunk: int = 16) -> np.ndarray:
    """Per row of counts: the fraction of the reference points reached by some kept sample, from the
    (sample, reference point) pairs that reach."""
    out = []
    for part in counts.split(rows_per_chunk):
        hits = (part[:, pairs[0]] > 0).double()  # (rows, pairs): the pair's sample is kept
        reached = torch.zeros(len(part), references, dtype=torch.float64).index_add_(1, pairs[1], hits)
        out.append((reached > 0).double().mean(1))
    return torch.cat(out).numpy()


class KernelReplicates:
    """Replicates of the unbiased MMD^2 (cubic polynomial kernel, gamma = 1/d) under resampling of
    the samples: pairs of copies of one original row count as the diagonal and are left out."""

    def __init__(self, feats: torch.Tensor, ref_feats: torch.Tensor, point: float):
        x, y = feats.double(), ref_feats.double()
        gamma = 1.0 / x.shape[1]
        self.kxx = (gamma * x @ x.T + 1) ** 3
        self.kxy = sum(((gamma * x @ part.T + 1) ** 3).sum(1) for part in y.split(4096)) / len(y)
        self.offset = point - self._sample_terms(torch.ones(1, len(x), dtype=torch.float64))[0]

    def _sample_terms(self, counts: torch.Tensor) -> torch.Tensor:
        m = counts.sum(1)
        pairs = m ** 2 - (counts ** 2).sum(1)
        within = ((counts @ self.kxx) * counts).sum(1) - (counts ** 2) @ self.kxx.diagonal()
        return within / pairs - 2 * (counts @ self.kxy) / m

    def __call__(self, counts: torch.Tensor) -> np.ndarray:
        return (self.offset + self._sample_terms(counts)).numpy()
