"""Single Gaussians against the closed form of the EWA splat (incl. the 0.3 px² dilation)."""

from __future__ import annotations

import math

import torch

from lyra.gaussians import quat_to_rotmat
from lyra.geometry import Cameras, look_at
from lyra.render import render

BLACK = (0.0, 0.0, 0.0)


def closed_form_alpha(width, height, mean2d, cov2d, opacity):
    """alpha image of one splat: min(0.999, o·exp(-½ dᵀΣ⁻¹d)), zero below 1/255."""
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                          torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    d = torch.stack([u - mean2d[0], v - mean2d[1]], -1)
    inv = torch.linalg.inv(torch.as_tensor(cov2d, dtype=torch.float64))
    m = torch.einsum("hwi,ij,hwj->hw", d, inv, d)
    a = torch.clamp(opacity * torch.exp(-0.5 * m), max=0.999)
    return torch.where(a >= 1 / 255, a, torch.zeros_like(a))


def test_isotropic_peak_and_one_sigma_falloff(helpers):
    W, H, f, z = 33, 25, 50.0, 4.0
    cam = helpers.camera(W, H, f, cx=16.5, cy=12.5)  # the centre projects onto pixel (16, 12)'s centre
    s = math.sqrt(4.0 - 0.3) * z / f  # 3D std whose splat, dilated by 0.3 px², has σ = 2 px exactly
    color = torch.tensor([0.2, 0.6, 1.0])
    g = helpers.gaussians([0, 0, z], [s], [0.8], color)
    out = render(g, cam, background=BLACK, backend="torch")
    a = out.alpha
    assert math.isclose(float(a[12, 16]), 0.8, rel_tol=1e-5)  # peak
    assert math.isclose(float(a[12, 18]), 0.8 * math.exp(-0.5), rel_tol=1e-5)  # 1σ along x
    assert math.isclose(float(a[14, 16]), 0.8 * math.exp(-0.5), rel_tol=1e-5)  # 1σ along y
    assert math.isclose(float(a[14, 18]), 0.8 * math.exp(-1.0), rel_tol=1e-5)  # (1σ, 1σ)
    assert math.isclose(float(a[12, 14]), float(a[12, 18]), rel_tol=1e-6)  # symmetric
    torch.testing.assert_close(out.rgb[12, 16], 0.8 * color, rtol=1e-5, atol=1e-6)
    expect = closed_form_alpha(W, H, (16.5, 12.5), [[4.0, 0], [0, 4.0]], 0.8)
    torch.testing.assert_close(a.double(), expect, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.rgb.double(), expect[..., None] * color.double(), rtol=1e-5, atol=1e-6)
    # expected depth: z wherever the splat reaches, 0 elsewhere
    assert torch.allclose(out.depth[expect > 0], torch.tensor(z), rtol=1e-6)
    assert (out.depth[expect == 0] == 0).all() and (a[expect == 0] == 0).all()


def test_dilation_dominates_tiny_gaussian(helpers):
    W, H, f, z = 9, 9, 50.0, 4.0
    cam = helpers.camera(W, H, f, cx=4.5, cy=4.5)
    s_px = 0.1
    g = helpers.gaussians([0, 0, z], [s_px * z / f], [0.9], [1, 1, 1])
    a = render(g, cam, background=BLACK, backend="torch").alpha
    var = s_px**2 + 0.3
    assert math.isclose(float(a[4, 4]), 0.9, rel_tol=1e-5)
    assert math.isclose(float(a[4, 5]), 0.9 * math.exp(-0.5 / var), rel_tol=1e-5)
    assert math.isclose(float(a[5, 5]), 0.9 * math.exp(-1.0 / var), rel_tol=1e-5)


