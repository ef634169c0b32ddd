"""The noisy classifier p_phi(y | z_lambda, lambda) for classifier guidance (Dhariwal & Nichol 2021, sec. 4).

Architecture: timm's ResNet (`timm.create_model("resnet18", pretrained=False, ...)`) cut to one
BasicBlock per stage with widths w-2w-4w-8w (w = 32 by default, 16 in the smoke suite), GroupNorm instead of BatchNorm (a batch mixes
every noise level, so batch statistics would blur them), and the CIFAR-style stem (3x3 conv,
stride 1, no max-pool) so 28x28 and 8x8 inputs keep their resolution in the first stage. It
trains on this CPU in minutes. The noise level enters as an extra input channel holding
lambda/20 everywhere, which any timm model accepts through `in_chans`.

Training noises clean images with the diffusion model's forward process and lambda
distribution (u ~ U[0,1], lambda = lambda(u)) and minimises cross-entropy. The ablation
`noise_aware=False` trains the same network on clean images only (lambda = lambda_max) and
is always told lambda_max, like an ordinary classifier.
"""
from __future__ import annotations

import time
from pathlib import Path

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.data.datasets import load_dataset, to_model_range
from bench.infra import distributed
from bench.infra.checkpoints import load_cached_weights, save_checkpoint
from bench.infra.progress import Stage
from bench.infra.store import atomic_write_json
from bench.models.process import LAMBDA_MAX, LAMBDA_MIN, add_noise, lambda_of_u, training_lambdas
from bench.models.train import TrainingDiverged
from bench.spec.hashing import stable_hash, to_dict
from bench.spec.sections import ClassifierSpec, DataSpec


def _group_norm(channels: int, **factory_kwargs) -> nn.GroupNorm:
    return nn.GroupNorm(8, channels, **factory_kwargs)


