"""``lyra.student.input_view``: pixel Gaussians of the photo, edge-preserving depth upsampling, redundancy."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from lyra.eval.baselines import render_views
from lyra.eval.metrics import psnr, sharpness_ratio
from lyra.gaussians import Gaussians
from lyra.gaussians.gaussians import quat_to_rotmat
from lyra.geometry import Cameras
from lyra.student.input_view import (
    InputViewSettings,
    delivery_size,
    fit_colors,
    hide_behind_surface,
    input_view_gaussians,
    sharpen_depth_edges,
    upsample_depth,
)


def _camera(h: int, w: int) -> Cameras:
    return Cameras.from_fov(50.0, w, h)


def test_delivery_size_follows_the_photo_and_never_upsamples():
    assert delivery_size(1332, 2048, 1024) == (666, 1024)
    assert delivery_size(2048, 1332, 1024) == (1024, 666)
    assert delivery_size(100, 200, 1024) == (100, 200)
    assert delivery_size(616, 1120, 1024) == (563, 1024)
    with pytest.raises(ValueError):
        delivery_size(10, 10, 0)


def test_upsample_depth_keeps_edges_and_sky():
    d = torch.full((8, 12), 2.0)
    d[:, 6:] = 10.0  # a vertical depth edge
    d[0, 0] = math.inf  # one sky pixel
    up = upsample_depth(d, 32, 48)
    assert up.shape == (32, 48)
    fin = up[torch.isfinite(up)]
    # no Gaussian floats between the two surfaces: every value is (within float error) one of the two depths
    assert bool(((fin - 2.0).abs() < 1e-4).logical_or((fin - 10.0).abs() < 1e-4).all())
    assert torch.isinf(up[:4, :4]).all() and torch.isfinite(up[8:, :20]).all()
    # a smooth ramp stays smooth (bilinear in log-depth): strictly between its end values and monotone
    ramp = torch.linspace(2.0, 2.2, 12).expand(8, 12).contiguous()
    r = upsample_depth(ramp, 16, 24)
    assert bool((r[:, 1:] >= r[:, :-1] - 1e-6).all())
    assert float(r.min()) >= 2.0 - 1e-5 and float(r.max()) <= 2.2 + 1e-5
    assert torch.equal(upsample_depth(ramp, 8, 12), ramp)


def _blurred_step(h: int = 24, w: int = 40) -> tuple[Tensor, Tensor]:
    """A red object (depth 2) left of column 20 before a blue wall (depth 8), the photo's colour edge sharp and
    the depth's a linear ramp in log-depth over columns 17..22 (as a monocular estimate blurs it)."""
    image = torch.zeros(3, h, w)
    image[0, :, :20] = 0.8
    image[2, :, 20:] = 0.8
    cols = torch.arange(w, dtype=torch.float32)
    t = ((cols - 16.5) / 6).clamp(0, 1)
    depth = torch.exp(math.log(2.0) + t * (math.log(8.0) - math.log(2.0))).expand(h, w).contiguous()
    return depth, image


def test_sharpen_depth_edges_pulls_a_ramp_to_the_sides_of_the_colour_edge():
    depth, image = _blurred_step()
    sharp = sharpen_depth_edges(depth, image)
    side = torch.where(torch.arange(40) < 20, 2.0, 8.0).expand_as(depth)  # the depth of each pixel's colour side
    before, after = (depth.log() - side.log()).abs(), (sharp.log() - side.log()).abs()
    # no pixel moves away from its side, the ramp's error falls by more than half, the red side is exact
    assert bool((after <= before + 1e-6).all())
    assert float(after[:, 17:23].max()) < 0.5 * float(before[:, 17:23].max())
    assert torch.allclose(sharp[:, :20], torch.full_like(sharp[:, :20], 2.0), rtol=1e-5)
    # bands of rows give the same result as one pass; sky stays sky
    assert torch.equal(sharpen_depth_edges(depth, image, rows=5), sharp)
    depth[:3, 30:] = math.inf
    with_sky = sharpen_depth_edges(depth, image)
    assert torch.isinf(with_sky[:3, 30:]).all() and torch.isfinite(with_sky[3:]).all()


