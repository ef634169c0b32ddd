"""Joint conditional/unconditional training of the diffusion model (Ho & Salimans, Algorithm 1), with the
objective train.objective: the paper's eps-prediction, v-prediction, or the flow velocity u = eps - x0 on the
linear interpolant x_t = (1 - t) x0 + t eps (the network sees x_t; bench/models/parameterisation.py).

Adam with linear warm-up, gradient clipping and an EMA of the weights (the EMA is what
samples). The loss is checked every step: a NaN/inf stops training with a message naming
the step, after writing the last good weights. A trained model is cached under the hash
of (data, net, train) spec, so every sampling cell of a sweep reuses it.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.data.datasets import load_dataset, to_model_range
from bench.infra import distributed
from bench.infra.checkpoints import load_cached_weights, save_checkpoint
from bench.infra.progress import Stage
from bench.infra.store import atomic_write_json, cache_root
from bench.models.fastpath import compiled
from bench.models.parameterisation import as_eps_model, flow_scale, from_eps
from bench.models.process import add_noise, drop_labels, training_lambdas
from bench.models.unet import UNet
from bench.spec.errors import BenchError
from bench.spec.hashing import stable_hash, to_dict
from bench.spec.sections import DataSpec, NetSpec, TrainSpec


class TrainingDiverged(BenchError, RuntimeError):
    """A loss (diffusion model or guidance classifier) became NaN/inf; the message names the step and the fix."""


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)


def draw_batch(x_all: torch.Tensor, y_all: torch.Tensor, train: TrainSpec, null_index: int,
               generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """One global training batch (x, labels with dropout, lambda, eps), identical on every rank."""
    idx = torch.randint(len(x_all), (train.batch_size,), generator=generator)
    x, y = x_all[idx], drop_labels(y_all[idx], train.p_uncond, null_index, generator)
    lam = training_lambdas(train.batch_size, generator, objective=train.objective)
    return x, y, lam, torch.randn(x.shape, generator=generator)


def diffusion_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor,
                   eps: torch.Tensor, objective: str = "eps") -> torch.Tensor:
    """The regression loss of the objective (mean over the rows given), z = alpha x + sigma eps:
    eps: E ||net(z, lambda, c) - eps||^2;  v: E ||net(z, lambda, c) - (alpha eps - sigma x)||^2;
    flow: E ||net(x_t, lambda, c) - (eps - x)||^2, x_t = (1 - t) x + t eps = z / (alpha + sigma)."""
    z = add_noise(x, lam, eps)
    if objective == "eps":
        return F.mse_loss(model(z, lam, y), eps)
    if objective == "v":
        return F.mse_loss(model(z, lam, y), from_eps("v", z, lam, eps))
    return F.mse_loss(model(z * flow_scale(lam, z), lam, y), eps - x)


def model_id(data: DataSpec, net: NetSpec, train: TrainSpec) -> str:
    return stable_hash({"data": data, "net": net, "train": train})


def model_path(data: DataSpec, net: NetSpec, train: TrainSpec, cache: Path | None = None) -> Path:
    """Where the trained EMA weights of this spec are cached."""
    return (cache or cache_root()) / "models" / model_id(data, net, train) / "ema.pt"


def train_diffusion(data: DataSpec, net: NetSpec, train: TrainSpec, *, device: str = "cpu",
                    quiet: bool = False, cache: Path | None = None) -> torch.nn.Module:
    """Return the EMA model for this spec as an eps-model (bench/models/parameterisation.py: the UNet itself
    for train.objective=eps), training it (and caching it) if needed."""
    spec = to_dict({"data": data, "net": net, "train": train})
    path = model_path(data, net, train, cache)
    folder = path.parent
    dataset = load_dataset(data, "train")
    ema = UNet(net, dataset.shape[0], dataset.num_classes)
    distributed.barrier()  # every rank decides on the same state of the cache
    if load_cached_weights(ema, path):
        return as_eps_model(ema.to(device).eval().requires_grad_(False), train.objective)

    generator = torch.Generator().manual_seed(train.seed)
    torch.manual_seed(train.seed)
    memory_format = torch.channels_last if train.channels_last else torch.contiguous_format
    model = UNet(net, dataset.shape[0], dataset.num_classes).to(device, memory_format=memory_format)
    ema = copy.deepcopy(model).requires_grad_(False)
    parallel = distributed.data_parallel(model)
    forward = compiled(parallel) if train.compile else parallel
    autocast = torch.autocast(torch.device(device).type, torch.bfloat16, enabled=train.precision == "bf16")
    rows = distributed.batch_rows(train.batch_size)  # this rank's share of each global batch
    opt = torch.optim.Adam(model.parameters(), lr=train.lr)
    warmup = max(1, min(200, train.steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    x_all, y_all = to_model_range(dataset.images), dataset.labels
    losses = []
    start = time.perf_counter()
    bar = Stage(range(train.steps), f"train {data.name} p_uncond={train.p_uncond:g}", "steps",
                quiet=quiet or not distributed.is_main())
    for step in bar:
        batch = draw_batch(x_all, y_all, train, dataset.num_classes, generator)
        with autocast:
            loss = diffusion_loss(forward, *(t[rows].to(device) for t in batch), objective=train.objective)
        global_loss = distributed.mean_over_ranks(loss)  # the same value, and decision, on every rank
        if not torch.isfinite(global_loss):
            if distributed.is_main():
                save_checkpoint(folder / "last_good.pt", ema.state_dict(), spec, step=step)
            raise TrainingDiverged(f"training loss became {global_loss.item()} at step {step}; the last good EMA "
                                   f"weights are in {folder / 'last_good.pt'}; lower train.lr or raise train.grad_clip")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        opt.step()
        sched.step()
        ema_update(ema, model, train.ema_decay)
        losses.append(global_loss.item())
        if step % 50 == 0:
            bar.status(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
    if distributed.is_main():
        save_checkpoint(path, {k: v.cpu() for k, v in ema.state_dict().items()}, spec, step=train.steps)
        atomic_write_json(folder / "train_log.json", {"seconds": time.perf_counter() - start, "spec": spec, "loss_every_50": losses[::50], "world_size": distributed.world_size(),
                                                      "final_loss_mean_100": sum(losses[-100:]) / len(losses[-100:])})
    distributed.barrier()
    return as_eps_model(ema.eval(), train.objective)
