"""The ADM networks of Dhariwal & Nichol (guided-diffusion), written so that the released checkpoints'
state dicts load strictly: the UNet eps-model (with learned sigma: 2C output channels) and the encoder
half used as the noisy classifier, with an attention-pooled head.

Blocks: a residual block conditions on the timestep (and class) embedding by scale and shift of its
second normalisation, h = GN(h) (1 + scale) + shift ("use_scale_shift_norm"); resolution changes are
residual blocks that resample inside ("resblock_updown"); self-attention over the H*W positions with
heads of 64 channels, q and k each scaled by ch^(-1/4) before their product. Timesteps enter through the
sinusoidal embedding [cos(t f_i), sin(t f_i)], f_i = 10000^(-i / half), then an MLP. Module names follow
the released key layout (input_blocks.N.M..., middle_block, output_blocks, out, time_embed, label_emb).

`CONFIGS` holds the released 64x64 model and classifier and a tiny configuration of each for tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class AdmConfig:
    image_size: int
    in_channels: int
    model_channels: int
    out_channels: int
    num_res_blocks: int
    attention_ds: tuple[int, ...]  # downsampling factors (image_size // resolution) with attention
    channel_mult: tuple[int, ...]
    num_classes: int | None = None
    num_head_channels: int = 64
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    use_new_attention_order: bool = False
    dropout: float = 0.0
    encoder: bool = False  # the classifier: input blocks, middle block, attention pool to out_channels logits


CONFIGS = {
    # 64x64_diffusion.pt: --attention_resolutions 32,16,8 --class_cond --learn_sigma --num_channels 192
    # --num_head_channels 64 --num_res_blocks 3 --resblock_updown --use_new_attention_order --use_scale_shift_norm
    "imagenet64": AdmConfig(64, 3, 192, 6, 3, (2, 4, 8), (1, 2, 3, 4), num_classes=1000,
                            use_new_attention_order=True, dropout=0.1),
    # 64x64_classifier.pt: --classifier_depth 4, width 128, attention at 32,16,8, attention pool
    "imagenet64-classifier": AdmConfig(64, 3, 128, 1000, 4, (2, 4, 8), (1, 2, 3, 4), encoder=True),
    # tiny versions of both (random weights in tests; GroupNorm's 32 groups need multiples of 32 channels)
    "tiny": AdmConfig(8, 1, 32, 2, 1, (2,), (1, 1), num_classes=10, num_head_channels=32, use_new_attention_order=True),
    "tiny-classifier": AdmConfig(8, 1, 32, 10, 1, (2,), (1, 1), num_head_channels=32, encoder=True),
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[cos(t f_i), sin(t f_i)] with f_i = max_period^(-i / half), i < half = dim // 2."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class GroupNorm32(nn.GroupNorm):
    """32-group norm computed in fp32."""

    def __init__(self, channels: int):
        super().__init__(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


class EmbedSequential(nn.Sequential):
    """A sequence whose residual blocks also take the embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class Resample(nn.Module):
    """2x nearest upsampling or 2x average-pool downsampling (no weights), inside residual blocks."""

    def __init__(self, up: bool):
        super().__init__()
        self.up = up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.up else F.avg_pool2d(x, 2)


class ResBlock(nn.Module):
    def __init__(self, channels: int, emb_channels: int, out_channels: int, scale_shift: bool, dropout: float,
                 resample: str = ""):
        super().__init__()
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(GroupNorm32(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.h_upd = self.x_upd = Resample(resample == "up") if resample else nn.Identity()
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if scale_shift else out_channels))
        self.out_layers = nn.Sequential(GroupNorm32(out_channels), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers[:-1](x)
        h, x = self.h_upd(h), self.x_upd(x)
        h = self.in_layers[-1](h)
        emb_out = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.scale_shift:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[1:](self.out_layers[0](h) * (1 + scale) + shift)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


def qkv_attention(qkv: torch.Tensor, heads: int, new_order: bool) -> torch.Tensor:
    """Softmax attention over positions of qkv (B, 3*H*C, T). The new order splits q, k, v first and
    heads second; the legacy order splits heads first (the released checkpoints use one or the other)."""
    b, width, length = qkv.shape
    ch = width // (3 * heads)
    if new_order:
        q, k, v = (t.reshape(b * heads, ch, length) for t in qkv.chunk(3, dim=1))
    else:
        q, k, v = qkv.reshape(b * heads, 3 * ch, length).split(ch, dim=1)
    scale = ch ** -0.25
    weight = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale).float(), dim=-1).type(q.dtype)
    return torch.einsum("bts,bcs->bct", weight, v).reshape(b, -1, length)


