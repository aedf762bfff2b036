"""Textures from real photographs for the photo-style worlds (:mod:`lyra.world.photo`).

The bank is a row of square crops of CC0 photographs shipped with lyra (``lyra/assets/photo_textures``:
``atlas.jpg`` + ``bank.json`` + ``NOTICE.md``; how it was made: ``scripts/make_photo_textures.py``), plus three
high-dynamic-range **image skies** (the sky hemispheres of CC0 panoramas, SDR JPEG + gain map: :func:`image_sky`).
Nothing outside the package is read at run time.

Each texture is decoded from sRGB to linear RGB and divided by its mean luminance (mean luminance 1: a
material's colour A sets the albedo level, the photo its detail and colour variation), then stored as a
mip pyramid (``SIZE``, ``SIZE/2`` … 1 texels, box-filtered). :func:`sample_photo` reads it with mirrored
repetition (no seams) and trilinear filtering by the pixel footprint (the same band-limiting contract as the
procedural patterns of :mod:`lyra.world.textures`).
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources

import torch
from torch import Tensor

from lyra.world.camera_model import LUMA


def _asset_dir():
    return resources.files("lyra") / "assets" / "photo_textures"


@functools.lru_cache(maxsize=1)
def bank_info() -> dict:
    """``bank.json``: texture size, licence and one entry (name, kind, source, crop) per texture."""
    return json.loads((_asset_dir() / "bank.json").read_text())


def texture_ids(kind: str | None = None) -> list[int]:
    """Indices of the bank's textures of ``kind`` (``ground``, ``wall``, ``facade``, ``foliage``, ``rock``; all
    if None)."""
    return [i for i, t in enumerate(bank_info()["textures"]) if kind is None or t["kind"] == kind]


def srgb_to_linear(x: Tensor) -> Tensor:
    """The sRGB transfer function inverted (``x`` in [0, 1])."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


@functools.lru_cache(maxsize=1)
def _levels_cpu() -> tuple[Tensor, ...]:
    import numpy as np
    from PIL import Image

    with (_asset_dir() / "atlas.jpg").open("rb") as f:
        atlas = torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0)
    size = int(bank_info()["size"])
    n = atlas.shape[1] // size
    tex = srgb_to_linear(atlas.reshape(size, n, size, 3).permute(1, 3, 0, 2).contiguous())  # [K, 3, s, s]
    lum = (tex * torch.tensor(LUMA)[None, :, None, None]).sum(1).mean((1, 2))
    tex = tex / lum.clamp_min(1e-3)[:, None, None, None]
    levels = [tex]
    while levels[-1].shape[-1] > 1:
        levels.append(torch.nn.functional.avg_pool2d(levels[-1], 2))
    # each level flattened texel-major: [K·s·s, 3]
    return tuple(lv.permute(0, 2, 3, 1).reshape(-1, 3).contiguous() for lv in levels)


_DEVICE_CACHE: dict[str, tuple[Tensor, ...]] = {}
_SKY_CACHE: dict[str, Tensor] = {}


def texture_levels(device: torch.device) -> tuple[Tensor, ...]:
    """The mip levels ``[K·s_l², 3]`` (level ``l`` has side ``s_l = SIZE / 2^l``) on ``device`` (cached)."""
    key = str(device)
    if key not in _DEVICE_CACHE:
        _DEVICE_CACHE[key] = tuple(t.to(device) for t in _levels_cpu())
    return _DEVICE_CACHE[key]


def _mirror(x: Tensor) -> Tensor:
    """Mirrored repetition of the unit interval: 0→0, 1→1, 2→0, … (continuous, period 2)."""
    t = x - 2.0 * torch.floor(x * 0.5)
    return 1.0 - (1.0 - t).abs()


