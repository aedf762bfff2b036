"""Image and depth metrics shared by every evaluator here (one implementation each).

Image metrics take images in [0, 1]:

* :func:`psnr`, :func:`ssim` — fidelity (below);
* :func:`ms_ssim` — multi-scale SSIM (Wang, Simoncelli & Bovik 2003), the five-scale weights of the paper;
* :func:`gmsd` — gradient magnitude similarity deviation (Xue, Zhang, Mou & Bovik, "Gradient Magnitude
  Similarity Deviation: A Highly Efficient Perceptual Image Quality Index", IEEE TIP 23(2), 2014): a
  non-learned full-reference perceptual metric, 0 for identical images, larger is worse;
* :func:`sharpness_ratio` — mean gradient magnitude of the prediction over that of the reference on the same
  pixels (1.0 = as sharp; a blurred prediction scores below 1, noise or hard hole edges above);
* :func:`depth_errors` — AbsRel and δ < 1.25 of a depth map against the reference (optionally after median
  scaling, for depth known only up to scale);
* :func:`coverage` — the fraction of pixels a render covers (alpha ≥ 0.5);
* :func:`delta_e2000` — mean CIEDE2000 colour difference ΔE00 of sRGB images (below).

Conventions (LYRA_FACTS, "Metrics as released"): PSNR on [0, 1]; SSIM with a Gaussian window of
11 × 11 pixels and σ = 1.5, constants K1 = 0.01, K2 = 0.03 (Wang et al. 2004). Both take images
``[..., C, H, W]`` and return one value per leading index ``[...]`` (for a video ``[T, 3, H, W]``:
one value per frame). Average per frame, then per scene, then over scenes, as the official tables.

SSIM is evaluated on the *valid* window positions (no padding, the border of 5 pixels is left out),
the convention of scikit-image's ``structural_similarity(gaussian_weights=True,
use_sample_covariance=False)`` and of torchmetrics; ``padding="same"`` gives the zero-padded variant
of the 3DGS code base instead. The channel SSIM maps are averaged (channels weigh equally).

CIEDE2000 (:func:`delta_e2000`): images are read as sRGB (IEC 61966-2-1 transfer curve, D65 white),
converted to CIE L*a*b* (D65 reference white ``X_n, Y_n, Z_n = 0.95047, 1, 1.08883``) and compared with
the CIEDE2000 formula as Sharma, Wu & Dalal (2005) give it (k_L = k_C = k_H = 1), per pixel; the result
is the mean over pixels (one value per image). ΔE ≈ 1 is about a just-noticeable difference; ≤ 3 is
hard to see side by side.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MS_SSIM_WEIGHTS", "ciede2000", "coverage", "delta_e2000", "delta_e2000_map", "depth_errors",
           "gaussian_window", "gmsd", "gradient_magnitude", "luminance", "mean_finite", "ms_ssim", "psnr",
           "psnr_pooled", "sharpness_ratio", "srgb_to_lab", "ssim", "ssim_map"]


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
    return _ssim_cs_maps(pred, target, data_range, window, sigma, k1, k2, padding)[0]


def _ssim_cs_maps(pred: Tensor, target: Tensor, data_range: float, window: int, sigma: float, k1: float, k2: float,
                  padding: str) -> tuple[Tensor, Tensor]:
    """The SSIM map and the contrast-structure map ``cs = (2σxy + C2) / (σx² + σy² + C2)``, both
    ``[..., C, H', W']``."""
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
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    out = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * cs
    shape = (*lead, c, out.shape[-2], out.shape[-1])
    return out.reshape(shape), cs.reshape(shape)


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, padding: str = "valid") -> Tensor:
    """Structural similarity, one value per image ``[...]`` for inputs ``[..., C, H, W]`` (see module doc).

    float32 (float64 for float64 inputs).
    """
    return ssim_map(pred, target, data_range, window, sigma, k1, k2, padding).mean(dim=(-3, -2, -1))


#: MS-SSIM's exponents of the five scales (Wang, Simoncelli & Bovik 2003, fitted to human judgements).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(pred: Tensor, target: Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
            k1: float = 0.01, k2: float = 0.03, levels: int | None = None) -> Tensor:
    """Multi-scale SSIM, one value per image ``[...]`` for inputs ``[..., C, H, W]`` (1 for identical images).

    The definition of Wang, Simoncelli & Bovik (2003) as the reference implementation ``pytorch-msssim``
    computes it (the tests compare the two): at each scale the per-channel mean of the contrast-structure map
    (SSIM's ``cs`` term, Gaussian 11×11, σ 1.5, valid positions), clamped at 0, raised to the scale's weight;
    the last scale uses the full SSIM; between scales a 2×2 average pool (zero padding on odd sides).
    Channels are averaged after the product over scales.

    Five scales need the smaller side > ``(window − 1)·2⁴`` = 160 pixels. For smaller images ``levels``
    defaults to the most that fit, with the first weights renormalised to sum to 1 (the scores of different
    sizes are then not comparable; the reports say which size they ran at).

    Raises:
        ValueError: images smaller than the window, or ``levels`` that do not fit.
    """
    _check_pair(pred, target)
    side = min(pred.shape[-2:])
    fit = 1
    while fit < len(MS_SSIM_WEIGHTS) and side > (window - 1) * 2**fit:
        fit += 1
    levels = fit if levels is None else levels
    if not 1 <= levels <= fit:
        raise ValueError(f"MS-SSIM with {levels} scales needs the smaller side > {(window - 1) * 2 ** (levels - 1)} "
                         f"pixels, got {side}")
    if side < window:
        raise ValueError(f"images of {tuple(pred.shape[-2:])} are smaller than the {window}×{window} SSIM window")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], dtype=torch.float64)
    weights = (weights / weights.sum()).tolist()
    *lead, c, h, w = pred.shape
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    x = pred.to(dtype).reshape(-1, c, h, w)
    y = target.to(dtype).reshape(-1, c, h, w)
    value = torch.ones(x.shape[0], c, dtype=dtype, device=x.device)
    for i, wt in enumerate(weights):
        s_map, cs_map = _ssim_cs_maps(x, y, data_range, window, sigma, k1, k2, "valid")
        term = (s_map if i == levels - 1 else cs_map).mean(dim=(-2, -1)).clamp_min(0)
        value = value * term**wt
        if i < levels - 1:
            pad = (x.shape[-2] % 2, x.shape[-1] % 2)
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    return value.mean(dim=-1).reshape(lead)


def luminance(img: Tensor) -> Tensor:
    """Luma ``[..., H, W]`` of RGB images ``[..., 3, H, W]`` (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B, the
    weights of MATLAB's ``rgb2gray`` that the GMSD reference code uses). One-channel images pass through."""
    if img.shape[-3] == 1:
        return img[..., 0, :, :]
    if img.shape[-3] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {img.shape[-3]}")
    w = torch.tensor([0.299, 0.587, 0.114], dtype=img.dtype, device=img.device)
    return (img * w.view(3, 1, 1)).sum(dim=-3)


def _prewitt_magnitude(y: Tensor, padding: int) -> Tensor:
    """Gradient magnitude ``[N, H', W']`` of ``y`` ``[N, H, W]`` with the Prewitt operator ``[1 0 −1]/3`` of GMSD
    (zero padding ``padding``: 1 keeps the size, 0 gives the valid ``H−2 × W−2`` positions)."""
    k = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=y.dtype, device=y.device) / 3.0
    kernels = torch.stack([k, k.t()])[:, None]  # [2, 1, 3, 3]: d/dx, d/dy
    g = F.conv2d(y[:, None], kernels, padding=padding)
    return g.square().sum(dim=1).sqrt()


def gmsd(pred: Tensor, target: Tensor, data_range: float = 1.0, c: float = 170.0) -> Tensor:
    """Gradient magnitude similarity deviation (Xue et al. 2014), one value per image ``[...]`` for inputs
    ``[..., C, H, W]`` (RGB is reduced to BT.601 luma first). 0 for identical images; larger is worse.

    As the authors' MATLAB code: both images on a 0–255 scale (``data_range`` maps to 255), a 2×2 average with
    stride 2 (zero padding of an odd last row/column), Prewitt gradients ``[1 0 −1]/3`` with zero padding
    (``conv2(..., 'same')``), the similarity map ``(2 m₁ m₂ + c) / (m₁² + m₂² + c)`` with ``c = 170``, and its
    standard deviation (normalised by N − 1, MATLAB's ``std2``).
    """
    _check_pair(pred, target)
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    lead = pred.shape[:-3]
    scale = 255.0 / data_range
    ys = []
    for img in (pred, target):
        y = luminance(img.to(dtype)) * scale
        y = y.reshape(-1, 1, *y.shape[-2:])
        pad = (y.shape[-2] % 2, y.shape[-1] % 2)
        y = F.avg_pool2d(F.pad(y, (0, pad[1], 0, pad[0])), kernel_size=2)
        ys.append(_prewitt_magnitude(y[:, 0], padding=1))
    m1, m2 = ys
    q = (2 * m1 * m2 + c) / (m1.square() + m2.square() + c)
    return q.flatten(1).std(dim=1, unbiased=True).reshape(lead)


def gradient_magnitude(img: Tensor) -> Tensor:
    """Luma gradient magnitude ``[..., H−2, W−2]`` (Prewitt ``[1 0 −1]/3``, valid positions only, so the image
    border adds no edge) of images ``[..., C, H, W]``; the measure of :func:`sharpness_ratio`."""
    y = luminance(img.float() if img.dtype != torch.float64 else img)
    lead = y.shape[:-2]
    g = _prewitt_magnitude(y.reshape(-1, *y.shape[-2:]), padding=0)
    return g.reshape(*lead, *g.shape[-2:])


def sharpness_ratio(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> float:
    """Mean luma gradient magnitude of ``pred`` over that of ``target`` on the same pixels (1.0 = as sharp).

    Args:
        pred, target: ``[..., C, H, W]`` in [0, 1] (same shape). The sums run over every image of the batch
            (a ratio of totals, so flat frames with almost no gradient do not dominate).
        mask: optional ``[..., H, W]`` bool, the pixels to compare (e.g. disoccluded ones).

    Returns:
        ``Σ|∇pred| / Σ|∇target|`` over the (masked) valid positions; NaN where the target has no gradient (a mean
        magnitude below 1e-6, i.e. flat up to float rounding) or no pixel is compared.
    """
    _check_pair(pred, target)
    gp, gt = gradient_magnitude(pred), gradient_magnitude(target)
    if mask is not None:
        m = mask.bool()[..., 1:-1, 1:-1].expand_as(gp)
        gp, gt = gp[m], gt[m]
    if gt.numel() == 0 or float(gt.double().mean()) < 1e-6:
        return math.nan
    return float(gp.double().sum() / gt.double().sum())


def depth_errors(pred: Tensor, target: Tensor, mask: Tensor | None = None, align: str = "none") -> dict[str, float]:
    """AbsRel and δ < 1.25 of depth ``pred`` against ``target`` (both ``[..., H, W]``, z-depth).

    Valid pixels: ``target`` finite and > 0, ``pred`` finite and > 0, and ``mask`` where given.

    Args:
        align: ``"none"`` (metric depth, compared as it is) or ``"median"``: each map ``[H, W]`` of ``pred`` is
            scaled by ``median(target) / median(pred)`` over its valid pixels first (the convention for depth
            known up to scale, e.g. a monocular estimate).

    Returns:
        ``abs_rel`` (mean ``|pred − target| / target``), ``delta1`` (fraction with ``max(pred/target,
        target/pred) < 1.25``) and ``pixels`` (the valid count); NaN metrics if no pixel is valid.
    """
    if pred.shape != target.shape:
        raise ValueError(f"depth shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if align not in ("none", "median"):
        raise ValueError(f"align must be 'none' or 'median', got {align!r}")
    p = pred.double().reshape(-1, *pred.shape[-2:])
    t = target.double().reshape(-1, *target.shape[-2:])
    valid = torch.isfinite(t) & (t > 0) & torch.isfinite(p) & (p > 0)
    if mask is not None:
        valid &= mask.bool().expand(pred.shape).reshape(valid.shape)
    if align == "median":
        p = p.clone()
        for i in range(p.shape[0]):
            v = valid[i]
            if bool(v.any()):
                p[i] = p[i] * (t[i][v].median() / p[i][v].median())
    pv, tv = p[valid], t[valid]
    if pv.numel() == 0:
        return {"abs_rel": math.nan, "delta1": math.nan, "pixels": 0}
    ratio = torch.maximum(pv / tv, tv / pv)
    return {"abs_rel": float(((pv - tv).abs() / tv).mean()), "delta1": float((ratio < 1.25).double().mean()),
            "pixels": int(pv.numel())}


def coverage(alpha: Tensor, threshold: float = 0.5) -> float:
    """Fraction of pixels whose accumulated opacity ``alpha`` (``[..., H, W]`` in [0, 1]) is ≥ ``threshold``."""
    return float((alpha >= threshold).float().mean()) if alpha.numel() else math.nan


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() < 3:
        raise ValueError(f"expected images [..., C, H, W], got shape {tuple(pred.shape)}")


def mean_finite(values: Tensor) -> float:
    """Mean of the finite entries (PSNR of identical images is +inf); NaN if none is finite."""
    v = values[torch.isfinite(values)]
    return float(v.mean()) if v.numel() else math.nan


# ---------------------------------------------------------------------------------------- colour
#: sRGB (linear) → CIE XYZ, D65 (IEC 61966-2-1).
_SRGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
                (0.2126729, 0.7151522, 0.0721750),
                (0.0193339, 0.1191920, 0.9503041))
#: D65 reference white of L*a*b* (Y normalised to 1).
_WHITE_D65 = (0.95047, 1.0, 1.08883)


def srgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB ``[..., 3, H, W]`` in [0, 1] (clamped) → CIE L*a*b* (D65) ``[..., 3, H, W]`` (L in [0, 100]).

    float32 (float64 for float64 inputs).
    """
    if rgb.dim() < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"expected sRGB images [..., 3, H, W], got shape {tuple(rgb.shape)}")
    x = rgb.clamp(0.0, 1.0)
    x = x.double() if x.dtype == torch.float64 else x.float()
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).pow(2.4))
    m = torch.tensor(_SRGB_TO_XYZ, dtype=lin.dtype, device=lin.device)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
    xyz = xyz / torch.tensor(_WHITE_D65, dtype=lin.dtype, device=lin.device).view(3, 1, 1)
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = torch.where(xyz > eps, xyz.clamp_min(eps).pow(1.0 / 3.0), (kappa * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def ciede2000(lab1: Tensor, lab2: Tensor, k_l: float = 1.0, k_c: float = 1.0, k_h: float = 1.0) -> Tensor:
    """CIEDE2000 colour difference of L*a*b* triples ``[..., 3]`` → ``[...]`` (Sharma, Wu & Dalal 2005).

    Follows the paper's notes: hue angles in [0°, 360°), ``h' = 0`` where ``a' = b = 0``; where one of the
    two chromas is zero the hue difference is 0 and the mean hue is the sum of the hues. Symmetric.
    """
    if lab1.shape != lab2.shape or lab1.shape[-1] != 3:
        raise ValueError(f"expected two L*a*b* tensors [..., 3] of one shape, got {tuple(lab1.shape)} "
                         f"and {tuple(lab2.shape)}")
    dt = torch.float64 if torch.float64 in (lab1.dtype, lab2.dtype) else torch.float32
    l1, a1, b1 = lab1.to(dt).unbind(-1)
    l2, a2, b2 = lab2.to(dt).unbind(-1)
    c_bar = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c7 = c_bar.pow(7)
    g = 0.5 * (1.0 - torch.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)

    def hue(ap: Tensor, b: Tensor) -> Tensor:
        h = torch.rad2deg(torch.atan2(b, ap)) % 360.0
        return torch.where((ap == 0) & (b == 0), torch.zeros_like(h), h)

    h1p, h2p = hue(a1p, b1), hue(a2p, b2)
    chroma0 = (c1p * c2p) == 0
    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = torch.where(dh > 180.0, dh - 360.0, torch.where(dh < -180.0, dh + 360.0, dh))
    dh = torch.where(chroma0, torch.zeros_like(dh), dh)
    d_hue = 2.0 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2.0)

    l_bar = 0.5 * (l1 + l2)
    cp_bar = 0.5 * (c1p + c2p)
    hsum = h1p + h2p
    far = (h1p - h2p).abs() > 180.0
    h_bar = torch.where(far, torch.where(hsum < 360.0, (hsum + 360.0) / 2.0, (hsum - 360.0) / 2.0), hsum / 2.0)
    h_bar = torch.where(chroma0, hsum, h_bar)
    t = (1.0 - 0.17 * torch.cos(torch.deg2rad(h_bar - 30.0)) + 0.24 * torch.cos(torch.deg2rad(2.0 * h_bar))
         + 0.32 * torch.cos(torch.deg2rad(3.0 * h_bar + 6.0)) - 0.20 * torch.cos(torch.deg2rad(4.0 * h_bar - 63.0)))
    d_theta = 30.0 * torch.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    cp7 = cp_bar.pow(7)
    r_c = 2.0 * torch.sqrt(cp7 / (cp7 + 25.0**7))
    l50 = (l_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l50 / torch.sqrt(20.0 + l50)
    s_c = 1.0 + 0.045 * cp_bar
    s_h = 1.0 + 0.015 * cp_bar * t
    r_t = -torch.sin(torch.deg2rad(2.0 * d_theta)) * r_c
    tl, tc, th = dl / (k_l * s_l), dc / (k_c * s_c), d_hue / (k_h * s_h)
    return torch.sqrt((tl * tl + tc * tc + th * th + r_t * tc * th).clamp_min(0.0))


def delta_e2000_map(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel CIEDE2000 ΔE ``[..., H, W]`` between sRGB images ``[..., 3, H, W]`` in [0, 1]."""
    _check_pair(pred, target)
    lab_p = srgb_to_lab(pred).movedim(-3, -1)
    lab_t = srgb_to_lab(target).movedim(-3, -1)
    return ciede2000(lab_p, lab_t)


def delta_e2000(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean CIEDE2000 ΔE per image ``[...]`` between sRGB images ``[..., 3, H, W]`` in [0, 1].

    ``mask`` (``[..., H, W]`` or broadcastable, bool or weights): average over those pixels only (NaN for an
    image whose mask is empty).
    """
    de = delta_e2000_map(pred, target)
    if mask is None:
        return de.mean(dim=(-2, -1))
    w = mask.to(de.dtype).expand_as(de)
    total = w.sum(dim=(-2, -1))
    return torch.where(total > 0, (de * w).sum(dim=(-2, -1)) / total.clamp_min(1e-12), torch.nan)
