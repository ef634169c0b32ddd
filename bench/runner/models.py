"""What a cell samples with: its diffusion model, guidance classifier and guide, trained or loaded
from the cache, or the pretrained pieces of its model source; each timed as stage "train"."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import torch

from bench.data.datasets import load_dataset
from bench.guidance import method_needs
from bench.infra import distributed
from bench.infra.stages import Stopwatch, train_key
from bench.infra.store import CellLock, atomic_write_bytes, cache_root
from bench.models.train import model_id, model_path, train_diffusion
from bench.sources import check_source, load_model
from bench.sources.classifier import NOISY_CLASSIFIER
from bench.spec.hashing import stable_hash
from bench.spec.sections import RunSpec


@dataclass(frozen=True)
class CellModels:
    """What a cell samples with: the eps-model, the guidance classifier, the guide (None unless its method
    needs one), the model's null label (-1: num_classes; None: none), and for latent models the shape
    sampled and the decoder to images."""
    model: torch.nn.Module
    classifier: torch.nn.Module
    guide: torch.nn.Module | None
    null_label: int | None = -1
    sample_shape: tuple[int, ...] | None = None
    decode: torch.nn.Module | None = None


@contextmanager
def training_claim(checkpoint: Path) -> Iterator[None]:
    """Hold the model's training lock (beside its checkpoint in the cache) while it is trained or
    loaded, as cells are claimed: a second runner on a cold cache waits for the first's checkpoint
    and loads it instead of training the same model again. Rank 0 holds it for its job (the other
    ranks wait for rank 0 at training's first collective)."""
    lock = CellLock(checkpoint.parent / "train.lock")
    if distributed.is_main() and not lock.acquire(wait=False):
        print(f"another runner is training {checkpoint.parent.name}; waiting for its checkpoint",
              file=sys.stderr, flush=True)
        lock.acquire(wait=True)
    try:
        yield
    finally:
        lock.release()


def train_models(spec: RunSpec, watch: Stopwatch, *, device: str, quiet: bool) -> CellModels:
    """The cell's diffusion model, guidance classifier and (where its method needs one) guide, trained
    or loaded from the cache, or the pretrained pieces of the spec's model source (bench/sources); each
    timed as stage "train" with its images seen (steps x batch)."""
    def diffusion(kind: str, net, train) -> torch.nn.Module:
        with training_claim(model_path(spec.data, net, train)), \
                watch.stage("train", f"{kind} {spec.data.name} {model_id(spec.data, net, train)}",
                            key=train_key(kind, spec.data.name, stable_hash(net)), units=train.steps * train.batch_size,
                            unit="images", cached=model_path(spec.data, net, train).exists()):
            return train_diffusion(spec.data, net, train, device=device, quiet=quiet)
    source, loaded = check_source(spec.model, 0), None
    if source.trains:
        model, classifier = diffusion("diffusion", spec.net, spec.train), None
    else:
        train_split = load_dataset(spec.data, "train")
        with watch.stage("train", f"load {spec.model.source} {spec.model.path}", cached=True):
            loaded = load_model(spec.model, train_split.shape, train_split.num_classes, device)
        model, classifier = loaded.eps, loaded.classifier
    if classifier is None:  # the source has none of its own: the harness's noisy classifier
        c = spec.classifier
        with training_claim(NOISY_CLASSIFIER.path(spec.data, c, cache_root())), \
                watch.stage("train", f"classifier {spec.data.name} {NOISY_CLASSIFIER.id(spec.data, c)}",
                            units=c.steps * c.batch_size, key=train_key("classifier", spec.data.name, f"w{c.width}"),
                            unit="images", cached=NOISY_CLASSIFIER.path(spec.data, c, cache_root()).exists()):
            classifier = NOISY_CLASSIFIER.train(spec.data, c, cache=cache_root(), device=device, quiet=quiet)
    guide = (diffusion("guide", *spec.guide_net_and_train())
             if "guide" in method_needs(spec.guidance.method, spec.guidance.kwargs()) else None)
    if loaded is None:
        return CellModels(model, classifier, guide)
    return CellModels(model, classifier, guide, loaded.null_label, loaded.sample_shape, loaded.decode)


def decoded(samples: torch.Tensor, decode: torch.nn.Module | None, batch_size: int, device: str) -> torch.Tensor:
    """Samples as images in [-1, 1]: latent models' samples through their decoder, in batches."""
    if decode is None:
        return samples
    with torch.inference_mode():
        return torch.cat([decode(batch.to(device)).float().cpu() for batch in samples.split(batch_size)])


def write_classifier_accuracy(classifier: torch.nn.Module, spec: RunSpec, suite_dir: Path, device: str) -> None:
    """The guidance classifier's accuracy by noise level, written once per suite
    (classifiers/<id>/accuracy_by_lambda.csv; bench.report.plots plots it)."""
    path = suite_dir / "classifiers" / NOISY_CLASSIFIER.id(spec.data, spec.classifier) / "accuracy_by_lambda.csv"

    def write_accuracy_by_noise_level() -> None:
        if not path.exists():
            table = pd.DataFrame(NOISY_CLASSIFIER.accuracy_by_noise_level(classifier, spec.data, device=device))
            table.insert(0, "noise_aware", spec.classifier.noise_aware)
            atomic_write_bytes(path, table.to_csv(index=False).encode())
    distributed.on_main(write_accuracy_by_noise_level)
