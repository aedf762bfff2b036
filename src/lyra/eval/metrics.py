"""Image metrics shared by every model here: PSNR and SSIM on images in [0, 1].

Conventions (LYRA_FACTS, "Metrics as released"): PSNR on [0, 1]; SSIM with a Gaussian window of
11 × 11 pixels and σ = 1.5, constants K1 = 0.01, K2 = 0.03 (Wang et al. 2004). Both take images
``[..., C, H, W]`` and return one value per leading index ``[...]`` (for a video ``[T, 3, H, W]``:
one value per frame). Average per frame, then per scene, then over scenes, as the official tables.

SSIM is evaluated on the *valid* window positions (no padding, the border of 5 pixels is left out),
the convention of scikit-image's ``structural_similarity(gaussian_weights=True,
use_sample_covariance=False)`` and of torchmetrics; ``padding="same"`` gives the zero-padded variant
of the 3DGS code base instead. The channel SSIM maps are averaged (channels weigh equally).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_window", "mean_finite", "psnr", "psnr_pooled", "ssim", "ssim_map"]


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB, one value per image.

    Args:
        pred, target: ``[..., C, H, W]`` (same shape), values nominally in ``[0, data_range]``.
        data_range: the peak value (1.0 for images in [0, 1]).

    Returns:
        ``[...]`` float32: ``10·log10(data_range² / MSE)``, ``+inf`` where the images are identical.
    """
    _check_pair(pred, target)
    diff = pred.float() - target.float()
    mse = diff.square().mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(data_range**2 / mse)


def psnr_pooled(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> float:
    """One PSNR (dB, peak 1) of the MSE pooled over all elements (or the pixels where ``mask`` is true), in
    float64 (:func:`psnr` gives one value per image instead).

    ``pred``/``target`` ``[..., C, H, W]`` in [0, 1]; ``mask`` ``[..., H, W]`` bool. ``nan`` for an
    empty mask, ``inf`` for identical inputs.
    """
    err = (pred.double() - target.double()).square()
    if mask is not None:
        w = mask.unsqueeze(-3).expand_as(err).double()
        n = float(w.sum())
        if n == 0:
            return float("nan")
        mse = float((err * w).sum()) / n
    else:
        mse = float(err.mean())
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Tensor:
    """Normalised 1-D Gaussian weights ``[size]``, centred (odd ``size``), summing to 1."""
    if size % 2 != 1 or size < 1:
        raise ValueError(f"window size must be odd and positive, got {size}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def ssim_map(pred: Tensor, target: Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
             k1: float = 0.01, k2: float = 0.03, padding: str = "valid") -> Tensor:
    """Local SSIM values ``[..., C, H', W']`` (``H' = H - window + 1`` for ``padding="valid"``, else H).

    Computed in float32 (float64 if the inputs are float64) with a separable Gaussian window.
    """
    _check_pair(pred, target)
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    *lead, c, h, w = pred.shape
    if padding == "valid" and (h < window or w < window):
        raise ValueError(f"images of {h}×{w} are smaller than the {window}×{window} SSIM window")
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    x = pred.to(dtype).reshape(-1, c, h, w)
    y = target.to(dtype).reshape(-1, c, h, w)
    g = gaussian_window(window, sigma, dtype=dtype, device=x.device)
    pad = 0 if padding == "valid" else window // 2

    def blur(t: Tensor) -> Tensor:
        t = F.conv2d(t, g.view(1, 1, -1, 1).expand(c, 1, window, 1), padding=(pad, 0), groups=c)
        return F.conv2d(t, g.view(1, 1, 1, -1).expand(c, 1, 1, window), padding=(0, pad), groups=c)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x * mu_x
    syy = blur(y * y) - mu_y * mu_y
    sxy = blur(x * y) - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    out = num / den
    return out.reshape(*lead, c, out.shape[-2], out.shape[-1])


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, padding: str = "valid") -> Tensor:
    """Structural similarity, one value per image ``[...]`` for inputs ``[..., C, H, W]`` (see module doc).

    float32 (float64 for float64 inputs).
    """
    return ssim_map(pred, target, data_range, window, sigma, k1, k2, padding).mean(dim=(-3, -2, -1))


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() < 3:
        raise ValueError(f"expected images [..., C, H, W], got shape {tuple(pred.shape)}")


def mean_finite(values: Tensor) -> float:
    """Mean of the finite entries (PSNR of identical images is +inf); NaN if none is finite."""
    v = values[torch.isfinite(values)]
    return float(v.mean()) if v.numel() else math.nan
