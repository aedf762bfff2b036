"""Front-to-back compositing, background, depth, culling, batches, SH colours and argument checks."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.geometry import Cameras, look_at
from lyra.render import pick_backend, render
from lyra.render.torch_ref import sh_basis

BLACK = (0.0, 0.0, 0.0)
RED, BLUE = [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]


def two_layers(helpers, order):
    """A big red splat at z=2 and a big blue one at z=4, both centred on pixel (8, 8)."""
    near = ([0, 0, 2.0], 0.4, 0.9, RED)
    far = ([0, 0, 4.0], 0.8, 0.8, BLUE)
    parts = [near, far] if order == "near-first" else [far, near]
    return helpers.gaussians([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts],
                             [p[3] for p in parts])


@pytest.mark.parametrize("order", ["near-first", "far-first"])
def test_near_red_occludes_far_blue_in_any_input_order(helpers, order):
    cam = helpers.camera(17, 17, 20.0, cx=8.5, cy=8.5)
    out = render(two_layers(helpers, order), cam, background=BLACK, backend="torch")
    a1, a2 = 0.9, 0.8  # peak alphas at the shared centre pixel
    w1, w2 = a1, (1 - a1) * a2
    torch.testing.assert_close(out.rgb[8, 8], torch.tensor([w1, 0.0, w2]), rtol=1e-5, atol=1e-6)
    assert math.isclose(float(out.alpha[8, 8]), w1 + w2, rel_tol=1e-6)
    assert math.isclose(float(out.depth[8, 8]), (w1 * 2.0 + w2 * 4.0) / (w1 + w2), rel_tol=1e-6)
    assert (out.rgb[..., 0] >= out.rgb[..., 2] - 1e-6)[6:11, 6:11].all()  # red dominates the core


def test_background_exact_where_empty_and_mixed_where_partial(helpers):
    cam = helpers.camera(21, 15, 30.0, cx=5.5, cy=7.5)
    g = helpers.gaussians([0, 0, 3.0], [0.05], [0.6], [0.2, 0.9, 0.1])
    bg = torch.tensor([0.25, 0.5, 0.75])
    out = render(g, cam, background=bg, backend="torch")
    empty = out.alpha == 0
    assert empty.sum() > 100
    assert (out.rgb[empty] == bg).all()  # exactly the background
    a = out.alpha[7, 5]
    assert math.isclose(float(a), 0.6, rel_tol=1e-5)
    torch.testing.assert_close(out.rgb[7, 5], a * torch.tensor([0.2, 0.9, 0.1]) + (1 - a) * bg)
    # rgb is linear in the background with slope (1 - alpha)
    white = render(g, cam, background=(1.0, 1.0, 1.0), backend="torch")
    torch.testing.assert_close(white.rgb - out.rgb, (1 - out.alpha)[..., None] * (1 - bg), atol=1e-6, rtol=0)
    # a single float is a grey background
    grey = render(g, cam, background=0.5, backend="torch")
    assert (grey.rgb[empty] == 0.5).all()


def test_per_camera_background(helpers):
    cam = helpers.camera(8, 8, 10.0)
    cams = Cameras(cam.K.expand(2, 3, 3), cam.c2w.expand(2, 4, 4), 8, 8)
    bg = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = render(Gaussians.empty(), cams, background=bg, backend="torch")
    assert (out.rgb[0] == bg[0]).all() and (out.rgb[1] == bg[1]).all()
    assert (out.alpha == 0).all() and (out.depth == 0).all()


def test_pixel_stops_like_gsplat_once_transmittance_is_spent(helpers):
    """Three alpha-0.999 layers: T after the first is 1e-3; the second would take it to 1e-6 ≤ 1e-4, so
    it and everything behind are excluded (gsplat/INRIA rule) — the second colour never shows."""
    cam = helpers.camera(5, 5, 10.0, cx=2.5, cy=2.5)
    g = helpers.gaussians([[0, 0, 1.0], [0, 0, 2.0], [0, 0, 3.0]], [0.5, 1.0, 1.5], [1.0, 1.0, 1.0],
                          [RED, [0.0, 1.0, 0.0], BLUE])
    out = render(g, cam, background=BLACK, backend="torch")
    torch.testing.assert_close(out.rgb[2, 2], torch.tensor([0.999, 0.0, 0.0]), rtol=1e-6, atol=1e-7)
    assert math.isclose(float(out.alpha[2, 2]), 0.999, rel_tol=1e-6)


def test_expected_depth_of_single_opaque_gaussian(helpers):
    cam = helpers.camera(16, 16, 20.0)
    g = helpers.gaussians([0.1, -0.05, 3.7], [0.3], [0.99], [1, 1, 1])
    out = render(g, cam, backend="torch")
    seen = out.alpha > 0
    assert seen.sum() > 50
    torch.testing.assert_close(out.depth[seen], torch.full_like(out.depth[seen], 3.7))
    assert (out.depth[~seen] == 0).all()


def test_near_far_and_behind_camera_culling(helpers):
    cam = helpers.camera(16, 16, 20.0)

    def alpha_sum(z, near=0.5, far=10.0):
        g = helpers.gaussians([0, 0, z], [abs(z) * 0.05 + 0.01], [0.9], [1, 1, 1])
        return float(render(g, cam, backend="torch", near=near, far=far).alpha.sum())

    assert alpha_sum(0.3) == 0.0  # in front of the camera but before near
    assert alpha_sum(12.0) == 0.0  # beyond far
    assert alpha_sum(-3.0) == 0.0  # behind the camera
    assert alpha_sum(0.6) > 0 and alpha_sum(9.0) > 0
    assert alpha_sum(0.3, near=0.2) > 0 and alpha_sum(12.0, far=20.0) > 0


def test_batch_shape_matches_individual_renders(helpers):
    scene = helpers.random(80, 24, 16, 20.0, seed=1)
    eyes = torch.tensor([[[0.0, 0, 0], [0.3, 0, 0], [0, 0.2, 0.1]], [[-0.2, 0.1, 0], [0, 0, -0.5],
                                                                      [0.1, -0.1, 0.2]]])
    c2w = look_at(eyes, torch.tensor([0.0, 0.0, 5.0]).expand(2, 3, 3))
    cams = Cameras(helpers.camera(24, 16, 20.0).K.expand(2, 3, 3, 3), c2w, 24, 16)
    out = render(scene, cams, backend="torch")
    assert out.rgb.shape == (2, 3, 16, 24, 3) and out.depth.shape == (2, 3, 16, 24)
    assert out.alpha.shape == (2, 3, 16, 24)
    for v in range(2):
        for t in range(3):
            one = render(scene, cams[v, t], backend="torch")
            assert one.rgb.shape == (16, 24, 3)
            torch.testing.assert_close(out.rgb[v, t], one.rgb)
            torch.testing.assert_close(out.depth[v, t], one.depth)
    assert not torch.allclose(out.rgb[0, 0], out.rgb[1, 1])


def test_width_height_override_resizes_the_cameras(helpers):
    scene = helpers.random(50, 20, 12, 16.0, seed=2)
    cam = helpers.camera(20, 12, 16.0)
    big = render(scene, cam, width=40, height=24, backend="torch")
    ref = render(scene, cam.resize(40, 24), backend="torch")
    assert big.rgb.shape == (24, 40, 3)
    torch.testing.assert_close(big.rgb, ref.rgb)


def test_sh_basis_is_orthonormal_on_the_sphere():
    # Fibonacci sphere: near-uniform directions; ∫ Y_i Y_j dΩ ≈ 4π · mean(Y_i Y_j) = δ_ij
    n = 40_000
    k = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * k / n
    phi = math.pi * (1 + 5**0.5) * k
    r = torch.sqrt(1 - z * z)
    dirs = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)
    Y = torch.cat([torch.full((n, 1), 0.28209479177387814, dtype=torch.float64), sh_basis(dirs, 3)], -1)
    gram = 4 * math.pi * (Y.T @ Y) / n
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), atol=2e-3, rtol=0)
    # INRIA signs: Y_1 = -C1·y, Y_2 = C1·z, Y_3 = -C1·x
    b = sh_basis(torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64), 1)
    torch.testing.assert_close(b, torch.tensor([[0.0, 0.4886025119029199, 0.0], [0.0, 0.0, -0.4886025119029199]],
                                               dtype=torch.float64))


def test_view_dependent_colour_from_sh(helpers):
    cam = helpers.camera(9, 9, 20.0, cx=4.5, cy=4.5)
    g = helpers.gaussians([0, 0, 3.0], [0.05], [0.9], [0.5, 0.5, 0.5])
    rest = torch.zeros(1, 15, 3)
    rest[0, 1] = torch.tensor([0.4, -0.4, 2.0])  # the z-band of degree 1, seen along +z
    g.sh_rest = rest
    out = render(g, cam, background=BLACK, backend="torch")
    c = torch.tensor([0.5, 0.5, 0.5]) + 0.4886025119029199 * rest[0, 1]
    torch.testing.assert_close(out.rgb[4, 4], 0.9 * c.clamp_min(0), rtol=1e-5, atol=1e-6)
    # seen from the other side (camera at z=6 looking back), the z-band flips sign
    back = Cameras(cam.K, look_at(torch.tensor([0.0, 0, 6.0]), torch.tensor([0.0, 0, 3.0])), 9, 9)
    c_back = (torch.tensor([0.5, 0.5, 0.5]) - 0.4886025119029199 * rest[0, 1]).clamp_min(0)
    torch.testing.assert_close(render(g, back, background=BLACK, backend="torch").rgb[4, 4], 0.9 * c_back,
                               rtol=1e-5, atol=1e-6)


def test_argument_errors(helpers):
    g = helpers.gaussians([0, 0, 3.0], [0.1], [0.5], [1, 1, 1])
    cam = helpers.camera(8, 8, 10.0)
    with pytest.raises(ConfigError, match="unknown render backend"):
        render(g, cam, backend="vulkan")
    with pytest.raises(ConfigError, match="CUDA"):
        render(g, cam, backend="gsplat")
    with pytest.raises(ConfigError, match="near"):
        render(g, cam, near=5.0, far=1.0)
    with pytest.raises(ConfigError, match="background"):
        render(g, cam, background=(1.0, 0.0))
    with pytest.raises(ConfigError, match="rasterize_mode"):
        render(g, cam, backend="torch", rasterize_mode="fancy")
    assert pick_backend("auto", torch.device("cpu")) == "torch"


def test_antialiased_mode_scales_opacity_by_compensation(helpers):
    W, H, f, z = 9, 9, 50.0, 4.0
    cam = helpers.camera(W, H, f, cx=4.5, cy=4.5)
    s_px = 0.5
    g = helpers.gaussians([0, 0, z], [s_px * z / f], [0.9], [1, 1, 1])
    a = render(g, cam, backend="torch", rasterize_mode="antialiased").alpha
    comp = s_px**2 / (s_px**2 + 0.3)  # sqrt(det Σ / det(Σ + 0.3 I)) for an isotropic splat
    assert math.isclose(float(a[4, 4]), 0.9 * comp, rel_tol=1e-5)
