"""Projection and SH of the torch reference against gsplat's own pure-torch implementation (float64).

Needs only the ``gsplat`` package (no CUDA); skipped when it is not installed. Uses gsplat's private
``gsplat.cuda._torch_impl`` (1.5.x), the reference its CUDA kernels are tested against.
"""

from __future__ import annotations

import pytest
import torch

from lyra.gaussians import rgb_to_sh_dc
from lyra.render.torch_ref import project, sh_colors

impl = pytest.importorskip("gsplat.cuda._torch_impl")


def test_projection_matches_gsplat_torch_impl(helpers):
    W, H, f = 64, 48, 50.0
    g = helpers.random(500, W, H, f, seed=0, dtype=torch.float64)
    cam = helpers.camera(W, H, f, cx=30.0, cy=25.0)  # off-centre principal point: asymmetric clamp
    K, w2c = cam.K.double(), cam.w2c.double()
    cov, _ = impl._quat_scale_to_covar_preci(g.quats, g.scales, compute_preci=False)
    radii, means2d, depths, conics, _ = impl._fully_fused_projection(
        g.means, cov, w2c[None], K[None], W, H, eps2d=0.3, near_plane=0.1, far_plane=500.0)
    p = project(g.means, g.quats, g.scales, g.opacities, K, w2c, W, H)
    # gsplat's torch version has no opacity-aware culling; ours is a subset of its visible set
    assert (radii[0, p.ids] > 0).all(-1).all() and len(p.ids) > 400
    torch.testing.assert_close(p.means2d, means2d[0, p.ids], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(p.conics, conics[0, p.ids], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(p.depths, depths[0, p.ids], rtol=0, atol=0)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_sh_colours_match_gsplat_torch_impl(degree):
    g = torch.Generator().manual_seed(degree)
    n, k = 300, (degree + 1) ** 2 - 1
    colors = torch.rand(n, 3, generator=g, dtype=torch.float64)
    rest = 0.3 * torch.randn(n, k, 3, generator=g, dtype=torch.float64)
    dirs = torch.randn(n, 3, generator=g, dtype=torch.float64)
    coeffs = torch.cat([rgb_to_sh_dc(colors)[:, None], rest], 1)
    expect = torch.clamp_min(impl._spherical_harmonics(degree, dirs, coeffs) + 0.5, 0.0)
    torch.testing.assert_close(sh_colors(colors, rest, dirs), expect, rtol=1e-12, atol=1e-12)