def test_sharpen_depth_edges_leaves_planes_alone():
    h, w = 30, 50
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    # a floor seen at a grazing angle: disparity affine in the pixel coordinates, depth 1.2 .. 60 (a factor 50)
    disparity = 0.0166 + 0.0277 * yy / (h - 1) + 0.002 * xx / (w - 1)
    depth = 1.0 / disparity
    texture = torch.rand(3, h, w, generator=torch.Generator().manual_seed(0))  # colours that would mislead
    assert torch.equal(sharpen_depth_edges(depth, texture), depth)
    with pytest.raises(ValueError, match="one size"):
        sharpen_depth_edges(depth, texture[:, :-1])


def test_input_view_gaussians_sit_on_their_pixels_and_render_the_photo():
    torch.manual_seed(0)
    H, W = 40, 64
    blocks = torch.rand(3, 5, 8)
    image = torch.nn.functional.interpolate(blocks[None], size=(H, W), mode="nearest")[0]
    depth = torch.full((H, W), 4.0)
    depth[:, : W // 2] = 2.5
    depth[0, :3] = math.inf  # sky: no Gaussian
    cam = _camera(H, W)
    g = input_view_gaussians(image, depth, cam, InputViewSettings(footprint=0.3))
    assert len(g) == H * W - 3
    uv, z = cam.project(g.means)
    valid = torch.isfinite(depth)
    assert torch.allclose(z, depth[valid], atol=1e-4)
    assert torch.allclose(uv, cam.pixel_grid()[valid], atol=1e-3)
    assert torch.allclose(g.colors, image.permute(1, 2, 0)[valid])
    # on a plane facing the camera: in-plane size footprint × the pixel footprint at the Gaussian's depth (both
    # axes), thickness a tenth of it (scales ascending)
    f = float(cam.K[0, 0])
    assert torch.allclose(g.scales[:, 1], 0.3 * depth[valid] / f, rtol=1e-4)
    assert torch.allclose(g.scales[:, 2], 0.3 * depth[valid] / f, rtol=1e-4)
    assert torch.allclose(g.scales[:, 0], 0.1 * g.scales[:, 2], rtol=1e-4)
    # hard-edged random blocks: neighbouring splats spill onto each other (the renderer's low-pass), so the raw
    # pixel colours render blurred; refitting the colours at the input camera undoes most of it (rows 2+: away
    # from the sky corner, which neighbours tint)
    def score(gs):
        out = render_views(gs, cam.reshape(1), backend="torch").rgb[0]
        return float(psnr(out[:, 2:], image[:, 2:])), float(sharpness_ratio(out[None, :, 2:], image[None, :, 2:]))

    raw_psnr, raw_sharp = score(g)
    fitted = fit_colors(g, len(g), cam, image, iterations=4, backend="torch")
    fit_psnr, fit_sharp = score(fitted)
    assert fit_psnr > raw_psnr + 3.0 and fit_psnr > 27.0
    assert fit_sharp > raw_sharp and 0.9 < fit_sharp < 1.1
    assert torch.equal(fitted.means, g.means) and torch.equal(fitted.opacities, g.opacities)
    assert float(fitted.colors.min()) >= 0.0 and float(fitted.colors.max()) <= 1.0
    # a wider footprint blurs: the setting is what makes it sharp
    wide = input_view_gaussians(image, depth, cam, InputViewSettings(footprint=0.8))
    assert score(wide)[0] < raw_psnr - 2.0


def test_input_view_gaussians_lie_on_a_slanted_surface_and_close_it_from_another_view():
    """A ground plane seen at a grazing angle: each surfel lies in the plane (its thinnest axis along the plane's
    normal, y), looks round and 0.4 px wide from the input camera, and from a camera raised above the input one the
    surfels still cover the ground, where camera-facing discs as wide at the same centres leave much of it open."""
    H, W = 48, 64
    cam = _camera(H, W)
    assert torch.equal(cam.c2w, torch.eye(4))  # at the origin, looking along +z (OpenCV: y down)
    rays = cam.unproject(torch.ones(H, W))  # the point at z = 1 on each pixel's ray
    depth = torch.where(rays[..., 1] > 0.025, 1.0 / rays[..., 1].clamp_min(1e-6), torch.tensor(math.inf))
    g = input_view_gaussians(torch.rand(3, H, W), depth, cam)  # the ground y = 1, out to z = 40
    R = quat_to_rotmat(g.quats)
    on_slope = g.means[:, 2] < 12.0  # farther, a row's step along the ground passes max_stretch: camera-facing
    assert float(R[on_slope, 1, 0].abs().min()) > 0.999
    # projected covariance at the input camera: J Σ Jᵀ with J the pinhole Jacobian at each centre
    f = float(cam.K[0, 0])
    x, y, z = g.means.unbind(-1)
    J = torch.zeros(len(g), 2, 3)
    J[:, 0, 0] = f / z
    J[:, 0, 2] = -f * x / z**2
    J[:, 1, 1] = f / z
    J[:, 1, 2] = -f * y / z**2
    cov = R @ torch.diag_embed(g.scales**2) @ R.transpose(1, 2)
    cov2d = J @ cov @ J.transpose(1, 2)
    assert torch.allclose(cov2d, 0.16 * torch.eye(2).expand_as(cov2d), atol=0.02)
    # from a camera twice as high (2 above the input one), looking the same way: the ground stays covered
    lift = torch.eye(4)
    lift[1, 3] = -2.0
    raised = Cameras(cam.K, lift, W, H)
    ray_y = raised.unproject(torch.ones(H, W))[..., 1] + 2.0  # each ray's y at z = 1, from the raised centre
    hit_z = 3.0 / ray_y.clamp_min(1e-6)  # where it meets the ground y = 1
    ground = (ray_y > 0) & (hit_z > 3.0) & (hit_z < 30.0)
    alpha = render_views(g, raised.reshape(1), backend="torch").alpha[0][ground]
    sigma = (0.4 * z / f)[:, None] * torch.tensor([1.0, 1.0, 0.1])
    facing = Gaussians(g.means, torch.tensor([[1.0, 0, 0, 0]]).expand(len(g), 4).clone(), sigma, g.opacities, g.colors)
    alpha_facing = render_views(facing, raised.reshape(1), backend="torch").alpha[0][ground]
    assert int(ground.sum()) > 1000
    assert float(alpha.mean()) > 0.85 and float((alpha < 0.5).float().mean()) < 0.15  # measured 0.876, 0.087
    assert float((alpha_facing < 0.5).float().mean()) > 0.5  # camera-facing discs: 0.684 of the ground open


def test_input_view_gaussians_check_shapes():
    cam = _camera(8, 8)
    with pytest.raises(ValueError):
        input_view_gaussians(torch.rand(3, 8, 8), torch.ones(8, 9), cam)
    with pytest.raises(ValueError):
        input_view_gaussians(torch.rand(8, 8), torch.ones(8, 8), cam)


def _points(*xyz: tuple[float, float, float]) -> Gaussians:
    n = len(xyz)
    return Gaussians(means=torch.tensor(xyz, dtype=torch.float32), quats=torch.tensor([[1.0, 0, 0, 0]] * n),
                     scales=torch.full((n, 3), 0.1), opacities=torch.full((n,), 0.5), colors=torch.rand(n, 3))


def test_hide_behind_surface_keeps_only_what_the_photo_cannot_show():
    H, W = 20, 30
    cam = _camera(H, W)
    depth = torch.full((H, W), 5.0)
    depth[:, :5] = math.inf  # sky on the left
    sky_dir = cam.unproject(torch.ones(H, W))[10, 2]  # a ray through the sky part at z = 1
    g = _points((0, 0, 2.0),  # in front of the surface: hides the photo -> dropped
                (0, 0, 5.1),  # on the surface (within 5 %) -> dropped (duplicate)
                (0, 0, 8.0),  # behind the surface: disoccluded content -> kept
                (0, 0, -3.0),  # behind the camera -> kept
                (400.0, 0, 5.0),  # far outside the frame -> kept
                tuple((sky_dir * 7.0).tolist()))  # where the photo has no depth (sky) -> kept
    keep, shrink = hide_behind_surface(g, depth, cam)
    assert keep.tolist() == [False, False, True, True, True, True]
    # behind a flat wall that fills its footprint: whole
    assert shrink[[2, 3, 4, 5]].tolist() == [1.0, 1.0, 1.0, 1.0]
    empty = hide_behind_surface(g[:0], depth, cam)
    assert empty[0].shape == empty[1].shape == (0,)
    with pytest.raises(ValueError):
        hide_behind_surface(g, torch.ones(H, W + 1), cam)


def test_hide_behind_surface_shrinks_a_footprint_that_would_spill_over_an_edge():
    """A wide Gaussian behind a foreground post, next to a far background: at full size its footprint covers
    background pixels where nothing hides it (a halo at the input camera), so it is shrunk until it fits behind
    the post; rendered at the input camera it then leaves the background as the photo shows it."""
    H, W = 40, 40
    cam = _camera(H, W)
    f = float(cam.K[0, 0])
    depth = torch.full((H, W), 50.0)  # a far background
    depth[:, 15:25] = 4.0  # a post 10 px wide
    z = 8.0
    g = _points((0.0, 0.0, z))  # centred behind the post
    g = Gaussians(g.means, g.quats, torch.full((1, 3), 6.0 * z / f), g.opacities, g.colors)  # sigma 6 px
    keep, shrink = hide_behind_surface(g, depth, cam, reach=2.5)
    assert keep.tolist() == [True]
    radius = 2.5 * 6.0
    assert 0.0 < float(shrink[0]) * radius <= 5.5  # fits the post's half-width
    # the same Gaussian behind a wall that spans the whole frame stays whole
    wall = torch.full((H, W), 4.0)
    assert hide_behind_surface(g, wall, cam)[1].tolist() == [1.0]
    # centred just outside the frame, its footprint reaching in over the background: shrunk as well
    u_out = -3.0
    x = (u_out - float(cam.K[0, 2])) * z / f
    g_out = Gaussians(torch.tensor([[x, 0.0, z]]), g.quats, g.scales, g.opacities, g.colors)
    keep, shrink = hide_behind_surface(g_out, depth, cam, reach=2.5)
    assert keep.tolist() == [True] and float(shrink[0]) * radius <= 3.5


def test_input_view_layer_sharpens_depth_edges_only_when_asked():
    import dataclasses

    from lyra.pipeline import input_view_layer

    depth, image = _blurred_step()
    camera = _camera(24, 40)
    latent = Gaussians(torch.tensor([[0.0, 0.0, 50.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
                       torch.full((1, 3), 0.1), torch.ones(1), torch.rand(1, 3))
    off, n_off, info_off = input_view_layer(latent, image, depth, camera)
    on_settings = dataclasses.replace(InputViewSettings(), sharpen_radius=3)
    on, n_on, info_on = input_view_layer(latent, image, depth, camera, on_settings)
    assert InputViewSettings().sharpen_radius == 0 and info_off["depth_sharpened"] == 0.0
    assert info_on["depth_sharpened"] > 0.05 and n_on == n_off == 24 * 40
    # the surfels of the ramp's columns move towards the sides' depths (2 and 8), so their centres differ
    assert not torch.allclose(on.means[:n_on], off.means[:n_off])
