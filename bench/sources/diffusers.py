"""The `diffusers` model source: a class-conditional UNet2DModel, or a DiTTransformer2DModel sampled in
the latent space of its AutoencoderKL and decoded before features. Both come from folders written by
`save_pretrained` (config.json + weights) that the user names: the class is built from config.json
(`from_config`) and the weights are read by us (safetensors, or a .bin with weights_only=True:
bench/infra/checkpoints.py) and loaded strictly; diffusers is never given a path to unpickle.

Both are eps-models on a discrete schedule (DiT: linear betas, 1000 steps; learned sigma: the first half
of the output channels is eps). DiT's class table has one more row, the null label (= num_classes), the
label its training dropped to; a UNet2DModel's null label is whatever model.null_label says (-1: none).
Latents are decoded as x = VAE.decode(latents / scaling_factor), then clipped to [-1, 1] like any sample.
diffusers is an optional dependency (pip install 'guidance-bench[diffusers]').
"""
from __future__ import annotations

import math

import json
from pathlib import Path

import torch

from bench.infra.checkpoints import WeightsFileError, read_tensors
from bench.sources.base import LoadedModel, Source, SourceError, register_source
from bench.models.parameterisation import FlowVelocityModel
from bench.sources.noise import SCHEDULES, DiscreteEpsModel, DiscreteTimesteps, schedule_range
from bench.spec.sections import ModelSpec, NetSpec

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


WEIGHTS = "diffusion_pytorch_model"


def folder_state(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of a save_pretrained folder: one weights file, or the shards its index names."""
    for suffix in (".safetensors", ".bin"):
        index = folder / f"{WEIGHTS}{suffix}.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return {k: v for shard in shards for k, v in read_tensors(folder / Path(shard).name).items()}
        if (folder / f"{WEIGHTS}{suffix}").is_file():
            return read_tensors(folder / f"{WEIGHTS}{suffix}")
    raise SourceError(f"{folder} has no {WEIGHTS}.safetensors or .bin; name the folder that save_pretrained wrote")


def from_folder(cls: type, folder: str) -> torch.nn.Module:
    """An instance of the diffusers class `cls` built from `folder`'s config.json, its weights loaded
    strictly from the tensors we read."""
    folder_path = Path(folder).expanduser()
    config = json.loads((folder_path / "config.json").read_text())
    model = cls.from_config(config)
    try:
        state = folder_state(folder_path)
        model.load_state_dict(state, strict=True)
    except WeightsFileError as err:
        raise SourceError(str(err)) from None
    except (RuntimeError, KeyError, ValueError) as err:
        raise SourceError(f"the weights in {folder} do not fit its config.json: {str(err).splitlines()[0]}") from None
    return model.eval().requires_grad_(False)


def load_folders(path: str, vae_path: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module | None, dict]:
    """The model (and for latent models its decoder) from local folders, and the model's config."""
    diffusers = diffusers_module()
    config = model_config(path)
    if is_latent(config) and not vae_path:
        raise SourceError("a DiT samples latents: name its AutoencoderKL folder with model.vae_path")
    if is_latent(config) and not (Path(vae_path).expanduser() / "config.json").is_file():
        raise SourceError(f"model.vae_path={vae_path!r} is not a diffusers folder (no config.json)")
    model = from_folder(getattr(diffusers, config["_class_name"]), path)
    decoder = LatentDecoder(from_folder(diffusers.AutoencoderKL, vae_path)) if is_latent(config) else None
    return DiffusersEps(model).to(device), decoder, config


def _check_diffusers(spec: ModelSpec, num_classes: int) -> None:
    config = model_config(spec.path)
    diffusers_module()
    if is_latent(config) and not Path(spec.vae_path).expanduser().is_dir():
        raise SourceError(f"a DiT samples latents: model.vae_path={spec.vae_path!r} must name its AutoencoderKL folder")
    if spec.prediction == "denoiser":
        raise SourceError("model.prediction=denoiser is for a callable EDM denoiser; a diffusers model predicts "
                          "eps, v or flow (set model.prediction)")
    if (spec.prediction == "flow") != bool(spec.time_convention):
        raise SourceError("model.time_convention is given exactly for model.prediction=flow: set it to noise_at_1 "
                          "(diffusers' flow models: t = 1 noise) or noise_at_0, or leave both at their defaults")
    classes = config.get("num_embeds_ada_norm") or config.get("num_class_embeds")
    if classes and num_classes and classes != num_classes and classes != num_classes + 1:
        raise SourceError(f"model.path={spec.path!r} has {classes} classes but the dataset has {num_classes}")


def _diffusers_null(spec: ModelSpec) -> int | None:
    config = model_config(spec.path)
    if is_latent(config):
        return config["num_embeds_ada_norm"]  # DiT's extra class row, the label its training dropped to
    return spec.null_label if spec.null_label >= 0 else None


def _diffusers_eps(spec: ModelSpec, net: torch.nn.Module, config: dict) -> torch.nn.Module:
    """eps of the network: eps or v on the discrete schedule, or a flow velocity whose t is passed times
    model.timesteps (diffusers' FlowMatch schedulers' timestep = t * num_train_timesteps)."""
    if spec.prediction == "flow":
        return FlowVelocityModel(net, spec.time_convention, float(spec.timesteps))
    return DiscreteEpsModel(net, DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps)), config["in_channels"],
                            spec.prediction)


def _diffusers_range(spec: ModelSpec) -> tuple[float, float]:
    return (-math.inf, math.inf) if spec.prediction == "flow" else schedule_range(spec.schedule, spec.timesteps)


def _diffusers_shape(spec: ModelSpec, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    config = model_config(spec.path)
    return (config["in_channels"], config["sample_size"], config["sample_size"]) if is_latent(config) else data_shape


def _load_diffusers(spec: ModelSpec, shape: tuple[int, ...], num_classes: int) -> LoadedModel:
    net, decoder, config = load_folders(spec.path, spec.vae_path, "cpu")
    return LoadedModel(_diffusers_eps(spec, net, config), _diffusers_null(spec), None,
                       f"diffusers {config['_class_name']} from {spec.path}",
                       _diffusers_shape(spec, shape) if decoder is not None else None, decoder)


def _untrained_diffusers(spec: ModelSpec, net: NetSpec, shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
    config = model_config(spec.path)
    model = getattr(diffusers_module(), config["_class_name"]).from_config(config)
    return _diffusers_eps(spec, DiffusersEps(model), config)


register_source(Source(name="diffusers", check=_check_diffusers, load=_load_diffusers, null_label=_diffusers_null,
                       untrained=_untrained_diffusers, latent=lambda spec: is_latent(model_config(spec.path)),
                       sampled_shape=_diffusers_shape, noise_range=_diffusers_range))
