"""Analytic test scenes for the 3D cache: textured planar quads ray-cast exactly in closed form.

A quad is ``origin + s·a + t·b`` for ``s, t ∈ [0, 1]`` (``a``, ``b`` world vectors); its colour is a
smooth texture of ``(s·|a|, t·|b|)`` (world units), so renders from any camera are exact references.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.geometry.cameras import Cameras


@dataclass
class Quad:
    origin: tuple[float, float, float]
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    freq: float = 2.0  # texture frequency, cycles per world unit (scaled per channel)


def texture(x: Tensor, y: Tensor, tint: Tensor, freq: float) -> Tensor:
    """RGB ``[3, ...]`` in (0, 1) of texture coordinates ``x, y`` (world units)."""
    w = 2 * math.pi * freq
    r = 0.5 + 0.35 * torch.sin(w * x) * torch.cos(0.7 * w * y)
    g = 0.5 + 0.35 * torch.sin(0.8 * w * x + 1.3 * w * y + 1.0)
    b = 0.5 + 0.35 * torch.cos(0.6 * w * x - 0.9 * w * y)
    return torch.stack([r, g, b]) * tint.view(3, *([1] * x.dim()))


def render(quads: list[Quad], cams: Cameras) -> tuple[Tensor, Tensor]:
    """RGB ``[..., 3, H, W]`` and z-depth ``[..., H, W]`` (inf where no quad is hit) at pixel centres."""
    o, d = cams.rays(normalize=False)  # d has camera z = 1: the ray parameter is the z-depth
    best = torch.full(d.shape[:-1], math.inf)
    rgb = torch.zeros(3, *d.shape[:-1])
    for q in quads:
        p0, a, b = (torch.tensor(v, dtype=torch.float32) for v in (q.origin, q.a, q.b))
        n = torch.linalg.cross(a, b)
        denom = d @ n
        t = ((p0 - o) @ n) / torch.where(denom.abs() < 1e-12, torch.full_like(denom, 1e-12), denom)
        p = o + d * t[..., None] - p0
        # coordinates in the (a, b) basis
        aa, ab, bb = a @ a, a @ b, b @ b
        pa, pb = p @ a, p @ b
        det = aa * bb - ab * ab
        s = (pa * bb - pb * ab) / det
        u = (pb * aa - pa * ab) / det
        hit = (t > 1e-6) & (s >= 0) & (s <= 1) & (u >= 0) & (u <= 1) & (t < best)
        col = texture(s * a.norm(), u * b.norm(), torch.tensor(q.tint), q.freq)
        rgb = torch.where(hit[None], col, rgb)
        best = torch.where(hit, t, best)
    return rgb.movedim(0, -3), best


def wall(z: float, half: float = 50.0, **kw) -> Quad:
    """A large fronto-parallel quad at world depth ``z`` (the background)."""
    return Quad((-half, -half, z), (2 * half, 0.0, 0.0), (0.0, 2 * half, 0.0), **kw)


def square(cx: float, cy: float, z: float, size: float, **kw) -> Quad:
    """A fronto-parallel square of side ``size`` centred at ``(cx, cy, z)``."""
    return Quad((cx - size / 2, cy - size / 2, z), (size, 0.0, 0.0), (0.0, size, 0.0), **kw)


def translated(cam: Cameras, offsets: Tensor) -> Cameras:
    """Copies ``[n]`` of the single camera ``cam`` moved by ``offsets`` ``[n, 3]`` (camera axes)."""
    c2w = cam.c2w.expand(offsets.shape[0], 4, 4).clone()
    c2w[:, :3, 3] += (c2w[:, :3, :3] @ offsets[..., None])[..., 0]
    return Cameras(cam.K.expand(offsets.shape[0], 3, 3), c2w, cam.width, cam.height)


def psnr(a: Tensor, b: Tensor, mask: Tensor) -> float:
    """PSNR (dB, peak 1) of ``a`` vs ``b`` ``[3, H, W]`` over the pixels of ``mask`` ``[H, W]``."""
    mse = ((a - b) ** 2)[:, mask].mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))
