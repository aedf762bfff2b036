"""Depth-map statistics shared by the worlds and the teacher: the centre window and its median depth."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["center_depth_of", "center_window"]


def center_window(depth: Tensor) -> Tensor:
    """The centre window of a depth map ``[H, W]``: the middle quarter in each direction."""
    H, W = depth.shape[-2:]
    h0, w0 = (3 * H) // 8, (3 * W) // 8
    return depth[..., h0:H - h0, w0:W - w0]


def center_depth_of(depth: Tensor) -> float | None:
    """Median z-depth of the finite pixels of :func:`center_window`; ``None`` if under half are finite."""
    win = center_window(depth).reshape(-1)
    fin = win[torch.isfinite(win)]
    if fin.numel() < 0.5 * win.numel():
        return None
    return float(fin.median())
