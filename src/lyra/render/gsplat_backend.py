"""The CUDA backend: ``gsplat.rasterization`` in ``render_mode="RGB+ED"``, ``rasterize_mode="classic"``.

Conventions match :mod:`lyra.render.torch_ref` exactly: ``viewmats`` = world-to-camera (OpenCV),
``Ks`` in pixels, pixel centres at ``+0.5``, ``eps2d = 0.3``, expected depth ``Σ w z / max(alpha, 1e-10)``.
With ``sh_rest`` the colours are handed to gsplat as SH coefficients (``f_dc`` from ``colors``, then
``sh_rest``) so that gsplat evaluates them (``max(SH + 0.5, 0)``); without, ``colors`` are used as they
are. The background is composited by the caller from the returned alpha (gsplat 1.5.3 trips a shape
assertion when ``backgrounds`` is passed with ``RGB+ED``).
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.gaussians.gaussians import rgb_to_sh_dc, sh_degree_from_rest

#: Above this many camera × Gaussian pairs, gsplat's packed mode is used (less memory).
PACKED_ABOVE = 1 << 25


def gsplat_available() -> bool:
    """True when the ``gsplat`` package can be imported (its CUDA build happens on first use)."""
    return importlib.util.find_spec("gsplat") is not None


def render_gsplat(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    sh_rest: Tensor | None,
    K: Tensor,
    w2c: Tensor,
    width: int,
    height: int,
    near: float = 0.1,
    far: float = 500.0,
    eps2d: float = 0.3,
    rasterize_mode: str = "classic",
    packed: bool | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Render Gaussians (fields of ``Gaussians``, ``[N, ...]``, on a CUDA device) into C cameras.

    Args:
        K: ``[C, 3, 3]`` intrinsics in pixels. w2c: ``[C, 4, 4]`` world-to-camera (OpenCV).
        packed: gsplat's packed mode; ``None`` picks it when ``C·N`` exceeds :data:`PACKED_ABOVE`.
    Returns:
        rgb ``[C, H, W, 3]`` (no background), expected depth ``[C, H, W]``, alpha ``[C, H, W]``.
    """
    if means.device.type != "cuda":
        raise ConfigError("the gsplat backend needs the Gaussians on a CUDA device; use backend='torch' "
                          "or move them with gaussians.to('cuda')")
    try:
        from gsplat import rasterization
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ConfigError(f"the gsplat backend needs the 'gsplat' package ({e}); "
                          "install it with `pip install gsplat` or use backend='torch'") from e
    dev = means.device
    f32 = torch.float32
    if sh_rest is not None and sh_rest.shape[1] > 0:
        sh_degree: int | None = sh_degree_from_rest(sh_rest.shape[1])
        col = torch.cat([rgb_to_sh_dc(colors)[:, None, :], sh_rest], 1).to(f32)
    else:
        sh_degree, col = None, colors.to(f32)
    C, N = K.shape[0], means.shape[0]
    if packed is None:
        packed = C * N > PACKED_ABOVE
    render_colors, render_alphas, _ = rasterization(
        means.to(f32), quats.to(f32), scales.to(f32), opacities.to(f32), col,
        viewmats=w2c.to(dev, f32), Ks=K.to(dev, f32), width=width, height=height,
        near_plane=near, far_plane=far, eps2d=eps2d, sh_degree=sh_degree, packed=packed,
        render_mode="RGB+ED", rasterize_mode=rasterize_mode,
    )
    return render_colors[..., :3], render_colors[..., 3], render_alphas[..., 0]
