"""Helpers of the student tests: a stand-in for the video tokenizer, and cameras."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.geometry import Cameras, look_at


class StandInEncoder(nn.Module):
    """Same interface as the tokenizer's encoder: ``encode(video [B, 3, T, H, W]) -> [B, C, t, h, w]``.

    Causal 8×8×8 compression: frame 0 alone forms latent frame 0, frames 8τ−7 … 8τ form latent frame τ
    (so T = 1 + 8(t − 1)); each 8×8×8 (or 1×8×8) block is averaged, then mapped 3 → ``latent_channels`` (C,
    default 16) channels by a seeded 1×1×1 convolution.
    """

    def __init__(self, in_channels: int = 3, seed: int = 0, latent_channels: int = 16) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.proj = nn.Conv3d(in_channels, latent_channels, 1)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(self.proj.weight.shape, generator=g))
            self.proj.bias.copy_(torch.randn(latent_channels, generator=g))

    def encode(self, video: Tensor) -> Tensor:
        first = video[:, :, :1].expand(-1, -1, 7, -1, -1)
        pooled = F.avg_pool3d(torch.cat([first, video], 2), 8)
        return self.proj(pooled)


def make_cameras(B: int, V: int, T: int, width: int, height: int, seed: int = 0) -> Cameras:
    """Cameras ``[B, V, T]``: view v orbits the origin along its own arc, looking at the origin."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(B, V, 1, 3, generator=g)
    step = 0.05 * torch.randn(B, V, 1, 3, generator=g)
    eye = base + step * torch.arange(T, dtype=torch.float32)[:, None]
    eye = eye + torch.tensor([0.0, 0.0, -4.0])
    c2w = look_at(eye, torch.zeros_like(eye))
    return Cameras.from_fov(50.0, width, height, c2w)
