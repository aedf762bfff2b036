"""Helpers for the rasterizer tests: tiny scenes with known answers."""

from __future__ import annotations

import pytest
import torch

from lyra.gaussians import Gaussians
from lyra.geometry import Cameras


def make_gaussians(means, scales, opacities, colors, quats=None, dtype=torch.float32) -> Gaussians:
    means = torch.as_tensor(means, dtype=dtype).reshape(-1, 3)
    n = len(means)
    scales = torch.as_tensor(scales, dtype=dtype)
    scales = scales.reshape(n, 3) if scales.numel() == 3 * n else scales.reshape(n, 1).expand(n, 3)
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=dtype).expand(n, 4) if quats is None else \
        torch.as_tensor(quats, dtype=dtype)
    return Gaussians(means.clone(), quats.clone(), scales.clone(),
                     torch.as_tensor(opacities, dtype=dtype).reshape(n).clone(),
                     torch.as_tensor(colors, dtype=dtype).reshape(n, 3).clone())


def pinhole(width: int, height: int, f: float, cx: float | None = None, cy: float | None = None,
            c2w: torch.Tensor | None = None) -> Cameras:
    """A camera with focal ``f`` px and principal point ``(cx, cy)`` (default: image centre)."""
    K = torch.tensor([[f, 0.0, width / 2 if cx is None else cx], [0.0, f, height / 2 if cy is None else cy],
                      [0.0, 0.0, 1.0]])
    return Cameras(K, torch.eye(4) if c2w is None else c2w, width, height)


def random_scene(n: int, width: int, height: int, f: float, seed: int, dtype=torch.float32,
                 sigma_px=(0.4, 4.0)) -> Gaussians:
    """``n`` random anisotropic Gaussians in the frustum of ``pinhole(width, height, f)``."""
    g = torch.Generator().manual_seed(seed)
    z = 2 + 6 * torch.rand(n, generator=g, dtype=torch.float64)
    u = (torch.rand(n, generator=g, dtype=torch.float64) * 1.2 - 0.1) * width
    v = (torch.rand(n, generator=g, dtype=torch.float64) * 1.2 - 0.1) * height
    lo, hi = sigma_px
    s_px = lo + (hi - lo) * torch.rand(n, 3, generator=g, dtype=torch.float64)
    means = torch.stack([(u - width / 2) / f * z, (v - height / 2) / f * z, z], -1)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g, dtype=torch.float64), dim=-1)
    return Gaussians(means.to(dtype), quats.to(dtype), (s_px * (z / f)[:, None]).to(dtype),
                     (0.05 + 0.9 * torch.rand(n, generator=g, dtype=torch.float64)).to(dtype),
                     torch.rand(n, 3, generator=g, dtype=torch.float64).to(dtype))


@pytest.fixture
def helpers():
    class H:
        gaussians = staticmethod(make_gaussians)
        camera = staticmethod(pinhole)
        random = staticmethod(random_scene)

    return H
