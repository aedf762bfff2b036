"""``render``: the one entry point of the rasterizer; picks a backend and composites the background."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.gaussians.gaussians import Gaussians
from lyra.geometry.cameras import Cameras
from lyra.render.gsplat_backend import gsplat_available, render_gsplat
from lyra.render.torch_ref import render_torch

BACKENDS = ("auto", "torch", "gsplat")


@dataclass
class RenderOutput:
    """What :func:`render` returns, for cameras of batch shape ``[...]``.

    Attributes:
        rgb: ``[..., H, W, 3]`` colour composited over the background: ``Σ w c + (1 - alpha)·bg``.
        depth: ``[..., H, W]`` expected z-depth ``Σ w z / alpha`` (0 where alpha is 0).
        alpha: ``[..., H, W]`` accumulated opacity ``Σ w`` in [0, 1].
        backend: the backend that rendered (``"torch"`` or ``"gsplat"``).
    """

    rgb: Tensor
    depth: Tensor
    alpha: Tensor
    backend: str


def pick_backend(backend: str, device: torch.device) -> str:
    """Resolve ``"auto"``: gsplat for Gaussians on CUDA when it is importable, else torch."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "gsplat" if device.type == "cuda" and gsplat_available() else "torch"
    if backend == "gsplat" and device.type != "cuda":
        raise ConfigError("backend='gsplat' needs the Gaussians on a CUDA device; "
                          "use backend='torch' on CPU")
    return backend


def render(
    gaussians: Gaussians,
    cameras: Cameras,
    width: int | None = None,
    height: int | None = None,
    background: Sequence[float] | float | Tensor = (1.0, 1.0, 1.0),
    backend: str = "auto",
    near: float = 0.1,
    far: float = 500.0,
    *,
    rasterize_mode: str = "classic",
    eps2d: float = 0.3,
) -> RenderOutput:
    """Render ``gaussians`` into every camera of ``cameras`` (batch shape ``[...]``, e.g. ``[V, T]``).

    Args:
        gaussians: the scene (``Gaussians``; degree-0 ``colors``, plus ``sh_rest`` up to degree 3).
        cameras: pinhole cameras, OpenCV axes; moved to the Gaussians' device.
        width, height: output size; default the cameras'. A different size renders the same views at
            that resolution (``cameras.resize``).
        background: RGB in [0, 1]: 3 floats, one float, or a tensor ``[..., 3]`` per camera.
        backend: ``"auto"`` (gsplat on CUDA when importable, else torch), ``"torch"`` or ``"gsplat"``.
        near, far: centres outside ``[near, far]`` in z-depth are culled.
        rasterize_mode: ``"classic"`` (3DGS) or ``"antialiased"`` (Mip-Splatting opacity compensation).
        eps2d: low-pass dilation added to the 2D covariance, in px².

    Returns:
        :class:`RenderOutput` with ``rgb [..., H, W, 3]``, ``depth [..., H, W]``, ``alpha [..., H, W]``.
    """
    if not isinstance(gaussians, Gaussians) or not isinstance(cameras, Cameras):
        raise ConfigError("render(gaussians, cameras): expected a Gaussians and a Cameras")
    if rasterize_mode not in ("classic", "antialiased"):
        raise ConfigError(f"rasterize_mode must be 'classic' or 'antialiased', got {rasterize_mode!r}")
    if not 0 < near < far:
        raise ConfigError(f"need 0 < near < far, got near={near}, far={far}")
    width = cameras.width if width is None else int(width)
    height = cameras.height if height is None else int(height)
    if (width, height) != (cameras.width, cameras.height):
        cameras = cameras.resize(width, height)
    dev, dtype = gaussians.device, gaussians.means.dtype
    batch = cameras.shape
    flat = cameras.to(dev).flatten()
    name = pick_backend(backend, dev)
    fn = render_gsplat if name == "gsplat" and len(gaussians) > 0 else render_torch
    g = gaussians
    rgb, depth, alpha = fn(g.means, g.quats, g.scales, g.opacities, g.colors, g.sh_rest, flat.K, flat.w2c,
                           width, height, near=near, far=far, eps2d=eps2d, rasterize_mode=rasterize_mode)
    bg = torch.as_tensor(background, dtype=rgb.dtype, device=dev)
    if bg.ndim == 0:
        bg = bg.expand(3)
    if bg.shape[-1] != 3:
        raise ConfigError(f"background must be RGB (3 values), got shape {tuple(bg.shape)}")
    bg = bg.expand(*batch, 3).reshape(-1, 3)
    rgb = rgb + (1.0 - alpha)[..., None] * bg[:, None, None, :]
    return RenderOutput(
        rgb=rgb.reshape(*batch, height, width, 3).to(dtype),
        depth=depth.reshape(*batch, height, width).to(dtype),
        alpha=alpha.reshape(*batch, height, width).to(dtype),
        backend=name,
    )
