"""PSNR / SSIM against closed forms and an independent loop implementation of Wang et al. (2004)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lyra.eval.metrics import gaussian_window, mean_finite, psnr, ssim, ssim_map

C1, C2 = 0.01**2, 0.03**2


def test_psnr_constant_offset():
    x = torch.rand(2, 5, 3, 8, 9, generator=torch.Generator().manual_seed(0)) * 0.8
    for d in (0.1, 0.01, 0.2):
        p = psnr(x + d, x)
        assert p.shape == (2, 5)
        assert torch.allclose(p, torch.full_like(p, -20 * math.log10(d)), atol=1e-3)
    assert torch.isinf(psnr(x, x)).all()
    # data_range 255: the same images in 0..255 have the same PSNR
    assert torch.allclose(psnr(255 * (x + 0.1), 255 * x, data_range=255.0), psnr(x + 0.1, x), atol=1e-3)


def test_psnr_half_of_pixels_wrong():
    x = torch.zeros(3, 4, 4)
    y = x.clone()
    y[:, :2] = 1.0  # half of all values off by 1: MSE 0.5
    assert float(psnr(y, x)) == pytest.approx(10 * math.log10(2), abs=1e-5)
    assert mean_finite(torch.tensor([1.0, math.inf, 3.0])) == 2.0


def test_gaussian_window():
    g = gaussian_window(11, 1.5, dtype=torch.float64)
    assert g.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(g, g.flip(0))
    assert (g[6] / g[5]).item() == pytest.approx(math.exp(-1 / (2 * 1.5**2)), rel=1e-12)


def test_ssim_identical_is_one():
    x = torch.rand(4, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ssim(x, x), torch.ones(4), atol=1e-6)


def test_ssim_constant_images_closed_form():
    # Constant images a and b: variances vanish, SSIM = (2ab + C1)/(a² + b² + C1) everywhere.
    for a, b in ((0.2, 0.7), (0.5, 0.5), (0.9, 0.1)):
        x, y = torch.full((3, 16, 16), a, dtype=torch.float64), torch.full((3, 16, 16), b, dtype=torch.float64)
        expect = (2 * a * b + C1) / (a * a + b * b + C1)
        assert float(ssim(x, y)) == pytest.approx(expect, rel=1e-9)


def _ssim_reference(x: np.ndarray, y: np.ndarray, same: bool) -> float:
    """Plain loops over windows (one channel), explicit 2-D Gaussian weights, optional zero padding."""
    r = np.arange(11) - 5.0
    w1 = np.exp(-(r**2) / (2 * 1.5**2))
    w = np.outer(w1, w1) / np.outer(w1, w1).sum()
    if same:
        x, y = np.pad(x, 5), np.pad(y, 5)
    h, wd = x.shape
    vals = []
    for i in range(h - 10):
        for j in range(wd - 10):
            px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            vals.append((2 * mx * my + C1) * (2 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2)))
    return float(np.mean(vals))


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_ssim_matches_loop_reference(padding):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 14, 15, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(2, 14, 15, generator=g, dtype=torch.float64)).clamp(0, 1)
    got = ssim(x, y, padding=padding)  # two channels, averaged
    ref = np.mean([_ssim_reference(x[c].numpy(), y[c].numpy(), padding == "same") for c in range(2)])
    assert float(got) == pytest.approx(ref, abs=1e-9)
    m = ssim_map(x, y, padding=padding)
    assert m.shape == ((2, 4, 5) if padding == "valid" else (2, 14, 15))


def test_ssim_symmetric_and_batched():
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 3, 3, 16, 16, generator=g), torch.rand(2, 3, 3, 16, 16, generator=g)
    s = ssim(x, y)
    assert s.shape == (2, 3)
    assert torch.allclose(s, ssim(y, x), atol=1e-6)
    assert torch.allclose(s[1, 2], ssim(x[1, 2], y[1, 2]), atol=1e-6)
    assert (s < 0.2).all()  # independent noise images are dissimilar


def test_errors():
    with pytest.raises(ValueError):
        psnr(torch.zeros(3, 4, 4), torch.zeros(3, 4, 5))
    with pytest.raises(ValueError):
        ssim(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))  # smaller than the window
