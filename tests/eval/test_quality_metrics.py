"""MS-SSIM, GMSD, sharpness ratio, depth errors and coverage: perfect scores, the direction (and size) of the
change under blur, noise and shifts, parity with reference implementations, exact depth cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lyra.eval.metrics import (
    coverage,
    depth_errors,
    gmsd,
    gradient_magnitude,
    ms_ssim,
    psnr,
    sharpness_ratio,
    ssim,
)

ROOT = Path(__file__).resolve().parents[2]


def _photo() -> torch.Tensor:
    """A textured 176 × 320 test image ``[3, H, W]`` (the README's example world render)."""
    from PIL import Image

    a = np.asarray(Image.open(ROOT / "examples" / "room.png").convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (reflect padding, radius 3σ) of ``[3, H, W]``."""
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-x**2 / (2 * sigma**2))
    g = g / g.sum()
    t = F.pad(img[None], (r, r, r, r), mode="reflect")
    t = F.conv2d(t, g.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    t = F.conv2d(t, g.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return t[0]


def test_identical_images_score_perfectly():
    x = _photo()
    assert torch.isinf(psnr(x, x))
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    assert float(ms_ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    assert float(gmsd(x, x)) == pytest.approx(0.0, abs=1e-7)
    assert sharpness_ratio(x, x) == pytest.approx(1.0, abs=1e-9)


def test_blur_loses_on_sharpness_gmsd_and_ms_ssim_monotonically():
    x = _photo()
    prev = {"sharp": 1.0, "gmsd": 0.0, "ms": 1.0, "ssim": 1.0}
    for sigma in (0.7, 1.5, 3.0):
        b = _blur(x, sigma)
        cur = {"sharp": sharpness_ratio(b, x), "gmsd": float(gmsd(b, x)), "ms": float(ms_ssim(b, x)),
               "ssim": float(ssim(b, x))}
        assert cur["sharp"] < prev["sharp"]
        assert cur["gmsd"] > prev["gmsd"]
        assert cur["ms"] < prev["ms"]
        assert cur["ssim"] < prev["ssim"]
        prev = cur
    # a strong blur keeps well under half of the reference's gradient energy, as the wave-1 smear did (0.19x)
    assert prev["sharp"] < 0.5
    # PSNR is forgiving to blur where sharpness is not: the blurred image still scores > 20 dB
    assert float(psnr(_blur(x, 3.0), x)) > 20.0


def test_noise_behaves_as_the_literature_says():
    g = torch.Generator().manual_seed(1)
    grey = torch.full((3, 176, 320), 0.5)
    for sd in (0.01, 0.03):
        noisy = grey + sd * torch.randn(grey.shape, generator=g)
        # PSNR of additive white noise: 10·log10(1 / σ²) (no clipping at mid-grey)
        assert float(psnr(noisy, grey)) == pytest.approx(-20 * math.log10(sd), abs=0.1)
    x = _photo()
    prev_gmsd, prev_ssim = 0.0, 1.0
    for sd in (0.01, 0.05, 0.1):
        n = (x + sd * torch.randn(x.shape, generator=g)).clamp(0, 1)
        assert float(gmsd(n, x)) > prev_gmsd  # noise distorts gradients: GMSD grows with σ
        assert float(ssim(n, x)) < prev_ssim
        assert sharpness_ratio(n, x) > 1.0  # noise adds gradient energy: "sharper" than the reference
        prev_gmsd, prev_ssim = float(gmsd(n, x)), float(ssim(n, x))


def test_shift_keeps_sharpness_but_costs_structure():
    x = _photo()
    shifted = torch.roll(x, shifts=(1, 2), dims=(-2, -1))
    inner = (..., slice(8, -8), slice(8, -8))  # leave out the wrapped border
    a, b = shifted[inner], x[inner]
    # a translation moves edges but keeps them: the gradient energy is the same within 2 %
    assert sharpness_ratio(a, b) == pytest.approx(1.0, abs=0.02)
    # single-scale SSIM is sensitive to misregistration; MS-SSIM's coarse scales forgive it (Wang et al. 2003)
    assert float(ssim(a, b)) < 0.9
    assert float(ms_ssim(a, b)) > float(ssim(a, b))
    assert float(gmsd(a, b)) > 0.05


def test_ms_ssim_matches_pytorch_msssim():
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    g = torch.Generator().manual_seed(3)
    x = _photo()[None].repeat(3, 1, 1, 1)
    y = torch.stack([_blur(x[0], 1.0), (x[1] + 0.05 * torch.randn(x[1].shape, generator=g)).clamp(0, 1),
                     torch.rand(x[2].shape, generator=g)])
    ref = pytorch_msssim.ms_ssim(y, x, data_range=1.0, size_average=False)
    ours = ms_ssim(y, x)
    assert ours.shape == (3,)
    assert torch.allclose(ours, ref, atol=2e-4)  # float32 summation order
    # odd sizes (the zero-padded pooling path) too
    xo, yo = x[:2, :, :171, :301], y[:2, :, :171, :301]
    assert torch.allclose(ms_ssim(yo, xo), pytorch_msssim.ms_ssim(yo, xo, data_range=1.0, size_average=False),
                          atol=1e-5)


def test_ms_ssim_small_images_use_fewer_scales():
    x = _photo()[:, :64, :96]
    b = _blur(x, 1.5)
    v = ms_ssim(b, x)  # 64 px fits 3 scales (side > 40)
    assert 0.0 < float(v) < 1.0
    assert float(ms_ssim(b, x, levels=3)) == pytest.approx(float(v))
    with pytest.raises(ValueError, match="scales"):
        ms_ssim(b, x, levels=5)


def _gmsd_matlab_reference(ref: np.ndarray, dist: np.ndarray) -> float:
    """GMSD transcribed from the authors' MATLAB code (``GMSD.m``) with numpy, on 0–255 luma images:
    ``conv2(Y, ones(2)/4, 'same')`` then ``Y(1:2:end, 1:2:end)``, Prewitt ``conv2(..., 'same')``, std2."""

    def conv2_same(a: np.ndarray, k: np.ndarray) -> np.ndarray:
        mh, mw = k.shape
        full = np.zeros((a.shape[0] + mh - 1, a.shape[1] + mw - 1))
        for i in range(mh):  # full 2-D convolution, kernel flipped as MATLAB's conv2
            for j in range(mw):
                full[i:i + a.shape[0], j:j + a.shape[1]] += k[i, j] * a
        r0, c0 = mh // 2, mw // 2  # MATLAB's 'same' keeps full(floor(m/2)+1 : ...)
        return full[r0:r0 + a.shape[0], c0:c0 + a.shape[1]]

    dx = np.array([[1, 0, -1]] * 3, dtype=np.float64) / 3
    maps = []
    for y in (ref, dist):
        y = conv2_same(y, np.ones((2, 2)) / 4)[::2, ::2]
        gx, gy = conv2_same(y, dx), conv2_same(y, dx.T)
        maps.append(np.sqrt(gx**2 + gy**2))
    q = (2 * maps[0] * maps[1] + 170) / (maps[0] ** 2 + maps[1] ** 2 + 170)
    return float(np.std(q, ddof=1))


@pytest.mark.parametrize("size", [(40, 64), (37, 51)])
def test_gmsd_matches_the_matlab_reference(size):
    g = torch.Generator().manual_seed(5)
    x = _photo()[:, 20:20 + size[0], 30:30 + size[1]].double()
    for y in (_blur(x.float(), 1.0).double(), (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64))):
        lum = lambda t: (255 * (0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2])).numpy()  # noqa: E731
        ref = _gmsd_matlab_reference(lum(x), lum(y))
        assert float(gmsd(y, x)) == pytest.approx(ref, rel=1e-9)


def test_gmsd_batched_and_symmetric():
    x = _photo()
    b = _blur(x, 1.0)
    batch = gmsd(torch.stack([b, x]), torch.stack([x, x]))
    assert batch.shape == (2,)
    assert float(batch[1]) == pytest.approx(0.0, abs=1e-7)
    assert float(batch[0]) == pytest.approx(float(gmsd(x, b)), rel=1e-5)


def test_sharpness_ratio_mask_and_constant_reference():
    x = _photo()
    half = x.clone()
    half[:, :, 160:] = _blur(x, 2.0)[:, :, 160:]
    left = torch.zeros(176, 320, dtype=torch.bool)
    left[:, :150] = True
    assert sharpness_ratio(half, x, mask=left) == pytest.approx(1.0, abs=1e-6)  # the untouched half
    assert sharpness_ratio(half, x, mask=~left) < 0.8
    assert math.isnan(sharpness_ratio(x, torch.full_like(x, 0.3)))
    assert gradient_magnitude(x).shape == (174, 318)


def test_depth_errors_exact_on_synthetic_cases():
    gt = torch.linspace(1.0, 20.0, 48 * 64, dtype=torch.float64).reshape(48, 64)
    assert depth_errors(gt, gt) == {"abs_rel": 0.0, "delta1": 1.0, "pixels": 48 * 64}
    r = depth_errors(1.1 * gt, gt)
    assert r["abs_rel"] == pytest.approx(0.1, abs=1e-12)
    assert r["delta1"] == 1.0
    r = depth_errors(2.0 * gt, gt)
    assert r["abs_rel"] == pytest.approx(1.0, abs=1e-12)
    assert r["delta1"] == 0.0
    # median scaling removes a global scale (and says nothing about it)
    r = depth_errors(2.0 * gt, gt, align="median")
    assert r["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert r["delta1"] == 1.0
    # half the pixels 30 % too far: AbsRel 0.15, δ1 0.5 (1.3 > 1.25)
    pred = gt.clone()
    pred[:24] *= 1.3
    r = depth_errors(pred, gt)
    assert r["abs_rel"] == pytest.approx(0.15, abs=1e-12)
    assert r["delta1"] == pytest.approx(0.5)
    # invalid pixels (sky = inf, empty render = 0, NaN) and masked pixels are left out
    gt2, pred2 = gt.clone(), (1.1 * gt).clone()
    gt2[0] = math.inf
    pred2[1] = 0.0
    pred2[2] = math.nan
    mask = torch.ones(48, 64, dtype=torch.bool)
    mask[3] = False
    r = depth_errors(pred2, gt2, mask=mask)
    assert r["pixels"] == 44 * 64
    assert r["abs_rel"] == pytest.approx(0.1, abs=1e-12)
    # batched maps are median-scaled one by one
    r = depth_errors(torch.stack([2 * gt, 3 * gt]), torch.stack([gt, gt]), align="median")
    assert r["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    nothing = depth_errors(torch.zeros(4, 4), torch.ones(4, 4))
    assert nothing["pixels"] == 0 and math.isnan(nothing["abs_rel"])


def test_coverage():
    a = torch.zeros(2, 10, 10)
    a[0, :5] = 0.5  # exactly at the threshold counts
    a[1, :, :3] = 0.49
    assert coverage(a) == pytest.approx(50 / 200)
    assert coverage(torch.ones(3, 4)) == 1.0