def _bilinear(level: Tensor, side: int, tex: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """Texels of ``level`` (``[K·side², 3]``) at unit coordinates ``u, v`` [k] of textures ``tex`` [k] → ``[3, k]``."""
    x = u * side - 0.5
    y = v * side - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    base = tex * (side * side)
    out = torch.zeros(3, u.numel(), device=u.device)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi = (x0 + dx).clamp(0, side - 1).long()
        yi = (y0 + dy).clamp(0, side - 1).long()
        w = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
        out += level.index_select(0, base + yi * side + xi).T * w
    return out


def sample_photo(tex: Tensor, u: Tensor, v: Tensor, footprint: Tensor) -> Tensor:
    """Linear RGB ``[3, k]`` (mean luminance about 1) of textures ``tex`` [k] (bank indices) at ``u, v`` [k]
    (in texture widths; repeated mirrored) over a pixel footprint ``footprint`` [k] (texture widths)."""
    levels = texture_levels(u.device)
    size = int(bank_info()["size"])
    top = len(levels) - 1
    lod = torch.log2((footprint * size).clamp_min(1e-6)).clamp(0.0, float(top))
    l0 = torch.floor(lod)
    f = (lod - l0)[None]
    uu, vv = _mirror(u), _mirror(v)
    out = torch.zeros(3, u.numel(), device=u.device)
    for lv in range(top + 1):
        near = (l0 == lv) | (l0 == lv - 1)
        sel = near.nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        side = size >> lv
        val = _bilinear(levels[lv], side, tex.index_select(0, sel), uu.index_select(0, sel), vv.index_select(0, sel))
        w = torch.where(l0.index_select(0, sel) == lv, 1 - f[:, sel], f[:, sel])
        out.index_add_(1, sel, val * w)
    return out


# ---------------------------------------------------------------------------------------- image skies
@functools.lru_cache(maxsize=1)
def _skies_cpu() -> tuple[Tensor, list[dict]]:
    """HDR sky hemispheres ``[N, H·W, 3]`` (linear; row 0 = zenith, row H − 1 = horizon; column = azimuth) and
    per sky: size, sun pixel, sun elevation, sun colour, peak, mean (cosine-weighted) and horizon radiance."""
    import numpy as np
    from PIL import Image

    out, infos = [], []
    for entry in bank_info().get("skies", []):
        with (_asset_dir() / f"sky_{entry['name']}.jpg").open("rb") as f:
            base = torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0)
        with (_asset_dir() / f"sky_{entry['name']}_gain.jpg").open("rb") as f:
            gain = torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0)
        # Adobe / ISO 21496-1 gain map (gamma 1): HDR = (SDR + k_sdr) · 2^(lerp(min, max, g)) − k_hdr
        boost = entry["GainMapMin"] + (entry["GainMapMax"] - entry["GainMapMin"]) * gain ** (1 / entry["Gamma"])
        hdr = ((srgb_to_linear(base) + entry["OffsetSDR"]) * torch.exp2(boost) - entry["OffsetHDR"]).clamp_min(0)
        H, W, _ = hdr.shape
        lum = hdr @ torch.tensor(LUMA)
        peak = int(lum.argmax())
        sy, sx = divmod(peak, W)
        near = hdr[max(0, sy - 3):sy + 4, max(0, sx - 3):sx + 4].reshape(-1, 3).mean(0)
        elev = (H - 0.5 - torch.arange(H, dtype=torch.float32)) / H * (math.pi / 2)  # row centre elevation
        w = (torch.sin(elev) * torch.cos(elev))[:, None, None]  # cosine-weighted solid angle of a row
        body = torch.minimum(hdr, lum.median() * 20)  # the sun's few pixels left out of the means
        infos.append({"name": entry["name"], "height": H, "width": W, "sun_x": sx, "sun_elevation": float(elev[sy]),
                      "sun_rgb": (near / near.max()).tolist(), "peak": float(lum[sy, sx]),
                      "mean_rgb": ((body * w).sum((0, 1)) / (w.sum() * W)).tolist(),
                      "horizon_rgb": body[-H // 16:].reshape(-1, 3).mean(0).tolist()})
        out.append(hdr.reshape(-1, 3))
    return (torch.stack(out) if out else torch.zeros(0, 1, 3)), infos


def sky_infos() -> list[dict]:
    """What :func:`_skies_cpu` measured of each image sky (see there)."""
    return _skies_cpu()[1]


def image_sky(d: Tensor, which: Tensor, rotation: Tensor, gain: Tensor) -> Tensor:
    """Radiance ``[3, k]`` of image skies ``which`` [k] in unit directions ``d`` [3, k] (world -y up), turned by
    ``rotation`` [k] radians of azimuth and scaled by ``gain`` [k]; below the horizon the horizon row, darkened
    like the procedural sky. Azimuth ``atan2(d_x, d_z) + rotation`` maps to the column, elevation to the row."""
    sky_key = str(d.device)
    if sky_key not in _SKY_CACHE:
        _SKY_CACHE[sky_key] = _skies_cpu()[0].to(d.device)
    table = _SKY_CACHE[sky_key]
    info = sky_infos()[0]
    H, W = info["height"], info["width"]
    el = torch.asin((-d[1]).clamp(-1.0, 1.0))
    az = torch.atan2(d[0], d[2]) + rotation
    x = torch.remainder(az / (2 * math.pi), 1.0) * W - 0.5
    y = (H - (el.clamp_min(0) / (math.pi / 2)) * H - 0.5).clamp(0, H - 1)
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    flat = table.reshape(-1, 3)
    out = torch.zeros(3, d.shape[1], device=d.device)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi = torch.remainder(x0 + dx, W).long()
        yi = (y0 + dy).clamp(0, H - 1).long()
        idx = which * (H * W) + yi * W + xi
        out += flat.index_select(0, idx).T * ((fx if dx else 1 - fx) * (fy if dy else 1 - fy))
    below = (-el).clamp_min(0.0)
    return out * (1 - 0.5 * (below / 0.2).clamp(max=1.0)) * gain


__all__ = ["LUMA", "bank_info", "image_sky", "sample_photo", "sky_infos", "srgb_to_linear", "texture_ids",
           "texture_levels"]
