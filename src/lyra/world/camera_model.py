"""A camera model: lens, sensor and processing that turn linear scene radiance into a photograph.

One module for the photo-style worlds (:func:`develop`, applied by :func:`lyra.world.sample.render_samples`)
and for the depth trainer's photometric augmentation (:mod:`lyra.train.recipes.depth_augment` uses
:func:`gaussian_blur`, :func:`vignette_falloff` and :func:`sensor_noise`).

Order in :func:`develop` (a camera's order): lens — **defocus** (thin-lens circle of confusion, grows with
``|1 − z_focus / z|``), **motion blur** (a straight camera-shake streak), **vignetting** ``1 − v·r²``; sensor —
**exposure** (auto-exposure on the example's input view: its geometric-mean luminance maps to ``KEY · 2^ev``,
``KEY`` = 0.12: about 0.44 after the tone curve),
**noise** (shot noise ∝ √signal plus read noise); processing — **white balance** error (per-channel gains),
a filmic **tone curve** (ACES fit) and the sRGB transfer function, the camera's **picture style** (saturation and an
S-shaped contrast curve about mid-grey, as phone cameras apply), clamping, **JPEG** compression.

Images are ``[N, 3, H, W]``; radiance is linear and may exceed 1; developed images are in [0, 1] (sRGB).
Every random draw comes from a seed or a ``torch.Generator`` (CPU), so a seed gives the same photo on every device.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: Luminance weights of linear Rec. 709 RGB.
LUMA = (0.2126, 0.7152, 0.0722)
#: Auto-exposure target of the geometric-mean luminance (before the tone curve).
KEY = 0.12


# ---------------------------------------------------------------------------------------- primitives
def gaussian_blur(image: Tensor, sigma: Tensor) -> Tensor:
    """Blur each image of ``[B, C, H, W]`` with its own σ ``[B]`` (pixels; 0 = unchanged), separable, reflect pad."""
    B, C, H, W = image.shape
    radius = max(1, int(math.ceil(3 * float(sigma.max()))))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=image.device)
    s = sigma.to(image.device).clamp_min(1e-3)[:, None]
    k = torch.exp(-0.5 * (t[None] / s) ** 2)
    k = k / k.sum(1, keepdim=True)
    k = torch.where(sigma.to(image.device)[:, None] > 0, k, (t[None] == 0).float())
    k = k.repeat_interleave(C, 0)  # [B*C, K]
    x = image.reshape(1, B * C, H, W)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k[:, None, None, :], groups=B * C)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k[:, None, :, None], groups=B * C)
    return x.reshape(B, C, H, W)


def vignette_falloff(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """Squared radius ``r² [H, W]`` from the image centre, 1 at the corners (vignetting is ``1 − v·r²``)."""
    yy = torch.linspace(-1, 1, height, device=device)[:, None]
    xx = torch.linspace(-1, 1, width, device=device)[None] * (width / height)
    return (yy.square() + xx.square()) / (1 + (width / height) ** 2)


def sensor_noise(x: Tensor, shot: Tensor, read: Tensor, g: torch.Generator) -> Tensor:
    """``x + n·sqrt(shot²·x + read²)`` with ``n ~ N(0, 1)`` drawn from ``g`` on the CPU; ``shot``/``read`` broadcast
    to ``x`` (e.g. ``[B, 1, 1, 1]``); ``x`` ≥ 0 in exposed units (mid-grey 0.18). Not clamped."""
    noise = torch.randn(x.shape, generator=g).to(x.device)
    return x + noise * torch.sqrt(shot.square() * x + read.square())


def luminance(x: Tensor) -> Tensor:
    """Luminance ``[..., H, W]`` of linear RGB ``[..., 3, H, W]``."""
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype)
    return (x * w[:, None, None]).sum(-3)


def exposure_gain(radiance: Tensor, ev: float = 0.0, key: float = KEY) -> float:
    """Gain that maps the geometric-mean luminance of ``radiance`` ``[3, H, W]`` to ``key · 2^ev``."""
    lum = luminance(radiance.float()).clamp_min(1e-4)
    return float(key * 2.0**ev / torch.exp(torch.log(lum).mean()))


def tone_curve(x: Tensor) -> Tensor:
    """Filmic tone curve (Narkowicz's ACES fit) then the sRGB transfer function: linear ≥ 0 → [0, 1]."""
    x = x.clamp_min(0)
    y = (x * (2.51 * x + 0.03) / (x * (2.43 * x + 0.59) + 0.14)).clamp(0, 1)
    return torch.where(y <= 0.0031308, 12.92 * y, 1.055 * y.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def jpeg_roundtrip(image: Tensor, quality: int) -> Tensor:
    """Each image of ``[N, 3, H, W]`` in [0, 1] encoded as a JPEG of ``quality`` (1–95, 4:2:0) and decoded."""
    import numpy as np
    from PIL import Image

    out = []
    arr = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    for a in arr:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        out.append(torch.from_numpy(np.asarray(Image.open(buf).convert("RGB")).copy()))
    return (torch.stack(out).permute(0, 3, 1, 2).float() / 255).to(image.device, image.dtype)


def defocus(image: Tensor, depth: Tensor, focus: float, coc_inf: float) -> Tensor:
    """Thin-lens defocus: blur σ = ``coc_inf · |1 − focus / z|`` pixels (``coc_inf``: σ at infinite depth;
    sky ``inf`` included), at most 4 px. ``image [N, 3, H, W]``, ``depth [N, H, W]``. The blur is gathered from
    a stack of σ = 1, 2, 4 px images (the last two at half and quarter resolution), interpolated per pixel."""
    N, C, H, W = image.shape
    sigma = (coc_inf * (1 - focus / depth.clamp_min(1e-3)).abs()).clamp(0, 4.0)  # [N, H, W]
    ones = torch.ones(N)
    levels = [image, gaussian_blur(image, ones)]
    for f in (2, 4):
        small = F.avg_pool2d(image, f, ceil_mode=True)
        small = gaussian_blur(small, ones * 0.9)  # about σ = f px at full resolution with the pooling
        levels.append(F.interpolate(small, size=(H, W), mode="bilinear", align_corners=False))
    # level index: σ in [0, 1] → [0, 1] linearly, then log2 σ + 1 (σ = 2 → 2, 4 → 3)
    lv = torch.where(sigma <= 1, sigma, torch.log2(sigma.clamp_min(1)) + 1)[:, None]  # [N, 1, H, W]
    out = torch.zeros_like(image)
    for i, im in enumerate(levels):
        w = (1 - (lv - i).abs()).clamp_min(0)
        out = out + w * im
    return out


def motion_blur(image: Tensor, length: float, angle: float) -> Tensor:
    """A straight streak of ``length`` pixels at ``angle`` radians (rotational camera shake: the same for every
    depth) over ``[N, C, H, W]``: the mean of evenly spaced, bilinearly shifted copies."""
    if length <= 0:
        return image
    N, C, H, W = image.shape
    n = max(2, int(math.ceil(length)) + 1)
    ys = torch.linspace(-1, 1, H, device=image.device)
    xs = torch.linspace(-1, 1, W, device=image.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    out = torch.zeros_like(image)
    for t in torch.linspace(-length / 2, length / 2, n).tolist():
        dx, dy = t * math.cos(angle) * 2 / max(W - 1, 1), t * math.sin(angle) * 2 / max(H - 1, 1)
        grid = torch.stack([gx + dx, gy + dy], -1)[None].expand(N, H, W, 2)
        out = out + F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out / n


# ---------------------------------------------------------------------------------------- the camera
@dataclass(frozen=True)
class PhotoCamera:
    """One camera's settings for :func:`develop` (drawn per example by :func:`draw_camera`).

    ``ev``: exposure compensation (stops) of the auto-exposure; ``wb``: per-channel gains (white-balance error);
    ``vignette``: ``v`` of ``1 − v·r²``; ``shot``/``read``: noise standard deviations (exposed units);
    ``jpeg``: JPEG quality (0 = none); ``focus``: focus distance (m) and ``coc_inf``: defocus σ (px) at infinity
    (0 = sharp); ``blur_len``/``blur_angle``: motion-blur streak (px, radians); ``seed``: the noise seed;
    ``saturation`` (1 = as developed) and ``contrast`` (0 = none, 1 = a full smoothstep about 0.5): picture style.
    """

    ev: float = 0.0
    wb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    vignette: float = 0.0
    shot: float = 0.0
    read: float = 0.0
    jpeg: int = 0
    focus: float = 1.0
    coc_inf: float = 0.0
    blur_len: float = 0.0
    blur_angle: float = 0.0
    seed: int = 0
    saturation: float = 1.0
    contrast: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def draw_camera(seed: int, focus: float) -> PhotoCamera:
    """Camera settings drawn from ``seed`` (``focus``: the scene's centre depth, jittered): exposure ±1.3 stops,
    a warm/cool white-balance error, vignetting up to 0.4, noise, JPEG quality 55–95 for 70 % of the
    examples, defocus (σ 0.5–2.5 px at infinity) for 30 % and motion blur (1–5 px) for 25 %, saturation 0.9–1.35
    and contrast 0–0.6 (picture style)."""
    g = torch.Generator().manual_seed(int(seed))

    def u(a: float = 0.0, b: float = 1.0) -> float:
        return a + (b - a) * float(torch.rand((), generator=g, dtype=torch.float64))

    def n(s: float) -> float:
        return s * float(torch.randn((), generator=g, dtype=torch.float64))

    ev = max(-1.3, min(1.3, n(0.5)))
    t = n(0.08)
    wb = (math.exp(t + n(0.03)), math.exp(n(0.02)), math.exp(-t + n(0.03)))
    vignette, shot, read = u(0.0, 0.4), u(0.003, 0.03), u(0.001, 0.01)
    jpeg = int(u(55, 95)) if u() < 0.7 else 0
    defocus_on, f_jit, coc = u() < 0.3, math.exp(u(math.log(0.8), math.log(1.25))), u(0.5, 2.5)
    blur_on, blen, bang = u() < 0.25, u(1.0, 5.0), u(0.0, math.pi)
    seed_noise = int(torch.randint(0, 2**31 - 1, (), generator=g))
    return PhotoCamera(ev, wb, vignette, shot, read, jpeg, focus * f_jit, coc if defocus_on else 0.0,
                       blen if blur_on else 0.0, bang, seed_noise, u(0.9, 1.35), u(0.0, 0.6))


def develop(radiance: Tensor, depth: Tensor, cam: PhotoCamera, key_frame: int = 0) -> Tensor:
    """Photographs ``[N, 3, H, W]`` in [0, 1] of linear ``radiance`` ``[N, 3, H, W]`` (z-``depth`` ``[N, H, W]``,
    ``inf`` = sky) through camera ``cam`` (see the module doc). The exposure is metered on frame ``key_frame``
    and kept for all frames (one camera setting per example); the noise differs per frame."""
    N, _, H, W = radiance.shape
    x = radiance.float()
    if cam.coc_inf > 0:
        x = defocus(x, depth, cam.focus, cam.coc_inf)
    if cam.blur_len > 0:
        x = motion_blur(x, cam.blur_len, cam.blur_angle)
    if cam.vignette > 0:
        x = x * (1 - cam.vignette * vignette_falloff(H, W, x.device))
    x = x * exposure_gain(x[key_frame], cam.ev)
    if cam.shot > 0 or cam.read > 0:
        g = torch.Generator().manual_seed(cam.seed)
        x = sensor_noise(x.clamp_min(0), torch.tensor(cam.shot, device=x.device),
                         torch.tensor(cam.read, device=x.device), g)
    x = x * torch.tensor(cam.wb, device=x.device)[:, None, None]
    x = tone_curve(x).clamp(0, 1)
    if cam.saturation != 1.0:
        grey = luminance(x)[:, None]
        x = (grey + (x - grey) * cam.saturation).clamp(0, 1)
    if cam.contrast > 0:
        x = torch.lerp(x, x * x * (3 - 2 * x), cam.contrast)
    if cam.jpeg > 0:
        x = jpeg_roundtrip(x, cam.jpeg)
    return x.to(radiance.dtype).contiguous()
