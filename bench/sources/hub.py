"""The `diffusers` model source: a class-conditional UNet2DModel, or a DiTTransformer2DModel sampled in
the latent space of its AutoencoderKL and decoded before features. Both come from folders written by
`save_pretrained` (config.json + weights) that the user names, loaded with local_files_only=True.

Both are eps-models on a discrete schedule (DiT: linear betas, 1000 steps; learned sigma: the first half
of the output channels is eps). DiT's class table has one more row, the null label (= num_classes), the
label its training dropped to; a UNet2DModel's null label is whatever model.null_label says (-1: none).
Latents are decoded as x = VAE.decode(latents / scaling_factor), then clipped to [-1, 1] like any sample.
diffusers is an optional dependency (pip install 'guidance-bench[diffusers]').
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .noise import SourceError

CLASSES = ("UNet2DModel", "DiTTransformer2DModel")


def diffusers_module():
    try:
        import diffusers
    except ImportError as err:
        raise SourceError("model.source=diffusers needs the diffusers package: pip install 'guidance-bench[diffusers]'") from err
    return diffusers


def model_config(path: str) -> dict:
    """The config.json of a save_pretrained folder, checked to be a class this source adapts."""
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise SourceError(f"model.path={path!r} is not a diffusers folder (no config.json); name the folder that "
                          "save_pretrained wrote")
    config = json.loads((folder / "config.json").read_text())
    if config.get("_class_name") not in CLASSES:
        raise SourceError(f"model.path={path!r} holds a {config.get('_class_name')!r}; this source adapts "
                          f"{' and '.join(CLASSES)}")
    return config


def is_latent(config: dict) -> bool:
    return config["_class_name"] == "DiTTransformer2DModel"


class DiffusersEps(torch.nn.Module):
    """net(x_t, t, labels) of a diffusers model, as DiscreteEpsModel calls networks."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(x, t, class_labels=labels).sample


class LatentDecoder(torch.nn.Module):
    """latents -> images in the model range: VAE.decode(latents / scaling_factor)."""

    def __init__(self, vae: torch.nn.Module):
        super().__init__()
        self.vae, self.scale = vae, vae.config.scaling_factor

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.scale).sample


def load(path: str, vae_path: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module | None, dict]:
    """The model (and for latent models its decoder) from local folders, and the model's config."""
    diffusers = diffusers_module()
    config = model_config(path)
    if is_latent(config) and not vae_path:
        raise SourceError("a DiT samples latents: name its AutoencoderKL folder with model.vae_path")
    try:
        model = getattr(diffusers, config["_class_name"]).from_pretrained(path, local_files_only=True)
        decoder = (LatentDecoder(diffusers.AutoencoderKL.from_pretrained(vae_path, local_files_only=True))
                   if is_latent(config) else None)
    except (OSError, ValueError, RuntimeError) as err:
        raise SourceError(f"diffusers could not load {path!r} / {vae_path!r}: {err}") from err
    return DiffusersEps(model.eval().requires_grad_(False)).to(device), decoder, config
