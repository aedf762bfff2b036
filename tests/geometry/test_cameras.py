import math

import pytest
import torch

from lyra.errors import ConfigError
from lyra.geometry.cameras import Cameras, intrinsics_from_fov, look_at


def random_cameras(n: int, seed: int = 0, width: int = 64, height: int = 48) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    eye = torch.randn(n, 3, generator=g) * 3
    target = torch.randn(n, 3, generator=g) * 0.3
    fov = 30 + 40 * torch.rand(n, generator=g)
    K = intrinsics_from_fov(fov, width, height)
    K[:, 0, 2] += torch.randn(n, generator=g)  # off-centre principal points
    return Cameras(K, look_at(eye, target), width, height)


def test_intrinsics_from_fov_closed_form():
    K = intrinsics_from_fov(90.0, 200, 100)
    assert K[1, 1].item() == pytest.approx(50.0)  # fy = (H/2) / tan(45°)
    assert K[0, 0].item() == pytest.approx(50.0)
    assert K[0, 2].item() == 100 and K[1, 2].item() == 50
    cam = Cameras(K, torch.eye(4), 200, 100)
    assert cam.fov_y_deg.item() == pytest.approx(90.0, abs=1e-4)


def test_look_at_is_rotation_and_points_at_target():
    cams = random_cameras(16)
    R = cams.c2w[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(16, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(16), atol=1e-5)
    # identity pose: camera at origin looking down +z with world -y up is the OpenCV identity
    assert torch.allclose(look_at(torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), torch.eye(4), atol=1e-6)


def test_w2c_inverts_c2w():
    cams = random_cameras(8)
    assert torch.allclose(cams.w2c @ cams.c2w, torch.eye(4).expand(8, 4, 4), atol=1e-5)


def test_project_unproject_round_trip():
    cams = random_cameras(4)
    depth = 1 + torch.rand(4, cams.height, cams.width, generator=torch.Generator().manual_seed(1)) * 5
    pts = cams.unproject(depth)  # [4, H, W, 3]
    uv, z = cams.project(pts.reshape(4, -1, 3))
    assert torch.allclose(z, depth.reshape(4, -1), rtol=1e-4, atol=1e-4)
    assert torch.allclose(uv.reshape(4, cams.height, cams.width, 2), cams.pixel_grid().expand(4, -1, -1, -1),
                          atol=2e-3)


def test_rays_unit_and_through_pixel_centres():
    cam = Cameras.from_fov(60.0, 8, 6)
    o, d = cam.rays()
    assert torch.allclose(d.norm(dim=-1), torch.ones(6, 8), atol=1e-6)
    assert torch.allclose(o, torch.zeros(6, 8, 3))
    # pixel (i=3, j=2) has centre (3.5, 2.5): x/z = (3.5 - 4)/f, y/z = (2.5 - 3)/f
    f = cam.K[1, 1].item()
    ray = d[2, 3]
    assert ray[0].item() / ray[2].item() == pytest.approx(-0.5 / f, rel=1e-5)
    assert ray[1].item() / ray[2].item() == pytest.approx(-0.5 / f, rel=1e-5)


def test_plucker_moment_and_direction():
    cams = random_cameras(3)
    pl = cams.plucker()
    assert pl.shape == (3, 6, cams.height, cams.width)
    m, d = pl[:, :3], pl[:, 3:]
    o = cams.centers[:, :, None, None]
    assert torch.allclose(m, torch.linalg.cross(o.expand_as(d), d, dim=1), atol=1e-5)
    # the moment is the same for every point on the ray, and orthogonal to the direction
    p = o + 2.5 * d
    assert torch.allclose(torch.linalg.cross(p, d, dim=1), m, atol=1e-4)
    assert (m * d).sum(1).abs().max() < 1e-4


def test_resize_keeps_relative_ray_positions():
    cam = random_cameras(1)[0]
    big = cam.resize(cam.width * 2, cam.height * 2)
    _, d_small = cam.rays()
    _, d_big = big.rays()
    # the small pixel (i, j) covers big pixels (2i..2i+1); their mean direction ≈ the small one
    avg = torch.nn.functional.avg_pool2d(d_big.permute(2, 0, 1)[None], 2)[0].permute(1, 2, 0)
    assert torch.allclose(torch.nn.functional.normalize(avg, dim=-1), d_small, atol=1e-4)
    assert torch.allclose(cam.downscale(1).K, cam.K)
    half = Cameras.from_fov(50, 320, 176).downscale(8)
    assert (half.width, half.height) == (40, 22)
    assert half.K[0, 2].item() == pytest.approx(20.0)


def test_crop_keeps_rays():
    cam = random_cameras(1)[0]
    crop = cam.crop(5, 7, 20, 10)
    _, d = cam.rays()
    _, dc = crop.rays()
    assert torch.allclose(dc, d[7:17, 5:25], atol=1e-6)
    with pytest.raises(ConfigError):
        cam.crop(50, 0, 20, 10)
    with pytest.raises(ConfigError):
        Cameras.from_fov(50, 321, 176).downscale(8)


def test_dict_round_trip_and_cat():
    cams = random_cameras(6).reshape(2, 3)
    back = Cameras.from_dict(cams.to_dict())
    assert back.shape == (2, 3)
    assert torch.equal(back.K, cams.K) and torch.equal(back.c2w, cams.c2w)
    both = Cameras.cat([cams, cams], dim=1)
    assert both.shape == (2, 6)
    assert math.isclose(float(both.K[1, 4, 0, 0]), float(cams.K[1, 1, 0, 0]))