class GuidanceClassifier(nn.Module):
    """A classifier of noisy images, logits = self(z, lambda), with the gradient classifier guidance takes."""

    def log_prob_grad(self, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """grad_z log p(y | z, lambda), by autograd through the classifier (forward + backward)."""
        dtype = next(self.parameters()).dtype
        with torch.enable_grad():
            z = z.detach().to(dtype).requires_grad_(True)
            log_p = F.log_softmax(self(z, lam.to(dtype)), dim=1).gather(1, labels[:, None]).sum()
            return torch.autograd.grad(log_p, z)[0]


class NoisyClassifier(GuidanceClassifier):
    """logits = f(z, lambda): a timm ResNet over [z, lambda/20 plane]."""

    def __init__(self, in_channels: int, num_classes: int, noise_aware: bool = True, width: int = 32):
        super().__init__()
        self.noise_aware = noise_aware
        self.net = timm.create_model(
            "resnet18", pretrained=False, in_chans=in_channels + 1, num_classes=num_classes,
            layers=(1, 1, 1, 1), channels=tuple(width * m for m in (1, 2, 4, 8)),
            norm_layer=_group_norm)
        stem_channels = self.net.conv1.out_channels
        self.net.conv1 = nn.Conv2d(in_channels + 1, stem_channels, 3, stride=1, padding=1, bias=False)
        self.net.maxpool = nn.Identity()

    def forward(self, z: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        lam = lam if self.noise_aware else torch.full_like(lam, LAMBDA_MAX)
        plane = (lam.to(z.dtype) / 20.0).reshape(-1, 1, 1, 1).expand(-1, 1, *z.shape[2:])
        return self.net(torch.cat([z, plane], dim=1))


def classifier_id(data: DataSpec, spec: ClassifierSpec) -> str:
    return stable_hash({"data": data, "classifier": spec})


def classifier_path(data: DataSpec, spec: ClassifierSpec, cache: Path) -> Path:
    """Where the trained classifier of (data, spec) is cached."""
    return cache / "classifiers" / classifier_id(data, spec) / "classifier.pt"


def train_classifier(data: DataSpec, spec: ClassifierSpec, *, cache: Path, device: str = "cpu",
                     quiet: bool = False) -> NoisyClassifier:
    """Return the cached classifier for (data, spec), training it first if needed."""
    path = classifier_path(data, spec, cache)
    folder = path.parent
    dataset = load_dataset(data, "train")
    model = NoisyClassifier(dataset.shape[0], dataset.num_classes, spec.noise_aware, spec.width)
    distributed.barrier()  # every rank decides on the same state of the cache
    if load_cached_weights(model, path):
        return model.to(device).eval().requires_grad_(False)
    torch.manual_seed(spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    model = NoisyClassifier(dataset.shape[0], dataset.num_classes, spec.noise_aware, spec.width).to(device)
    parallel = distributed.data_parallel(model)
    rows = distributed.batch_rows(spec.batch_size)  # this rank's share of each global batch
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.lr, total_steps=spec.steps)
    x_all, y_all = to_model_range(dataset.images), dataset.labels
    start = time.perf_counter()
    stage = Stage(range(spec.steps), f"train classifier {data.name} noise_aware={spec.noise_aware}", "steps",
                  quiet=quiet or not distributed.is_main())
    for step in stage:
        idx = torch.randint(len(x_all), (spec.batch_size,), generator=generator)
        x, y = x_all[idx], y_all[idx]
        lam = (training_lambdas(spec.batch_size, generator) if spec.noise_aware
               else torch.full((spec.batch_size,), LAMBDA_MAX))
        eps = torch.randn(x.shape, generator=generator)
        x, y, lam, eps = (t[rows].to(device) for t in (x, y, lam, eps))
        loss = F.cross_entropy(parallel(add_noise(x, lam, eps), lam), y)
        global_loss = distributed.mean_over_ranks(loss)
        if not torch.isfinite(global_loss):
            raise TrainingDiverged(f"guidance classifier loss became {global_loss.item()} at step {step}; "
                                   f"lower classifier.lr (now {spec.lr:g})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            stage.status(loss=f"{global_loss.item():.4f}")
    model.eval().requires_grad_(False)
    if distributed.is_main():
        save_checkpoint(path, {k: v.cpu() for k, v in model.state_dict().items()},
                        to_dict({"data": data, "classifier": spec}))
        atomic_write_json(folder / "train_log.json", {"seconds": time.perf_counter() - start, "spec": to_dict(spec),
                                                      "world_size": distributed.world_size()})
    distributed.barrier()
    return model


def accuracy_by_noise_level(model: NoisyClassifier, data: DataSpec, *, buckets: int = 8, seed: int = 0,
                            device: str = "cpu") -> list[dict]:
    """Held-out accuracy with images noised at lambda drawn within equal-width u-buckets
    (reported as lambda ranges), plus one row exactly at lambda_min."""
    held = load_dataset(data, "heldout")
    x = to_model_range(held.images).to(device)
    g = torch.Generator().manual_seed(seed)
    rows = []
    with torch.no_grad():
        for b in range(buckets):
            u = (b + torch.rand(len(x), generator=g)) / buckets
            lam = lambda_of_u(u).to(device)
            z = add_noise(x, lam, torch.randn(x.shape, generator=g).to(device))
            correct = (model(z, lam).argmax(1).cpu() == held.labels).float().mean().item()
            lo, hi = lambda_of_u(torch.tensor((b + 1) / buckets)).item(), lambda_of_u(torch.tensor(b / buckets)).item()
            rows.append({"u_low": b / buckets, "u_high": (b + 1) / buckets, "lambda_low": lo, "lambda_high": hi,
                         "accuracy": correct})
        lam = torch.full((len(x),), LAMBDA_MIN, device=device)
        z = add_noise(x, lam, torch.randn(x.shape, generator=g).to(device))
        rows.append({"u_low": 1.0, "u_high": 1.0, "lambda_low": LAMBDA_MIN, "lambda_high": LAMBDA_MIN,
                     "accuracy": (model(z, lam).argmax(1).cpu() == held.labels).float().mean().item()})
    return rows


@torch.no_grad()
def confidence_on_samples(model: NoisyClassifier, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The guidance classifier's own view of final samples (at lambda_max): accuracy on the
    requested labels and mean confidence, to set beside the independent evaluator's. The images may
    be on the CPU and the model on a GPU: each batch goes to the model's device."""
    device = distributed.model_device(model)
    probs = torch.cat([F.softmax(model(x.to(device), torch.full((len(x),), LAMBDA_MAX, device=device)), dim=1).cpu()
                       for x in to_model_range(images).split(500)]).double()
    return {"guidance_classifier_accuracy": (probs.argmax(1) == labels).double().mean().item(),
            "guidance_classifier_confidence": probs.max(1).values.mean().item()}
