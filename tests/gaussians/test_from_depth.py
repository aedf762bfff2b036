import torch

from lyra.gaussians.from_depth import gaussians_from_depth
from lyra.geometry.cameras import Cameras
from lyra.render import render


def test_plane_reprojects_to_its_own_image():
    """A textured plane at depth 3 becomes Gaussians that render back to the same image and depth."""
    H, W = 24, 32
    cam = Cameras.from_fov(50.0, W, H).reshape(1)
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    image = torch.stack([0.5 + 0.4 * torch.sin(xx / 3.0), 0.5 + 0.4 * torch.cos(yy / 4.0),
                         0.2 + 0.01 * (xx + yy)])[None]  # smooth: splats blur by about a pixel
    depth = torch.full((1, H, W), 3.0)
    depth[0, :4] = float("inf")  # a strip of sky: skipped
    gs = gaussians_from_depth(image, depth, cam)
    assert len(gs) == (H - 4) * W
    gs.validate()
    # centres lie on their pixels' rays at z = 3
    uv, z = cam.project(gs.means[None])
    assert torch.allclose(z, torch.full_like(z, 3.0), atol=1e-5)
    grid = cam.pixel_grid()[4:].reshape(-1, 2)
    assert torch.allclose(uv[0], grid, atol=1e-3)
    out = render(gs, cam[0], background=(1.0, 1.0, 1.0), backend="torch")
    rendered = out.rgb.permute(2, 0, 1)[:, 6:-2, 2:-2]  # away from the sky edge and borders
    target = image[0, :, 6:-2, 2:-2]
    assert (rendered - target).abs().mean() < 0.04  # blur of about 0.8 px and 1-2 % white leaking through
    assert torch.allclose(out.depth[6:-2, 2:-2], torch.full_like(out.depth[6:-2, 2:-2], 3.0), atol=0.05)
    assert (out.alpha[:2] < 0.05).all()  # the sky stays empty (row 3 touches the first splats)


def test_stride_scales_footprint():
    cam = Cameras.from_fov(60.0, 16, 16).reshape(1)
    image = torch.rand(1, 3, 16, 16)
    depth = torch.full((1, 16, 16), 2.0)
    g1 = gaussians_from_depth(image, depth, cam, stride=1)
    g2 = gaussians_from_depth(image, depth, cam, stride=2)
    assert len(g2) == len(g1) // 4
    assert torch.allclose(g2.scales[:, 0], 2 * g1.scales[0, 0].expand(len(g2)))
