"""Sample-quality metrics as pure functions of features, computed by torch-fidelity's own
functions, with clean-fid's implementations of the same quantities as a cross-check.

  FID = |mu1 - mu2|^2 + Tr S1 + Tr S2 - 2 Tr (S1 S2)^(1/2)    (Heusel et al. 2017)
  IS  = exp(E_x KL(p(y|x) || p(y))) over 10 splits, on pre-softmax logits (Salimans et al. 2016)
  KID = unbiased MMD^2 with the cubic polynomial kernel, over subsets (Binkowski et al. 2018)
  precision / recall: k-NN manifolds, k = 3 (Kynkaanniemi et al. 2019)
  density / coverage (Naeem et al. 2020) come with their intervals from bench/stats/bootstrap.py
plus the evaluator's class consistency (accuracy on the requested labels) and mean confidence.
FID is biased in N: hold N, seeds and the reference set fixed across a sweep.
"""
from __future__ import annotations

import numpy as np
import torch
from cleanfid.fid import frechet_distance, kernel_distance
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from bench.spec.errors import BenchError
from bench.stats.memo import per_tensor

KID_SUBSET_MAX = 1000
KID_SUBSETS = 100
RNG_SEED = 2020


class MetricInputError(BenchError, ValueError):
    """Too few samples for a metric to be meaningful; the message names the minimum."""


def check_sample_count(num_samples: int, feature_dim: int) -> None:
    if num_samples <= feature_dim:
        raise MetricInputError(f"sample.num_samples={num_samples} is not above the feature dimension {feature_dim}: the "
                               f"sample covariance is singular and FID unstable; use at least {feature_dim + 1} "
                               f"(several times more for stable numbers)")


@per_tensor
def reference_statistics(ref_feats: torch.Tensor) -> dict[str, np.ndarray]:
    """torch-fidelity's statistics of a reference set, computed once per reference tensor (the process
    holds each reference's features once) and shared by every cell."""
    return fid_features_to_statistics(ref_feats.double())


def fid_and_stats(feats: torch.Tensor, ref_feats: torch.Tensor) -> dict[str, float]:
    """FID by torch-fidelity and by clean-fid from the same statistics."""
    stats, ref = fid_features_to_statistics(feats.double()), reference_statistics(ref_feats)
    fid = fid_statistics_to_metric(stats, ref, verbose=False)["frechet_inception_distance"]
    fid_clean = float(frechet_distance(stats["mu"], stats["sigma"], ref["mu"], ref["sigma"]))
    return {"fid": fid, "fid_cleanfid": fid_clean}


def fid_against_moments(feats: torch.Tensor, mu: np.ndarray, sigma: np.ndarray) -> dict[str, float]:
    """FID by torch-fidelity and by clean-fid against reference statistics alone (a statistics file)."""
    stats = fid_features_to_statistics(feats.double())
    fid = fid_statistics_to_metric(stats, {"mu": mu, "sigma": sigma}, verbose=False)["frechet_inception_distance"]
    return {"fid": fid, "fid_cleanfid": float(frechet_distance(stats["mu"], stats["sigma"], mu, sigma))}


def kid(feats: torch.Tensor, ref_feats: torch.Tensor) -> dict[str, float]:
    """KID by torch-fidelity and clean-fid; the subset size is min(1000, N, N_ref) and recorded."""
    subset = min(KID_SUBSET_MAX, len(feats), len(ref_feats))
    if subset < 2:
        raise MetricInputError(f"KID needs at least 2 samples per set, got {len(feats)} and {len(ref_feats)}")
    out = kid_features_to_metric(feats.double(), ref_feats.double(), kid_subsets=KID_SUBSETS, kid_subset_size=subset,
                                 kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1, rng_seed=RNG_SEED, verbose=False)
    state = np.random.get_state()
    np.random.seed(RNG_SEED)  # clean-fid draws its subsets from numpy's global generator
    try:
        kid_clean = float(kernel_distance(feats.double().numpy(), ref_feats.double().numpy(),
                                          num_subsets=KID_SUBSETS, max_subset_size=subset))
    finally:
        np.random.set_state(state)
    return {"kid_mean": out["kernel_inception_distance_mean"], "kid_std": out["kernel_inception_distance_std"],
            "kid_cleanfid": kid_clean, "kid_subset_size": subset}


def inception_score(logits: torch.Tensor) -> dict[str, float]:
    out = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=RNG_SEED)
    return {"is_mean": out["inception_score_mean"], "is_std": out["inception_score_std"]}


def precision_recall(feats: torch.Tensor, ref_feats: torch.Tensor) -> dict[str, float]:
    out = prc_features_to_metric(feats, ref_feats, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=True, verbose=False)
    return {"precision": out["precision"], "recall": out["recall"]}


def class_consistency(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Evaluator accuracy on the requested labels, its mean max-probability and mean p(requested)."""
    probs = logits.double().softmax(dim=1)
    return {"class_accuracy": (probs.argmax(1) == labels).double().mean().item(),
            "evaluator_confidence": probs.max(1).values.mean().item(),
            "evaluator_p_requested": probs.gather(1, labels[:, None]).mean().item()}


def distribution_metrics(feats: torch.Tensor, ref_feats: torch.Tensor, full_rank: bool = True) -> dict[str, float]:
    """FID (two implementations), KID and precision/recall of one feature space; `full_rank` refuses
    fewer samples than dimensions."""
    if full_rank:
        check_sample_count(len(feats), feats.shape[1])
    return {**fid_and_stats(feats, ref_feats), **kid(feats, ref_feats), **precision_recall(feats, ref_feats),
            "num_samples": len(feats), "num_reference": len(ref_feats)}
