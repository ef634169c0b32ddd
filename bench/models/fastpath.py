"""How the diffusion network is evaluated while sampling: fp32 eager, or the fast path.

The fast path changes only how eps_theta(z, lambda, c) is computed, never the sampler's
arithmetic (which stays fp32):
  - channels_last memory format for the network's weights and inputs (sample.channels_last),
  - bf16 autocast around the network (sample.precision=bf16),
  - torch.compile of the network (sample.compile).
Which of them `--fast` turns on is measured per network and machine (bench/models/autotune.py).
The network output is returned as fp32 in the default memory format. Every network call
runs under torch.inference_mode (no autograd bookkeeping; classifier guidance takes its
gradient through the classifier, not this network).
"""
from __future__ import annotations

import torch

from bench.spec.sections import SampleSpec

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}  # config.PRECISIONS, as torch dtypes


def native_bf16(device: str | torch.device) -> tuple[bool, str]:
    """Whether bf16 matmul/convolution run natively on this device, and the evidence."""
    device = torch.device(device)
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"torch.cuda.is_bf16_supported() = {ok}"
    found = {name: bool(getattr(torch.cpu, f"_is_{name}_supported", lambda: False)())
             for name in ("amx_tile", "avx512_bf16")}
    return any(found.values()), ", ".join(f"{k}={v}" for k, v in found.items())


RECOMPILE_LIMIT = 64  # compiled variants of one forward before dynamo gives up and runs it eagerly


def compiled(module: torch.nn.Module, **options) -> torch.nn.Module:
    """torch.compile(module, **options) with dynamo's recompile limit raised to RECOMPILE_LIMIT. Every
    instance of a network class shares its forward's guard cache, so the variants one process compiles
    (memory format x autocast x grad mode, for sampling and for training: autotune times them all) pass
    dynamo's default of 8, after which it would silently run the rest eagerly."""
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, RECOMPILE_LIMIT)
    return torch.compile(module, **options)


class NetworkRunner(torch.nn.Module):
    """eps_theta evaluated with a SampleSpec's precision, memory format and compile settings."""

    def __init__(self, model: torch.nn.Module, spec: SampleSpec, device: str | torch.device):
        super().__init__()
        self.device_type = torch.device(device).type
        self.dtype = DTYPES[spec.precision]
        self.memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format
        self.model = model.to(memory_format=self.memory_format)
        self.forward_fn = compiled(self.model, dynamic=False) if spec.compile else self.model

    def forward(self, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(self.device_type, self.dtype, enabled=self.dtype != torch.float32):
            eps = self.forward_fn(z.contiguous(memory_format=self.memory_format), lam, labels)
        return eps.to(torch.float32).contiguous()

    def describe(self) -> dict[str, str]:
        """The settings as recorded in every run's metrics."""
        return {"network_dtype": str(self.dtype).removeprefix("torch."),
                "memory_format": "channels_last" if self.memory_format == torch.channels_last else "contiguous",
                "compiled": self.forward_fn is not self.model}
