"""Baselines that generated views are compared against.

* :func:`fill_holes` — the warp-only inpainting of ``lyra eval teacher`` and the teacher trainer's test: the
  warped frames with their holes (no warp data) filled by iterative nearest-valid diffusion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fill_holes"]


def fill_holes(rgb: Tensor, mask: Tensor, max_iters: int = 256) -> Tensor:
    """Warp-only inpainting: fill invalid pixels by iterative nearest-valid diffusion.

    Each iteration gives every invalid pixel with a valid 8-neighbour the mean of its valid 3 × 3
    neighbours and marks it valid, so holes are filled from their rim inwards. Images with no valid
    pixel stay as they are.

    Args:
        rgb: ``[..., C, H, W]`` images.
        mask: ``[..., H, W]`` bool validity.
        max_iters: iteration cap (holes wider than ``2·max_iters`` pixels keep a remainder).

    Returns:
        ``[..., C, H, W]`` with valid pixels unchanged.
    """
    shape = rgb.shape
    x = rgb.reshape(-1, *shape[-3:]).float()
    m = mask.reshape(-1, 1, *shape[-2:]).to(x.dtype)
    ones = torch.ones(1, 1, 3, 3, device=x.device, dtype=x.dtype)
    C = x.shape[1]
    for _ in range(max_iters):
        if bool((m > 0).all()):
            break
        count = F.conv2d(m, ones, padding=1)
        total = F.conv2d(x * m, ones.expand(C, 1, 3, 3), padding=1, groups=C)
        new = (m == 0) & (count > 0)
        if not bool(new.any()):
            break
        x = torch.where(new, total / count.clamp_min(1), x)
        m = torch.where(new, torch.ones_like(m), m)
    return x.reshape(shape).to(rgb.dtype)
