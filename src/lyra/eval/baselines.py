"""The baselines every generated view is compared with, and the renders they share.

* **warp-only** — the input image lifted to one Gaussian per pixel at the input depth
  (:func:`warp_only_gaussians`) and rendered at the evaluation cameras: white where nothing projects (the
  disocclusions), exactly what 3D costs without any generation;
* **filled warp** — warp-only with its holes (alpha < 0.5) filled by standard inpainting
  (:func:`inpaint_holes`: OpenCV's ``cv2.inpaint`` with the fast-marching method of Telea, "An Image
  Inpainting Technique Based on the Fast Marching Method", J. Graphics Tools 9(1), 2004). The baseline a
  careful engineer writes in an afternoon: a generated scene must beat it to be worth its cost.

:func:`render_views` renders any Gaussians at a batch of cameras (RGB, expected depth and alpha), for the
delivered scene and for warp-only alike. :func:`fill_holes` is the teacher trainer's cheap hole filler (nearest-valid
diffusion, in torch on any device), used by its validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras

__all__ = ["HOLE_ALPHA", "INPAINT_RADIUS", "Views", "fill_holes", "filled_warp", "inpaint_holes", "render_views",
           "warp_only_gaussians"]

#: A pixel whose accumulated opacity is below this is a hole (nothing projects there).
HOLE_ALPHA = 0.5
#: The inpainting neighbourhood (pixels) of ``cv2.inpaint``; 3 is OpenCV's documented example value.
INPAINT_RADIUS = 3


@dataclass
class Views:
    """Frames of one system at a batch of cameras ``[...]`` (e.g. ``[V, T]``).

    Attributes:
        rgb: ``[..., 3, H, W]`` in [0, 1].
        depth: ``[..., H, W]`` expected z-depth (0 or non-finite where nothing renders), or ``None`` for
            systems without geometry (the teacher's decoded frames).
        alpha: ``[..., H, W]`` accumulated opacity in [0, 1], or ``None`` (full coverage by construction).
    """

    rgb: Tensor
    depth: Tensor | None = None
    alpha: Tensor | None = None

    def cpu(self) -> Views:
        return Views(*(None if t is None else t.detach().cpu() for t in (self.rgb, self.depth, self.alpha)))


@torch.no_grad()
def render_views(gaussians: Gaussians, cameras: Cameras, backend: str = "auto", chunk: int = 16) -> Views:
    """Render ``gaussians`` at every camera of ``cameras`` (batch shape ``[...]``), white background, ``chunk``
    cameras at a time (bounded memory on the torch backend).

    Returns:
        :class:`Views` with ``rgb [..., 3, H, W]`` clamped to [0, 1], ``depth [..., H, W]`` (expected z-depth,
        0 where alpha is 0) and ``alpha [..., H, W]``. No Gaussians: white, depth 0, alpha 0.
    """
    from lyra.render import render

    H, W = cameras.height, cameras.width
    dev = gaussians.means.device
    if len(gaussians) == 0:
        return Views(torch.ones(*cameras.shape, 3, H, W, device=dev), torch.zeros(*cameras.shape, H, W, device=dev),
                     torch.zeros(*cameras.shape, H, W, device=dev))
    flat = cameras.flatten().to(dev)
    rgb, depth, alpha = [], [], []
    for i in range(0, flat.shape[0], chunk):
        out = render(gaussians, flat[i:i + chunk], backend=backend)
        rgb.append(out.rgb.float())
        depth.append(out.depth.float())
        alpha.append(out.alpha.float())
    return Views(torch.cat(rgb).clamp(0, 1).reshape(*cameras.shape, H, W, 3).movedim(-1, -3),
                 torch.cat(depth).reshape(*cameras.shape, H, W), torch.cat(alpha).reshape(*cameras.shape, H, W))


def warp_only_gaussians(image: Tensor, depth: Tensor, camera: Cameras) -> Gaussians:
    """The warp-only baseline's Gaussians: one per pixel of ``image`` ``[3, H, W]`` at z-depth ``depth``
    ``[H, W]`` seen from ``camera`` (batch shape ``[]``); pixels of non-finite depth (sky) are left out."""
    from lyra.gaussians.from_depth import gaussians_from_depth

    return gaussians_from_depth(image[None].float(), depth[None].float(), camera.reshape(1))


def inpaint_holes(frames: Tensor, holes: Tensor, radius: int = INPAINT_RADIUS) -> Tensor:
    """Fill the ``holes`` of each frame with OpenCV's Telea inpainting.

    Args:
        frames: ``[..., 3, H, W]`` RGB in [0, 1] (inpainted at 8 bits per channel, as ``cv2.inpaint`` takes
            colour images) or ``[..., H, W]`` one channel (e.g. depth; inpainted at 16 bits over the frame's valid
            range; non-finite values are treated as holes too).
        holes: ``[..., H, W]`` bool, true where the frame has no data.
        radius: the inpainting neighbourhood in pixels.

    Returns:
        Frames of the same shape, dtype and device; pixels outside ``holes`` unchanged (colour: up to the
        8-bit rounding of the filled frame, which is applied to the hole pixels only). A frame that is all
        holes is returned unchanged.
    """
    import cv2

    colour = frames.dim() >= 3 and frames.shape[-3] == 3 and frames.shape[-2:] == holes.shape[-2:] \
        and frames.dim() == holes.dim() + 1
    if not colour and frames.shape != holes.shape:
        raise ValueError(f"frames {tuple(frames.shape)} and holes {tuple(holes.shape)} do not match")
    H, W = holes.shape[-2:]
    f = frames.detach().float().cpu()
    h = holes.detach().bool().cpu()
    if not colour:
        h = h | ~torch.isfinite(f)
    f_flat = f.reshape(-1, 3, H, W) if colour else f.reshape(-1, H, W)
    h_flat = h.reshape(-1, H, W)
    out = f_flat.clone()
    for i in range(h_flat.shape[0]):
        mask = h_flat[i]
        if not bool(mask.any()) or bool(mask.all()):
            continue
        m8 = mask.numpy().astype(np.uint8)
        if colour:
            img = (f_flat[i].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
            filled = torch.from_numpy(cv2.inpaint(img, m8, radius, cv2.INPAINT_TELEA)).float().permute(2, 0, 1)
            out[i][:, mask] = filled[:, mask] / 255.0
        else:  # 16-bit over the frame's valid range: OpenCV's Telea is wrong on float32 input (alternating
            # values, measured with opencv-python-headless 5.1), right on uint16; the step is range / 65535
            valid = f_flat[i][~mask].double()
            lo, hi = float(valid.min()), float(valid.max())
            if hi <= lo:
                out[i][mask] = lo
                continue
            q = ((f_flat[i].double().nan_to_num(lo) - lo) / (hi - lo)).clamp(0, 1) * 65535.0
            q16 = (q + 0.5).numpy().astype(np.uint16)
            filled = cv2.inpaint(q16, m8, radius, cv2.INPAINT_TELEA).astype(np.float64)
            out[i][mask] = torch.from_numpy(lo + filled / 65535.0 * (hi - lo)).float()[mask]
    return out.reshape(frames.shape).to(device=frames.device, dtype=frames.dtype)


def filled_warp(warp: Views, radius: int = INPAINT_RADIUS) -> Views:
    """The filled-warp baseline from warp-only renders: RGB and depth inpainted where ``alpha < HOLE_ALPHA``;
    the result covers every pixel (``alpha`` 1)."""
    if warp.alpha is None:
        raise ValueError("filled_warp needs the warp-only renders' alpha")
    holes = warp.alpha < HOLE_ALPHA
    depth = None if warp.depth is None else inpaint_holes(warp.depth, holes, radius)
    return Views(inpaint_holes(warp.rgb, holes, radius), depth, torch.ones_like(warp.alpha))


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
