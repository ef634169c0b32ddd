"""Running under torchrun: torch.distributed with gloo (CPU) or NCCL (GPU).

    torchrun --standalone --nproc_per_node=N -m bench.run --suite NAME

Training (DistributedDataParallel): every rank draws the same global batch from the same
seeded generator and trains on its contiguous 1/N of the rows; DDP averages the gradients,
so a step equals the single-process step on the whole batch (mean loss over equal shards).
Sampling and feature extraction: rank r takes a contiguous 1/N of the cell's seeds; since
every sample draws all its noise from its own seed, the gathered samples are the
single-process samples. Metrics, figures and every file are computed and written on rank 0
(`on_main`), and its result or error is broadcast so all ranks take the same path.
Without torchrun (WORLD_SIZE unset or 1) every function here is the single-process identity.
"""
from __future__ import annotations

import os
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

from bench.spec.errors import BenchError

T = TypeVar("T")


class ProcessCountError(BenchError, ValueError):
    """A batch that does not split evenly over the torchrun processes."""


def init(device: str) -> str:
    """Join the torchrun process group if there is one; returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    cuda = device.startswith("cuda")
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=torch.device(device) if cuda else None)
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def shard(items: range) -> range:
    """This rank's contiguous share of `items` (sizes differ by at most one); in rank order they concatenate to `items`."""
    n, w, r = len(items), world_size(), rank()
    return items[r * n // w:(r + 1) * n // w]


def batch_rows(batch_size: int) -> slice:
    """This rank's rows of a global training batch; the batch must split evenly for the step to
    equal the single-process step."""
    w = world_size()
    if batch_size % w:
        raise ProcessCountError(f"batch size {batch_size} does not split evenly over {w} processes; "
                         f"use a multiple of {w} (--set train.batch_size=... / classifier.batch_size=...)")
    per = batch_size // w
    return slice(rank() * per, (rank() + 1) * per)


def data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """DDP around `model` when distributed (gradients averaged across ranks), else `model`."""
    if not active():
        return model
    device_ids = [model_device(model)] if model_device(model).type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The average of a scalar over ranks (the loss of the whole global batch)."""
    if not active():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world_size()


def gather(obj: T) -> list[T]:
    """Every rank's object, in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_cat(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Concatenate each named tensor over ranks in rank order (CPU copies are exchanged)."""
    parts = gather({k: v.cpu() for k, v in tensors.items()})
    return {k: torch.cat([p[k] for p in parts]) for k in tensors}


def on_main(fn: Callable[[], T]) -> T:
    """Run fn on rank 0 only and give its result to every rank; an exception raised there is
    re-raised on every rank, so no rank waits forever on a collective the others skipped."""
    if not active():
        return fn()
    result: list[Any] = [None, None]
    if is_main():
        try:
            result[0] = fn()
        except Exception as err:  # noqa: BLE001 -- re-raised below on every rank
            result[1] = err
    dist.broadcast_object_list(result, src=0)
    if result[1] is not None:
        raise result[1]
    return result[0]


def shutdown() -> None:
    """Leave the process group together: a barrier first, so no rank tears down its gloo connections
    while another still uses them (which aborts that rank at exit)."""
    if active():
        dist.barrier()
        dist.destroy_process_group()
