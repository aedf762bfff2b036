"""Pixel-aligned Gaussians from images with depth (a point cloud turned into splats).

Used for the warp-only baseline (the input view's depth, nothing imagined) and for ground-truth scenes of
the procedural worlds. Each valid pixel becomes one flat Gaussian facing its camera: centred on the
pixel's ray at the pixel's z-depth, as wide as the pixel's footprint, thin along the viewing axis.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lyra.gaussians.gaussians import Gaussians, rotmat_to_quat
from lyra.geometry.cameras import Cameras


def gaussians_from_depth(
    images: Tensor,
    depths: Tensor,
    cameras: Cameras,
    stride: int = 1,
    opacity: float = 0.95,
    footprint: float = 0.6,
    thickness: float = 0.1,
    max_depth: float = 500.0,
) -> Gaussians:
    """One Gaussian per (strided) pixel of each view.

    Args:
        images: ``[V, 3, H, W]`` colours in [0, 1].
        depths: ``[V, H, W]`` z-depth; pixels with non-finite, non-positive or > ``max_depth`` depth
            (e.g. the sky) are skipped.
        cameras: ``Cameras`` of batch shape ``[V]`` and image size ``W × H``.
        stride: keep every ``stride``-th pixel in each direction (scales grow to cover the gap).
        opacity: opacity of every Gaussian.
        footprint: in-plane standard deviation as a fraction of the (strided) pixel footprint
            ``depth · stride / f``.
        thickness: out-of-plane standard deviation relative to the in-plane one.

    Returns:
        ``Gaussians`` in view-major, row-major pixel order, quaternions aligned with each camera.
    """
    V, _, H, W = images.shape
    if depths.shape != (V, H, W) or cameras.shape != (V,) or (cameras.width, cameras.height) != (W, H):
        raise ValueError(f"images {tuple(images.shape)}, depths {tuple(depths.shape)} and cameras "
                         f"{tuple(cameras.shape)} @ {cameras.width}x{cameras.height} do not match")
    points = cameras.unproject(depths)[:, ::stride, ::stride]  # [V, h, w, 3]
    d = depths[:, ::stride, ::stride]
    rgb = images[:, :, ::stride, ::stride].permute(0, 2, 3, 1)
    valid = torch.isfinite(d) & (d > 0) & (d <= max_depth)
    focal = 0.5 * (cameras.K[:, 0, 0] + cameras.K[:, 1, 1])  # [V]
    sigma = footprint * d * stride / focal[:, None, None]
    scales = torch.stack([sigma, sigma, thickness * sigma], dim=-1)
    quats = rotmat_to_quat(cameras.c2w[:, :3, :3])[:, None, None, :].expand(V, *d.shape[1:], 4)
    n = int(valid.sum())
    return Gaussians(
        means=points[valid],
        quats=quats[valid],
        scales=scales[valid].clamp_min(1e-6),
        opacities=torch.full((n,), opacity, dtype=points.dtype, device=points.device),
        colors=rgb[valid].clamp(0, 1),
    )