def test_off_axis_isotropic_uses_perspective_jacobian(helpers):
    W, H, f = 64, 48, 40.0
    cam = helpers.camera(W, H, f)
    x, y, z, s, o = 0.9, -0.5, 3.0, 0.12, 0.7
    g = helpers.gaussians([x, y, z], [s], [o], [1, 1, 1])
    a, b = x / z, y / z
    cov2d = (s * f / z) ** 2 * torch.tensor([[1 + a * a, a * b], [a * b, 1 + b * b]], dtype=torch.float64)
    cov2d += 0.3 * torch.eye(2, dtype=torch.float64)
    expect = closed_form_alpha(W, H, (f * a + W / 2, f * b + H / 2), cov2d, o)
    out = render(g, cam, background=BLACK, backend="torch")
    torch.testing.assert_close(out.alpha.double(), expect, rtol=1e-4, atol=1e-6)


def test_rotated_anisotropic_on_axis(helpers):
    W, H, f, z = 40, 40, 60.0, 5.0
    cam = helpers.camera(W, H, f, cx=20.5, cy=20.5)
    q = torch.nn.functional.normalize(torch.tensor([0.9, 0.2, -0.3, 0.4]), dim=0)
    scales = torch.tensor([0.25, 0.08, 0.15])
    g = helpers.gaussians([0, 0, z], scales, [0.95], [1, 1, 1], quats=q[None])
    R = quat_to_rotmat(q.double())
    cov3 = R @ torch.diag(scales.double() ** 2) @ R.T
    cov2d = (f / z) ** 2 * cov3[:2, :2] + 0.3 * torch.eye(2, dtype=torch.float64)
    expect = closed_form_alpha(W, H, (20.5, 20.5), cov2d, 0.95)
    torch.testing.assert_close(render(g, cam, background=BLACK, backend="torch").alpha.double(), expect,
                               rtol=1e-4, atol=1e-6)


def test_jacobian_clamped_outside_frustum(helpers):
    """A centre beyond 1.3·tan(fov/2) uses the clamped Jacobian (as 3DGS/gsplat), not the true one."""
    W, H, f, z = 32, 32, 32.0, 2.0  # tan(fov_x / 2) = 0.5 → the clamp is at x/z = 0.65
    cam = helpers.camera(W, H, f)
    x, s, o = 0.8 * z, 0.4, 0.9
    g = helpers.gaussians([x, 0, z], [s], [o], [1, 1, 1])
    tx = 0.65 * z
    J = torch.tensor([[f / z, 0, -f * tx / z**2], [0, f / z, 0]], dtype=torch.float64)
    cov2d = s**2 * J @ J.T + 0.3 * torch.eye(2, dtype=torch.float64)
    expect = closed_form_alpha(W, H, (f * x / z + W / 2, H / 2), cov2d, o)
    assert expect.max() > 0.05  # the splat does reach into the image
    got = render(g, cam, background=BLACK, backend="torch").alpha.double()
    torch.testing.assert_close(got, expect, rtol=1e-4, atol=1e-6)
    # the unclamped Jacobian would give a visibly different image
    J_true = torch.tensor([[f / z, 0, -f * x / z**2], [0, f / z, 0]], dtype=torch.float64)
    other = closed_form_alpha(W, H, (f * x / z + W / 2, H / 2), s**2 * J_true @ J_true.T + 0.3 * torch.eye(2), o)
    assert (got - other).abs().max() > 0.02


def test_rigid_motion_of_scene_and_camera_together_changes_nothing(helpers):
    scene = helpers.random(60, 48, 32, 40.0, seed=3)
    cam = helpers.camera(48, 32, 40.0)
    M = look_at(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 0.0, 6.0]))
    moved_cam = Cameras(cam.K, M @ cam.c2w, 48, 32)
    a = render(scene, cam, backend="torch")
    b = render(scene.transform(M), moved_cam, backend="torch")
    torch.testing.assert_close(b.rgb, a.rgb, atol=2e-4, rtol=0)
    torch.testing.assert_close(b.alpha, a.alpha, atol=2e-4, rtol=0)
