"""Sample grids as PNG (the paper's qualitative figures)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from torchvision.utils import make_grid

from bench.infra.store import atomic_write_bytes


def save_grid(path: Path, images: torch.Tensor, nrow: int | None = None, scale: int = 0) -> None:
    """Write uint8 images (N, C, H, W) as one grid PNG, upscaled so small digits are visible."""
    from PIL import Image
    nrow = nrow or int(math.ceil(math.sqrt(len(images))))
    grid = make_grid(images, nrow=nrow, padding=1, pad_value=255)
    scale = scale or max(1, 64 // images.shape[-1])
    img = Image.fromarray(grid.permute(1, 2, 0).numpy().squeeze()).resize(
        (grid.shape[2] * scale, grid.shape[1] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
