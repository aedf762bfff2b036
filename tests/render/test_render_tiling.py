"""The tiled, chunked compositor against a dense per-pixel reference, and its invariance to tiling."""

from __future__ import annotations

import pytest
import torch

from lyra.render.torch_ref import project, rasterize, render_torch


def dense_composite(proj, colors, width, height):
    """Every pixel against every projected Gaussian, front to back, in float64 — no tiles, no boxes."""
    order = torch.argsort(proj.depths)
    m2, con = proj.means2d[order].double(), proj.conics[order].double()
    o, col, z = proj.opacities[order].double(), colors[order].double(), proj.depths[order].double()
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                          torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    dx = u.reshape(-1, 1) - m2[:, 0]  # [HW, M]
    dy = v.reshape(-1, 1) - m2[:, 1]
    sigma = 0.5 * (con[:, 0] * dx * dx + con[:, 2] * dy * dy) + con[:, 1] * dx * dy
    a = torch.clamp(o * torch.exp(-sigma), max=0.999)
    a = torch.where(a < 1 / 255, torch.zeros_like(a), a)
    rgb = torch.zeros(height * width, 3, dtype=torch.float64)
    acc = torch.zeros(height * width, dtype=torch.float64)
    dep = torch.zeros(height * width, dtype=torch.float64)
    T = torch.ones(height * width, dtype=torch.float64)
    done = torch.zeros(height * width, dtype=torch.bool)
    for k in range(a.shape[1]):  # the plain loop of the CUDA kernels
        nxt = T * (1 - a[:, k])
        done = done | (nxt <= 1e-4)
        w = torch.where(done, torch.zeros_like(T), T * a[:, k])
        rgb += w[:, None] * col[k]
        dep += w * z[k]
        acc += w
        T = torch.where(done, T, nxt)
    depth = dep / acc.clamp_min(1e-10)
    return rgb.reshape(height, width, 3), depth.reshape(height, width), acc.reshape(height, width)


@pytest.mark.parametrize("seed", [0, 1])
def test_tiled_matches_dense_reference(helpers, seed):
    W, H, f = 56, 40, 45.0
    scene = helpers.random(250, W, H, f, seed=seed, sigma_px=(0.3, 6.0))
    cam = helpers.camera(W, H, f)
    proj = project(scene.means, scene.quats, scene.scales, scene.opacities, cam.K, cam.w2c, W, H)
    col = scene.colors[proj.ids]
    rgb, depth, alpha = rasterize(proj, col, W, H)
    rgb_d, depth_d, alpha_d = dense_composite(proj, col, W, H)
    torch.testing.assert_close(rgb.double(), rgb_d, atol=2e-5, rtol=0)
    torch.testing.assert_close(alpha.double(), alpha_d, atol=2e-5, rtol=0)
    seen = alpha_d > 1e-3
    torch.testing.assert_close(depth.double()[seen], depth_d[seen], atol=1e-4, rtol=1e-5)
    assert alpha_d.min() < 0.5 < alpha_d.max()  # the scene has both holes and opaque parts


def test_image_does_not_depend_on_tile_size_or_batch_size(helpers):
    W, H, f = 45, 31, 40.0  # not multiples of any tile size: partial edge tiles
    scene = helpers.random(400, W, H, f, seed=5, sigma_px=(0.3, 8.0))
    cam = helpers.camera(W, H, f)
    args = (scene.means, scene.quats, scene.scales, scene.opacities, scene.colors, None, cam.K[None],
            cam.w2c[None], W, H)
    ref = render_torch(*args, tile_size=16, max_batch_elements=1 << 22)
    for tile, budget in [(8, 1 << 19), (4, 1 << 12), (5, 300), (1, 64), (32, 1 << 12)]:
        got = render_torch(*args, tile_size=tile, max_batch_elements=budget)
        for r, g in zip(ref, got, strict=True):
            torch.testing.assert_close(g, r, atol=2e-5, rtol=1e-5)


def test_one_gaussian_covering_everything_with_tiny_batches(helpers):
    """K-chunking with carried transmittance: a long per-tile list split into many chunks."""
    W, H, f = 16, 16, 20.0
    g = helpers.random(300, W, H, f, seed=9, sigma_px=(6.0, 12.0))
    cam = helpers.camera(W, H, f)
    args = (g.means, g.quats, g.scales, g.opacities, g.colors, None, cam.K[None], cam.w2c[None], W, H)
    big = render_torch(*args, tile_size=16, max_batch_elements=1 << 22)
    small = render_torch(*args, tile_size=16, max_batch_elements=256 * 7)  # 7 Gaussians per chunk
    for r, s in zip(big, small, strict=True):
        torch.testing.assert_close(s, r, atol=1e-5, rtol=1e-5)
    assert float(big[2].min()) > 0.99  # saturated: the early stop of the chunk loop is exercised