class AttentionBlock(nn.Module):
    def __init__(self, channels: int, head_channels: int, new_order: bool):
        super().__init__()
        self.heads, self.new_order = channels // head_channels, new_order
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        h = self.proj_out(qkv_attention(self.qkv(self.norm(x)), self.heads, self.new_order))
        return (x + h).reshape(b, c, *spatial)


class AttentionPool2d(nn.Module):
    """The classifier head: attention from the mean position (plus learned positional embeddings)."""

    def __init__(self, spatial: int, channels: int, head_channels: int, out_channels: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(channels, spatial ** 2 + 1) / channels ** 0.5)
        self.qkv_proj = nn.Conv1d(channels, 3 * channels, 1)
        self.c_proj = nn.Conv1d(channels, out_channels, 1)
        self.heads = channels // head_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        x = torch.cat([x.mean(dim=-1, keepdim=True), x], dim=-1) + self.positional_embedding[None].to(x.dtype)
        return self.c_proj(qkv_attention(self.qkv_proj(x), self.heads, new_order=True))[:, :, 0]


class AdmNet(nn.Module):
    """The ADM UNet (config.encoder False): forward(x, t, y) -> (B, out_channels, H, W); or its encoder
    classifier (config.encoder True): forward(x, t) -> (B, out_channels) logits."""

    def __init__(self, config: AdmConfig):
        super().__init__()
        self.config = c = config
        emb = 4 * c.model_channels
        self.time_embed = nn.Sequential(nn.Linear(c.model_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        if c.num_classes is not None and not c.encoder:
            self.label_emb = nn.Embedding(c.num_classes, emb)

        def res(cin: int, cout: int, resample: str = "") -> ResBlock:
            return ResBlock(cin, emb, cout, c.use_scale_shift_norm, c.dropout, resample)

        def attn(ch: int) -> AttentionBlock:
            return AttentionBlock(ch, c.num_head_channels, c.use_new_attention_order)

        ch = first = c.channel_mult[0] * c.model_channels
        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(c.in_channels, ch, 3, padding=1))])
        skips, ds = [ch], 1
        for level, mult in enumerate(c.channel_mult):
            for _ in range(c.num_res_blocks):
                layers = [res(ch, mult * c.model_channels)]
                ch = mult * c.model_channels
                if ds in c.attention_ds:
                    layers.append(attn(ch))
                self.input_blocks.append(EmbedSequential(*layers))
                skips.append(ch)
            if level != len(c.channel_mult) - 1:
                self.input_blocks.append(EmbedSequential(res(ch, ch, "down") if c.resblock_updown
                                                         else _Downsample(ch)))
                skips.append(ch)
                ds *= 2
        self.middle_block = EmbedSequential(res(ch, ch), attn(ch), res(ch, ch))
        if c.encoder:
            self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(),
                                     AttentionPool2d(c.image_size // ds, ch, c.num_head_channels, c.out_channels))
            return
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(c.channel_mult))[::-1]:
            for i in range(c.num_res_blocks + 1):
                layers = [res(ch + skips.pop(), mult * c.model_channels)]
                ch = mult * c.model_channels
                if ds in c.attention_ds:
                    layers.append(attn(ch))
                if level and i == c.num_res_blocks:
                    layers.append(res(ch, ch, "up") if c.resblock_updown else _Upsample(ch))
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))
        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(), nn.Conv2d(first, c.out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels))
        if hasattr(self, "label_emb"):
            emb = emb + self.label_emb(y)
        h, skips = x, []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        if self.config.encoder:
            return self.out(h)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)


class _Downsample(nn.Module):
    """A strided 3x3 convolution (resblock_updown off)."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class _Upsample(nn.Module):
    """Nearest 2x then a 3x3 convolution (resblock_updown off)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
