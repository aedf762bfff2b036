"""``lyra.student.input_view``: pixel Gaussians of the photo, edge-preserving depth upsampling, redundancy."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.eval.baselines import render_views
from lyra.eval.metrics import psnr, sharpness_ratio
from lyra.gaussians import Gaussians
from lyra.geometry import Cameras
from lyra.student.input_view import (
    InputViewSettings,
    delivery_size,
    drop_redundant,
    fit_colors,
    input_view_gaussians,
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
    # the in-plane size is footprint × the pixel footprint at the Gaussian's depth; flat along the view axis
    f = float(cam.K[0, 0])
    assert torch.allclose(g.scales[:, 0], 0.3 * depth[valid] / f, rtol=1e-5)
    assert torch.allclose(g.scales[:, 2], 0.1 * g.scales[:, 0], rtol=1e-5)
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


def test_drop_redundant_keeps_only_what_the_photo_cannot_show():
    H, W = 20, 30
    cam = _camera(H, W)
    depth = torch.full((H, W), 5.0)
    depth[:, :5] = math.inf  # sky on the left
    sky_dir = cam.unproject(torch.ones(H, W))[10, 2]  # a ray through the sky part at z = 1
    g = _points((0, 0, 2.0),  # in front of the surface: hides the photo -> dropped
                (0, 0, 5.1),  # on the surface (within 5 %) -> dropped (duplicate)
                (0, 0, 8.0),  # behind the surface: disoccluded content -> kept
                (0, 0, -3.0),  # behind the camera -> kept
                (40.0, 0, 5.0),  # outside the frame -> kept
                tuple((sky_dir * 7.0).tolist()))  # where the photo has no depth (sky) -> kept
    keep = drop_redundant(g, depth, cam)
    assert keep.tolist() == [False, False, True, True, True, True]
    assert drop_redundant(g[:0], depth, cam).shape == (0,)
    with pytest.raises(ValueError):
        drop_redundant(g, torch.ones(H, W + 1), cam)
