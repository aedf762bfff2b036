"""Finite-difference gradient checks (float64) of the torch reference through ``render``."""

from __future__ import annotations

import pytest
import torch

from lyra.gaussians import Gaussians
from lyra.render import render

W, H, F = 12, 10, 14.0


def tiny_scene(helpers) -> Gaussians:
    """Three overlapping Gaussians of 1.5-3 px, opacities well inside (1/255, 0.999)."""
    return helpers.gaussians(
        [[-0.3, 0.1, 3.0], [0.2, -0.1, 3.6], [0.05, 0.25, 4.2]],
        [[0.30, 0.45, 0.35], [0.5, 0.35, 0.4], [0.6, 0.5, 0.55]],
        [0.7, 0.55, 0.8],
        [[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9]],
        quats=torch.nn.functional.normalize(torch.tensor(
            [[0.9, 0.1, 0.3, 0.0], [0.8, -0.2, 0.1, 0.4], [1.0, 0.0, 0.0, 0.2]], dtype=torch.float64), dim=-1),
        dtype=torch.float64,
    )


@pytest.mark.parametrize("field", ["means", "scales", "opacities", "colors", "quats"])
def test_gradcheck_each_parameter(helpers, field):
    base = tiny_scene(helpers)
    cam = helpers.camera(W, H, F)
    x0 = getattr(base, field).clone().requires_grad_(True)

    def fn(x):
        g = Gaussians(**{**{k: getattr(base, k) for k in ("means", "quats", "scales", "opacities", "colors",
                                                            "sh_rest")}, field: x})
        out = render(g, cam, background=(0.3, 0.6, 0.9), backend="torch")
        return out.rgb, out.depth, out.alpha

    assert torch.autograd.gradcheck(fn, (x0,), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)
    # and the gradient is really there (not all zero)
    rgb, depth, alpha = fn(x0)
    (rgb.sum() + depth.sum() + alpha.sum()).backward()
    assert x0.grad.abs().sum() > 0


def test_gradcheck_sh_coefficients(helpers):
    base = tiny_scene(helpers)
    cam = helpers.camera(W, H, F)
    g0 = torch.Generator().manual_seed(0)
    rest = (0.1 * torch.randn(3, 8, 3, generator=g0, dtype=torch.float64)).requires_grad_(True)

    def fn(r):
        g = Gaussians(base.means, base.quats, base.scales, base.opacities, base.colors, r)
        return render(g, cam, backend="torch").rgb

    assert torch.autograd.gradcheck(fn, (rest,), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)


def test_gradient_descent_fits_a_target_colour(helpers):
    """Optimising colours through the renderer recovers the colours that made the target."""
    base = tiny_scene(helpers)
    cam = helpers.camera(W, H, F)
    target = render(base, cam, backend="torch").rgb.detach()
    colors = torch.full((3, 3), 0.5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([colors], lr=0.1)
    for _ in range(60):
        g = Gaussians(base.means, base.quats, base.scales, base.opacities, colors)
        loss = (render(g, cam, backend="torch").rgb - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.testing.assert_close(colors.detach(), base.colors, atol=2e-2, rtol=0)
