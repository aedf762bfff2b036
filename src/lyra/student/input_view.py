"""Input-view Gaussians: one Gaussian per pixel of the photo, for what the photo itself shows.

The student's latent head emits one Gaussian per 8 × 8 pixels per frame: right for what the teacher *generated*,
far too coarse for what the input shows. This module gives the tiny preset its pixel-resolution part:

* :func:`delivery_size` — the size of the input-view Gaussians: the photo's own resolution (the working frame's
  crop of it), long side at most ``max_side`` (default :data:`DEFAULT_MAX_SIDE`);
* :func:`upsample_depth` — the working-size depth ``[h, w]`` brought to that size without "flying" pixels: bilinear
  in log-depth, but snapped to the nearer side wherever the 3 × 3 neighbourhood spans a depth edge;
* :func:`input_view_gaussians` — colour from the pixel, centre on the pixel's ray at that depth, a flat disc facing
  the input camera as wide as ``footprint`` of the pixel's footprint, opacity ``opacity``;
* :func:`fit_colors` — their colours refitted so that the scene rendered at the input camera reproduces the photo
  (the renderer's low-pass makes neighbouring pixel Gaussians spill onto each other);
* :func:`drop_redundant` — which latent Gaussians to keep beside them: those the input camera does not see in
  front of or on its visible surface (outside its frame, behind the surface, or where the depth is unknown).
  Pruning therefore never removes input-view detail; it removes what the two sets duplicate, and what would
  occlude the photo at its own camera.

Conventions: OpenCV cameras, camera-to-world ``[4, 4]``, intrinsics in pixels with pixel centres at ``+0.5``;
z-depth; images RGB in [0, 1] ``[3, H, W]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.gaussians import Gaussians
from lyra.gaussians.gaussians import rotmat_to_quat
from lyra.geometry import Cameras

__all__ = ["DEFAULT_MAX_SIDE", "InputViewSettings", "delivery_size", "drop_redundant", "fit_colors",
           "input_view_gaussians", "upsample_depth"]

#: Default long side (pixels) of the input-view Gaussians.
DEFAULT_MAX_SIDE = 1024


@dataclass(frozen=True)
class InputViewSettings:
    """Constants of the input-view Gaussians (measured on the held-out test worlds, docs/scene_eval).

    Attributes:
        footprint: in-plane standard deviation, in pixels of the delivery size (the renderer adds its 0.3 px²
            low-pass on top). Measured on three test worlds with exact depth (colours refitted): 0.2–0.3 leave
            cracks in the near views, 0.6 rings at the input view; 0.3–0.45 score alike, 0.4 is between.
        thickness: out-of-plane standard deviation relative to the in-plane one (flat discs).
        opacity: opacity of every input-view Gaussian.
        edge_ratio: neighbouring depths differing by more than this factor make a depth edge (no blending).
        redundant_margin: a latent Gaussian within this relative depth of the visible surface, or in front of it,
            duplicates (or hides) what the photo shows and is dropped.
        max_depth: depths above this (or non-finite) are sky: no input-view Gaussian.
        color_iterations: :func:`fit_colors` iterations (0: the pixels' own colours).
    """

    footprint: float = 0.4
    thickness: float = 0.1
    opacity: float = 1.0
    edge_ratio: float = 1.05
    redundant_margin: float = 0.05
    max_depth: float = 500.0
    color_iterations: int = 4


def delivery_size(crop_height: int, crop_width: int, max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """``(H, W)`` of the input-view Gaussians for a photo crop of ``crop_height × crop_width``: the crop's own size,
    scaled down (never up) so that its long side is at most ``max_side``."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    s = min(1.0, max_side / max(crop_height, crop_width))
    return max(1, round(crop_height * s)), max(1, round(crop_width * s))


def upsample_depth(depth: Tensor, height: int, width: int, edge_ratio: float = 1.05) -> Tensor:
    """z-depth ``[h, w]`` → ``[height, width]`` without intermediate depths across depth edges.

    Bilinear interpolation of log-depth, except where the 3 × 3 low-resolution neighbourhood spans more than a
    factor ``edge_ratio``: there the value snaps to the neighbourhood's minimum or maximum, whichever is nearer in
    log-depth (a foreground/background edge stays an edge, with no Gaussians floating between the two).
    Non-finite or non-positive depths (sky) stay ``inf`` (nearest-neighbour for validity).
    """
    if depth.dim() != 2:
        raise ValueError(f"depth must be [h, w], got {tuple(depth.shape)}")
    d = depth.float()
    valid = torch.isfinite(d) & (d > 0)
    if (height, width) == tuple(d.shape):
        return torch.where(valid, d, torch.full_like(d, math.inf))
    fill = d[valid].max() if bool(valid.any()) else torch.tensor(1.0)
    logd = torch.where(valid, d, fill).log()[None, None]
    hi = F.max_pool2d(logd, 3, 1, 1)
    lo = -F.max_pool2d(-logd, 3, 1, 1)
    size = (height, width)
    bil = F.interpolate(logd, size=size, mode="bilinear", align_corners=False)
    hi_up = F.interpolate(hi, size=size, mode="nearest")
    lo_up = F.interpolate(lo, size=size, mode="nearest")
    edge = (hi_up - lo_up) > math.log(edge_ratio)
    snapped = torch.where(bil - lo_up < hi_up - bil, lo_up, hi_up)
    out = torch.where(edge, snapped, bil)[0, 0].exp()
    valid_up = F.interpolate(valid[None, None].float(), size=size, mode="nearest")[0, 0] > 0.5
    return torch.where(valid_up, out, torch.full_like(out, math.inf))


def input_view_gaussians(image: Tensor, depth: Tensor, camera: Cameras,
                         settings: InputViewSettings = InputViewSettings()) -> Gaussians:
    """One flat Gaussian per pixel of ``image`` ``[3, H, W]`` at z-depth ``depth`` ``[H, W]`` (already at the image's
    size, :func:`upsample_depth`), seen from ``camera`` (batch shape ``[]``, size ``W × H``).

    Each Gaussian: centre on the pixel's ray at the pixel's depth; colour the pixel's; in-plane standard deviation
    ``settings.footprint · depth / f`` (``f`` the mean focal length), ``settings.thickness`` of that along the
    viewing axis, axes aligned with the camera's; opacity ``settings.opacity``. Sky pixels (non-finite depth or
    above ``settings.max_depth``) get none. Row-major pixel order.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W], got {tuple(image.shape)}")
    H, W = image.shape[-2:]
    if tuple(depth.shape) != (H, W) or camera.shape != () or (camera.width, camera.height) != (W, H):
        raise ValueError(f"image {tuple(image.shape)}, depth {tuple(depth.shape)} and camera "
                         f"{camera.width}x{camera.height} (batch {tuple(camera.shape)}) do not match")
    d = depth.float()
    valid = torch.isfinite(d) & (d > 0) & (d <= settings.max_depth)
    d_safe = torch.where(valid, d, torch.ones_like(d))
    points = camera.unproject(d_safe)  # [H, W, 3]
    focal = 0.5 * (camera.K[0, 0] + camera.K[1, 1])
    sigma = settings.footprint * d_safe / focal
    scales = torch.stack([sigma, sigma, settings.thickness * sigma], dim=-1)
    quat = rotmat_to_quat(camera.c2w[:3, :3].float())
    n = int(valid.sum())
    return Gaussians(
        means=points[valid],
        quats=quat.expand(n, 4).clone(),
        scales=scales[valid].clamp_min(1e-7),
        opacities=torch.full((n,), settings.opacity, dtype=points.dtype, device=points.device),
        colors=image.float().permute(1, 2, 0)[valid].clamp(0, 1),
    )


@torch.no_grad()
def fit_colors(gaussians: Gaussians, count: int, camera: Cameras, image: Tensor, iterations: int = 4,
               background: tuple[float, float, float] = (1.0, 1.0, 1.0), backend: str = "auto") -> Gaussians:
    """Refit the colours of the first ``count`` Gaussians (the input-view ones, each centred on a pixel of ``camera``)
    so that the scene rendered at ``camera`` reproduces ``image`` ``[3, H, W]``.

    A rendered pixel is linear in the colours (``Σ wᵢ cᵢ`` plus the background), but a pixel Gaussian's neighbours
    spill onto its pixel (up to a quarter of it with the renderer's 0.3 px² low-pass), which blurs the photo. Each
    iteration renders the scene and adds the residual ``image − render`` at its pixel to each input-view Gaussian's
    colour (a Richardson iteration on that linear system), clamped to [0, 1] so that every format and viewer keeps
    it. The other Gaussians are unchanged.

    Returns:
        new :class:`~lyra.gaussians.Gaussians` (same order, geometry and opacities).
    """
    from lyra.render import render

    if count == 0 or iterations <= 0:
        return gaussians
    H, W = image.shape[-2:]
    if (camera.width, camera.height) != (W, H) or camera.shape != ():
        raise ValueError(f"image {tuple(image.shape)} and camera {camera.width}x{camera.height} do not match")
    dev = gaussians.means.device
    cam = camera.to(dev)
    uv, _ = cam.project(gaussians.means[:count].float())
    u = torch.floor(uv[:, 0]).long().clamp(0, W - 1)
    v = torch.floor(uv[:, 1]).long().clamp(0, H - 1)
    target = image.to(dev).float()[:, v, u].T  # [count, 3]
    colors = gaussians.colors.clone()
    g = gaussians
    for _ in range(iterations):
        g = Gaussians(g.means, g.quats, g.scales, g.opacities, colors, g.sh_rest)
        out = render(g, cam.reshape(1), background=background, backend=backend).rgb[0].float()  # [H, W, 3]
        colors[:count] = (colors[:count] + target - out[v, u]).clamp(0.0, 1.0)
    return Gaussians(g.means, g.quats, g.scales, g.opacities, colors, g.sh_rest)


def drop_redundant(gaussians: Gaussians, depth: Tensor, camera: Cameras, margin: float = 0.05) -> Tensor:
    """Which of ``gaussians`` (the latent head's) to keep beside the input-view Gaussians: a bool mask ``[N]``.

    Kept: centres behind the input camera or outside its frame; centres whose pixel has no depth (sky); centres
    more than ``margin`` (relative) behind the visible surface ``depth`` ``[H, W]`` (z-depth at ``camera``'s size,
    batch shape ``[]``) — what the photo cannot show. Dropped: centres on the visible surface (the input-view
    Gaussians hold that, sharper) and in front of it (they would hide the photo at its own camera).
    """
    if len(gaussians) == 0:
        return torch.zeros(0, dtype=torch.bool, device=gaussians.means.device)
    H, W = depth.shape
    if (camera.width, camera.height) != (W, H) or camera.shape != ():
        raise ValueError(f"depth {tuple(depth.shape)} and camera {camera.width}x{camera.height} do not match")
    uv, z = camera.to(gaussians.means.device).project(gaussians.means.float())
    u = torch.floor(uv[:, 0]).long()
    v = torch.floor(uv[:, 1]).long()
    inside = (z > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    surface = depth.to(gaussians.means.device).float()[v.clamp(0, H - 1), u.clamp(0, W - 1)]
    known = torch.isfinite(surface) & (surface > 0)
    behind = z > surface * (1.0 + margin)
    return ~inside | ~known | behind
