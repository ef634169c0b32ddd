"""The DINOv2 feature space of FD_DINOv2 (Stein et al. 2023; EDM2, Karras et al. 2024), from a local file.

Architecture: timm's VisionTransformer (the network of `vit_large_patch14_dinov2`: patch 14, LayerScale,
class token, LayerNorm eps 1e-6, exact GELU), its size read off the file: embed dim from `cls_token`,
depth from the `blocks.*` keys, heads = dim / 64, MLP ratio from `mlp.fc1`. Weights: the official
`dinov2_vitl14_pretrain.pth` layout (torch hub's `dinov2_vitl14`), read by us with weights_only=True and
loaded strictly; its `mask_token` (used only in training) is dropped and its 37 x 37 position grid (518
px) is resampled to 16 x 16 for 224 px as DINOv2 itself does at run time: bicubic, scale factor
(16 + 0.1) / 37, no antialiasing, in float32.

Preprocessing, as EDM2's calculate_metrics.py (`resize_mode='torch'`): uint8 -> float 0..255,
grayscale repeated to RGB, resized to 224 x 224 by torch's bicubic interpolation with antialias=True,
divided by 255, normalised by ImageNet's mean (0.485, 0.456, 0.406) and sd (0.229, 0.224, 0.225).
Feature: the class token after the final norm (`x_norm_clstoken`), 1024-d for ViT-L/14.
Nothing is downloaded: without the file the extractor is refused, naming it and where it comes from.
Importing this module loads no torch, so the command line checks the named file before anything heavy.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from bench.spec.errors import BenchError

if TYPE_CHECKING:
    import torch

DINOV2_FILE = "dinov2_vitl14_pretrain.pth"
DINOV2_URL = f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/{DINOV2_FILE}"
IMAGE_SIZE, PATCH = 224, 14
HEAD_DIM = 64
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
INTERPOLATE_OFFSET = 0.1  # DINOv2's interpolate_offset
PREPROCESSING = ("grayscale repeated to RGB; resized to 224x224 by torch bicubic with antialias (EDM2's "
                 "resize_mode='torch'); /255; ImageNet mean/std; feature: class token after the final norm")


class DinoV2WeightsError(BenchError, ValueError):
    """The DINOv2 weights file is missing or not in the official layout; the message says what is expected."""


def how_to_get() -> str:
    return (f"name the official DINOv2 ViT-L/14 weights file {DINOV2_FILE} (from {DINOV2_URL}) with "
            "--set eval.dinov2_weights=PATH; nothing is ever downloaded")


def check_cells(specs) -> None:
    """Every spec that extracts DINOv2 features (as its main features, or FD_DINOv2 beside them) names a
    file that exists (run before torch is imported)."""
    for spec in specs:
        if spec.eval.protocol == "edm2" and not spec.eval.dinov2_weights:
            raise DinoV2WeightsError(f"the edm2 protocol reports FD_DINOv2 beside FID: {how_to_get()}")
        if spec.eval.features == "dinov2" or spec.eval.dinov2_weights:
            check_named(spec.eval.dinov2_weights)


def check_named(path: str) -> Path:
    """The named file, checked to exist (cheap: before any work; its contents are checked when built)."""
    if not path:
        raise DinoV2WeightsError(f"eval.features=dinov2 needs its weights: {how_to_get()}")
    given = Path(path).expanduser()
    if not given.is_file():
        raise DinoV2WeightsError(f"eval.dinov2_weights={path!r} does not exist: {how_to_get()}")
    return given


def architecture(state: dict[str, torch.Tensor]) -> dict[str, int | float]:
    """The ViT's size, read off the official key layout."""
    try:
        dim = state["cls_token"].shape[-1]
        depth = 1 + max(int(m[1]) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
        hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
        patch = state["patch_embed.proj.weight"].shape[-1]
        grid = round((state["pos_embed"].shape[1] - 1) ** 0.5)
    except (KeyError, ValueError, AttributeError, IndexError) as err:
        raise DinoV2WeightsError(f"the DINOv2 file is not in the official layout (cls_token, pos_embed, patch_embed.proj, "
                                 f"blocks.N.{{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}}, norm; "
                                 f"missing or malformed: {err}); {how_to_get()}") from None
    if patch != PATCH:
        raise DinoV2WeightsError(f"the DINOv2 file has patch size {patch}, expected {PATCH} (a /14 model)")
    return {"embed_dim": dim, "depth": depth, "num_heads": max(dim // HEAD_DIM, 1), "mlp_ratio": hidden / dim,
            "grid": grid}


def resample_position_grid(pos_embed: torch.Tensor, grid: int, new_grid: int) -> torch.Tensor:
    """(1, 1 + grid^2, D) -> (1, 1 + new_grid^2, D) as DINOv2's interpolate_pos_encoding."""
    import torch
    import torch.nn.functional as F
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    dim = patches.shape[-1]
    scale = (new_grid + INTERPOLATE_OFFSET) / grid
    image = patches.float().reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
    resized = F.interpolate(image, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if resized.shape[-2:] != (new_grid, new_grid):
        raise DinoV2WeightsError(f"resampling DINOv2's {grid}x{grid} position grid gave {tuple(resized.shape[-2:])}")
    return torch.cat([cls, resized.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)], dim=1)


def build(path: str | Path) -> torch.nn.Module:
    """The ViT with the file's weights, strictly loaded, in eval mode."""
    from timm.models.vision_transformer import VisionTransformer

    from bench.infra.checkpoints import WeightsFileError, read_tensors
    try:
        state = read_tensors(path, name=f"DINOv2 weights {path}")
    except WeightsFileError as err:
        raise DinoV2WeightsError(f"{err}; {how_to_get()}") from None
    if not isinstance(state, dict):
        raise DinoV2WeightsError(f"{path} holds a {type(state).__name__}, not a state dict; {how_to_get()}")
    arch = architecture(state)
    net = VisionTransformer(img_size=IMAGE_SIZE, patch_size=PATCH, embed_dim=arch["embed_dim"], depth=arch["depth"],
                            num_heads=arch["num_heads"], mlp_ratio=arch["mlp_ratio"], init_values=1.0, num_classes=0,
                            global_pool="token")
    state = {k: v for k, v in state.items() if k != "mask_token"}
    state["pos_embed"] = resample_position_grid(state["pos_embed"], arch["grid"], IMAGE_SIZE // PATCH)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise DinoV2WeightsError(f"{path} does not match the DINOv2 ViT layout: {str(err).splitlines()[0]}") from None
    return net.eval()


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the normalised 224 x 224 RGB input, as EDM2 prepares it."""
    import torch
    import torch.nn.functional as F
    x = x.to(torch.float32)
    x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
    x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic", antialias=True)
    mean, std = (torch.tensor(v, device=x.device).reshape(1, 3, 1, 1) for v in (MEAN, STD))
    return (x / 255 - mean) / std
