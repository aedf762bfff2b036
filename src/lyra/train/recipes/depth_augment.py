"""Camera and photometric augmentation of depth-training batches (:mod:`lyra.train.recipes.depth`).

The procedural worlds are rendered by one camera (50° vertical field of view, 16:9, noiseless, clean
exposure). Photographs are not: other aspect ratios and focal lengths, exposure and white balance, sensor
noise, defocus, vignetting. Each batch is re-framed and re-exposed here so that the network sees those too.

**Camera** (:func:`reframe`): one output size per batch (an aspect ratio ``W/H`` drawn log-uniformly from
``aspect_range`` at about the working pixel count, sides multiples of 16 — what
:func:`lyra.teacher.depth_net.native_size` gives at inference), and per image a crop of that aspect, zoomed by
``s`` (log-uniform in ``[1, max_zoom]``) at a random place, resampled bilinearly (image) and by nearest
neighbour (depth: no depth is invented across an edge). A crop of height ``h_c`` of a frame of height ``H``
is a narrower camera: ``tan(fov_c / 2) = tan(fov / 2) · h_c / H``. The network's convention is depth *as if
seen with the training field of view* (:meth:`TinyDepthNet.predict` multiplies by the focal ratio), so the
target depth is multiplied by ``h_c / H``. A share ``keep_share`` of the batches keeps the working frame as it is.

**Photometric** (:func:`rephotograph`), per image: gamma, contrast, saturation (sometimes grey), per-channel
gain (white balance), vignetting ``1 − v·r²``, Gaussian blur (σ up to ``max_blur`` pixels), and noise
(signal-dependent shot noise plus read noise), clamped to [0, 1].

Every draw comes from the ``torch.Generator`` passed in (the batch index seeds it: exact resume). The blur,
vignetting and noise are those of the worlds' camera model (:mod:`lyra.world.camera_model`), one implementation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.teacher.depth_net import aspect_size
from lyra.world.camera_model import gaussian_blur, sensor_noise, vignette_falloff

__all__ = ["AugmentSettings", "rephotograph", "reframe"]

@dataclass(frozen=True)
class AugmentSettings:
    """What :func:`reframe` and :func:`rephotograph` draw from (see the module doc)."""

    keep_share: float = 0.3  # batches left at the working frame
    aspect_range: tuple[float, float] = (0.75, 2.0)  # W / H
    max_zoom: float = 1.6
    gamma: tuple[float, float] = (0.7, 1.45)
    contrast: tuple[float, float] = (0.7, 1.3)
    saturation: tuple[float, float] = (0.4, 1.4)
    grey_share: float = 0.05
    gain: float = 0.12  # per-channel gain 1 ± gain
    max_vignette: float = 0.45
    blur_share: float = 0.35
    max_blur: float = 1.5  # pixels (σ)
    max_read_noise: float = 0.02
    max_shot_noise: float = 0.03

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _log_uniform(g: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return torch.exp(_uniform(g, n, math.log(lo), math.log(hi)))


def frame_size(aspect: float, height: int, width: int) -> tuple[int, int]:
    """``(h, w)`` of aspect ``aspect = w / h`` at about ``height · width`` pixels, sides multiples of 16 (the rule
    :func:`~lyra.teacher.depth_net.native_size` reads photos by)."""
    return aspect_size(aspect, height * width)


def reframe(image: Tensor, depth: Tensor, g: torch.Generator, settings: AugmentSettings = AugmentSettings()
            ) -> tuple[Tensor, Tensor]:
    """Crop-and-zoom each image of ``image [B, 3, H, W]`` / ``depth [B, H, W]`` (z-depth, ``inf`` = sky) to one
    output size drawn for the batch; the depth is rescaled to the narrower camera (see the module doc).

    Returns ``(image [B, 3, h, w], depth [B, h, w])``; the inputs unchanged for a kept batch.
    """
    B, _, H, W = image.shape
    if float(torch.rand(1, generator=g)) < settings.keep_share:
        return image, depth
    aspect = float(_log_uniform(g, 1, *settings.aspect_range))
    h, w = frame_size(aspect, H, W)
    aspect = w / h  # the crop takes the output's exact aspect: no stretch from rounding the size
    # the largest crop of this aspect inside the frame, then zoomed in by s (pixel units of the source)
    ch0 = min(float(H), W / aspect)
    zoom = _log_uniform(g, B, 1.0, settings.max_zoom)
    ch = ch0 / zoom
    cw = ch * aspect
    y0 = torch.rand(B, generator=g) * (H - ch)
    x0 = torch.rand(B, generator=g) * (W - cw)
    dev = image.device
    # sample grid in normalised coordinates (align_corners=False: pixel centres at (i + 0.5) / n)
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    py = y0[:, None] + ys[None] * ch[:, None]  # [B, h] source pixel coordinates
    px = x0[:, None] + xs[None] * cw[:, None]  # [B, w]
    gy = (2 * py / H - 1).to(dev)
    gx = (2 * px / W - 1).to(dev)
    grid = torch.stack([gx[:, None, :].expand(B, h, w), gy[:, :, None].expand(B, h, w)], -1)
    out_image = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    finite = torch.isfinite(depth)
    d = torch.where(finite, depth, torch.full_like(depth, -1.0))
    out_depth = F.grid_sample(d[:, None].float(), grid, mode="nearest", padding_mode="border",
                              align_corners=False)[:, 0]
    scale = (ch / H).to(dev)[:, None, None]
    out_depth = torch.where(out_depth > 0, out_depth * scale, torch.full_like(out_depth, float("inf")))
    return out_image.to(image.dtype), out_depth.to(depth.dtype)


def rephotograph(image: Tensor, g: torch.Generator, settings: AugmentSettings = AugmentSettings()) -> Tensor:
    """Photometric augmentation of ``image [B, 3, H, W]`` in [0, 1] (see the module doc); same shape, in [0, 1]."""
    B, _, H, W = image.shape
    dev = image.device
    st = settings
    x = image.float().clamp(0, 1)

    def col(v: Tensor) -> Tensor:
        return v.to(dev)[:, None, None, None]

    x = x.clamp_min(1e-6) ** col(_log_uniform(g, B, *st.gamma))
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * col(_uniform(g, B, *st.contrast)) + mean
    grey = x.mean(1, keepdim=True)
    sat = _uniform(g, B, *st.saturation)
    sat = torch.where(torch.rand(B, generator=g) < st.grey_share, torch.zeros_like(sat), sat)
    x = grey + (x - grey) * col(sat)
    x = x * (1 + st.gain * (2 * torch.rand(B, 3, generator=g) - 1)).to(dev)[:, :, None, None]
    x = x * (1 - col(_uniform(g, B, 0.0, st.max_vignette)) * vignette_falloff(H, W, dev))
    blur = torch.where(torch.rand(B, generator=g) < st.blur_share, _uniform(g, B, 0.3, st.max_blur),
                       torch.zeros(B))
    if bool((blur > 0).any()):
        x = gaussian_blur(x, blur)
    x = x.clamp(0, 1)
    shot = col(_uniform(g, B, 0.0, st.max_shot_noise))
    read = col(_uniform(g, B, 0.0, st.max_read_noise))
    x = sensor_noise(x, shot, read, g)
    return x.clamp(0, 1).to(image.dtype)
