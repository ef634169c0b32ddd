"""A small ADM-style UNet (Dhariwal & Nichol 2021, appendix; Ho et al. 2020) predicting eps.

Residual blocks with GroupNorm and scale-shift conditioning on an embedding of the
noise level lambda plus a learned class embedding with num_classes + 1 entries
(index num_classes is the null token used for the unconditional model), optional
self-attention at low resolutions, nearest-neighbour upsampling and strided
convolutions for downsampling.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.spec.sections import NetSpec


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


def lambda_embedding(lam: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of lambda/20 (lambda spans [-20, 20]) over log-spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), half, device=lam.device, dtype=lam.dtype))
    angles = (lam / 20.0)[:, None] * freqs[None] * math.pi
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """eps_theta(z, lambda, labels); labels == num_classes selects the unconditional model."""

    def __init__(self, spec: NetSpec, in_channels: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        ch = spec.channels
        emb_dim = 4 * ch
        self.emb_dim = emb_dim
        self.lambda_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim)
        self.stem = nn.Conv2d(in_channels, ch, 3, padding=1)

        self.down = nn.ModuleList()
        skips, c = [ch], ch
        for level, mult in enumerate(spec.channel_mult):
            for _ in range(spec.blocks_per_level):
                self.down.append(self._stage(c, ch * mult, emb_dim, spec, level))
                c = ch * mult
                skips.append(c)
            if level < len(spec.channel_mult) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, emb_dim, spec.dropout), Attention(c), ResBlock(c, c, emb_dim, spec.dropout)])

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(spec.channel_mult))):
            for _ in range(spec.blocks_per_level + 1):
                self.up.append(self._stage(c + skips.pop(), ch * mult, emb_dim, spec, level))
                c = ch * mult
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.head = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    @staticmethod
    def _stage(c_in: int, c_out: int, emb_dim: int, spec: NetSpec, level: int) -> nn.ModuleList:
        layers = [ResBlock(c_in, c_out, emb_dim, spec.dropout)]
        if level in spec.attention_levels:
            layers.append(Attention(c_out))
        return nn.ModuleList(layers)

    @staticmethod
    def _run_layer(layer: nn.Module, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, nn.ModuleList):
            for sub in layer:
                h = sub(h, emb) if isinstance(sub, ResBlock) else sub(h)
            return h
        return layer(h, emb) if isinstance(layer, ResBlock) else layer(h)

    def forward(self, z: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb = self.lambda_mlp(lambda_embedding(lam, self.stem.out_channels)) + self.class_emb(labels)
        h = self.stem(z)
        hs = [h]
        for layer in self.down:
            h = self._run_layer(layer, h, emb)
            hs.append(h)
        for layer in self.mid:
            h = self._run_layer(layer, h, emb)
        for layer in self.up:
            if isinstance(layer, nn.Upsample):
                h = layer(h)
                continue
            h = self._run_layer(layer, torch.cat([h, hs.pop()], dim=1), emb)
        return self.head(h)
