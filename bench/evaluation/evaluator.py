"""The offline evaluator: a small CNN trained on clean images, used only to score samples.

It is deliberately independent of the guidance classifier (baselines/): a plain
VGG-style CNN written here (not timm), its own seed, trained on clean images only with
random-shift augmentation. Its 64-d penultimate activations are the features for
FID/KID/precision-recall; its pre-softmax logits feed IS. Weights are committed in
bench/evaluation/evaluator_weights/<dataset>.pt with a manifest <dataset>.json recording their
sha256 (checked at every load), held-out accuracy and the command that trained them.

Retrain:  python -m bench.evaluation.evaluator --dataset NAME [--size 16] --epochs N (each manifest records the command that trained it)
"""
from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.data.datasets import ImageData, load_dataset
from bench.infra.checkpoints import read_tensors
from bench.infra.store import CorruptFileError, atomic_write_bytes, atomic_write_json, sha256_bytes
from bench.spec.errors import BenchError
from bench.spec.sections import DataSpec

WEIGHTS_DIR = Path(__file__).parent / "evaluator_weights"


def weights_dir() -> Path:
    """The committed evaluators, or $BENCH_EVALUATOR_DIR (a folder of <key>.pt + <key>.json manifests)."""
    return Path(os.environ.get("BENCH_EVALUATOR_DIR", WEIGHTS_DIR))
FEATURE_DIM = 64
EVALUATOR_SEED = 20211207  # unrelated to any diffusion or guidance-classifier seed


class EvaluatorNet(nn.Module):
    """conv-conv-pool-conv-conv-globalpool -> fc(64) features -> relu -> fc(num_classes) logits."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.body = nn.Sequential(*block(in_channels, 32), *block(32, 32), nn.MaxPool2d(2),
                                  *block(32, 64), *block(64, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.features = nn.Linear(64, FEATURE_DIM)  # pre-activation: no dead (all-zero) feature dimensions
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2))
        self.logits = nn.Linear(FEATURE_DIM, num_classes)

    @staticmethod
    def normalise(images: torch.Tensor) -> torch.Tensor:
        return images.float() / 127.5 - 1.0

    def forward_both(self, images_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(self.body(self.normalise(images_uint8)))
        return feats, self.logits(self.head(feats))

    def forward(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return self.forward_both(images_uint8)[1]


def _shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random translation by up to max_shift pixels (zero padding), per image."""
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (n,), generator=generator) for _ in range(2))
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


@torch.no_grad()
def accuracy(model: EvaluatorNet, data: ImageData, batch_size: int = 500) -> float:
    model.eval()
    correct = sum((model(data.images[i:i + batch_size]).argmax(1) == data.labels[i:i + batch_size]).sum().item()
                  for i in range(0, len(data), batch_size))
    return correct / len(data)


def evaluator_key(data: DataSpec) -> str:
    """Weights are per dataset and resolution: `mnist`, `mnist16` (MNIST resized to 16x16), `digits`."""
    return f"{data.name}{data.size or ''}"


def train_evaluator(data: DataSpec, epochs: int, batch_size: int = 128, lr: float = 3e-3) -> tuple[EvaluatorNet, float]:
    """Train on the clean train split; returns the model and its held-out accuracy."""
    train, held = load_dataset(data, "train"), load_dataset(data, "heldout")
    torch.manual_seed(EVALUATOR_SEED)
    generator = torch.Generator().manual_seed(EVALUATOR_SEED)
    model = EvaluatorNet(train.shape[0], train.num_classes)
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    max_shift = max(1, train.shape[-1] // 10)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(train), generator=generator).split(batch_size):
            images = _shift(train.images[idx], max_shift, generator)
            loss = F.cross_entropy(model(images), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval(), accuracy(model, held)


def save_evaluator(model: EvaluatorNet, key: str, heldout_accuracy: float, command: str,
                   folder: Path = WEIGHTS_DIR) -> dict:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    blob = buffer.getvalue()
    manifest = {"dataset": key, "sha256": sha256_bytes(blob), "heldout_accuracy": heldout_accuracy,
                "feature_dim": FEATURE_DIM, "seed": EVALUATOR_SEED, "command": command,
                "in_channels": model.body[0].in_channels, "num_classes": model.logits.out_features}
    atomic_write_bytes(folder / f"{key}.pt", blob)
    atomic_write_json(folder / f"{key}.json", manifest)
    return manifest


class EvaluatorMissing(BenchError, FileNotFoundError):
    """No committed evaluator for this dataset and resolution; the message says how to train one."""


def load_evaluator(dataset: str, folder: Path | None = None) -> tuple[EvaluatorNet, dict]:
    """Load committed weights (`dataset` is an evaluator key such as mnist16) after checking their sha256."""
    folder = folder or weights_dir()
    path, manifest_path = folder / f"{dataset}.pt", folder / f"{dataset}.json"
    if not path.exists() or not manifest_path.exists():
        known = sorted(p.stem for p in folder.glob("*.json"))
        raise EvaluatorMissing(f"no evaluator weights for dataset {dataset!r} in {folder} (have: {known}); "
                               "train them with: python -m bench.evaluation.evaluator --dataset NAME [--size N]")
    manifest = json.loads(manifest_path.read_text())
    blob = path.read_bytes()
    if sha256_bytes(blob) != manifest["sha256"]:
        raise CorruptFileError(f"evaluator weights {path} have sha256 {sha256_bytes(blob)}, but {manifest_path} "
                               f"records {manifest['sha256']}; the weights are corrupt or not the recorded ones. "
                               f"Restore them (git checkout) or retrain: python -m bench.evaluation.evaluator --dataset {dataset}")
    model = EvaluatorNet(manifest["in_channels"], manifest["num_classes"])
    model.load_state_dict(read_tensors(blob, str(path)))
    return model.eval().requires_grad_(False), manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.evaluation.evaluator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=["mnist", "fashion", "mnist5k", "digits"])
    parser.add_argument("--size", type=int, default=0, help="resize images to this side (0: native)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=str(WEIGHTS_DIR))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = DataSpec(args.dataset, size=args.size)
    model, acc = train_evaluator(data, args.epochs)
    command = f"python -m bench.evaluation.evaluator --dataset {args.dataset} --size {args.size} --epochs {args.epochs}"
    manifest = save_evaluator(model, evaluator_key(data), acc, command, Path(args.out))
    print(f"{evaluator_key(data)}: held-out accuracy {acc:.4f} after {args.epochs} epochs in "
          f"{time.perf_counter() - start:.0f}s; sha256 {manifest['sha256'][:16]} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
