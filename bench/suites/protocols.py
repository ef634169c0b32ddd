"""Published evaluation protocols a suite's cells can follow (`--protocol NAME`; each cell records it in
eval.protocol and metrics.json's `protocol`), as records: what the original evaluator computes, the
overrides that make a cell compute the same, and every known difference between the two.

  adm   Dhariwal & Nichol's evaluator (guided-diffusion, evaluations/evaluator.py): FID, sFID, IS,
        precision and recall of 50,000 samples against a reference batch.
  edm2  Karras et al.'s calculate_metrics.py (EDM2): FID and FD_DINOv2 of 50,000 samples against its
        reference pkl, three seed sets, reported as the minimum and the mean ± sd.
Reference statistics come from the user's file (eval.reference_stats); FD_DINOv2 needs DINOv2's
weights (eval.dinov2_weights). Nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.spec.errors import SpecError


@dataclass(frozen=True)
class Protocol:
    name: str
    evaluator: str  # the original evaluator
    metrics: tuple[str, ...]  # the columns it reports
    num_samples: int
    seed_sets: int  # independent sets of sample seeds, offset by num_samples
    overrides: tuple[str, ...]  # KEY=VALUE applied to every cell before the user's --set
    differences: tuple[str, ...]  # known differences from the original evaluator


RESIZE = ("resize: torch-fidelity's TF1-compatible bilinear resize to 299 x 299, as ADM's TensorFlow graph; "
          "clean-fid and EDM2's Inception use PIL-style bicubic, which moves FID (clean-fid's paper; measured on "
          "digits by `python -m bench.evaluation.resize_probe`: results/protocols/resize.md)")
PROTOCOLS = {p.name: p for p in (
    Protocol("adm", "guided-diffusion evaluations/evaluator.py (TensorFlow 1 Inception graph)",
             ("fid", "sfid", "is_mean", "precision", "recall"), 50_000, 1,
             ("eval.protocol=adm", "eval.features=inception", "sample.num_samples=50000"),
             (RESIZE,
              "network: the FID Inception ported to PyTorch (torch-fidelity's inception-v3-compat), within float "
              "rounding of the TF graph; IS needs the full Inception with its classifier (--inception-weights)",
              "sFID: Mixed_6d's first 1x1 convolution after BN+ReLU, the port of `mixed_6/conv`, its first 7 channels",
              "precision/recall: torch-fidelity's k = 3 k-NN manifolds over all samples; ADM's evaluator uses k = 3 "
              "over batches of 10,000 with its own distance blocks, and needs the reference batch's images (a "
              "statistics file has none, so precision/recall are then not computed)",
              "reference: ADM's npz gives mu, sigma, mu_s, sigma_s through eval.reference_stats")),
    Protocol("edm2", "EDM2 calculate_metrics.py (torch Inception via pickle, DINOv2 ViT-L/14 via torch hub)",
             ("fid", "fd_dinov2"), 50_000, 3,
             ("eval.protocol=edm2", "eval.features=inception", "sample.num_samples=50000"),
             (RESIZE,
              "FD_DINOv2: timm's ViT with the official weights, preprocessed as EDM2's resize_mode='torch' "
              "(bench/evaluation/dinov2.py); EDM2 loads the network through torch hub",
              "seed sets: 0..N-1, N..2N-1, 2N..3N-1 of the per-sample seed streams, not EDM2's seeds",
              "reference: EDM2's pkl gives both statistics through eval.reference_stats")),
)}


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise SpecError(f"--protocol {name!r} is not a protocol; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
