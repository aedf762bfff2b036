"""Rasterize 3D Gaussians: RGB, expected depth and alpha for a batch of cameras.

``render(gaussians, cameras, ...)`` dispatches to ``gsplat`` on CUDA (``lyra.render.gsplat_backend``)
or to the pure-torch, differentiable reference (``lyra.render.torch_ref``); both follow gsplat's
"classic" 3DGS conventions.
"""

from lyra.render.dispatch import RenderOutput, pick_backend, render
from lyra.render.gsplat_backend import gsplat_available

__all__ = ["RenderOutput", "gsplat_available", "pick_backend", "render"]
