"""Input images for the whole product: robust loading, fitting to the working size, a default camera.

* :func:`load_image` reads any image Pillow can decode (PNG 8/16-bit, JPEG with EXIF orientation,
  WebP, TIFF, BMP, GIF, palette, grayscale, alpha; HEIC/AVIF where a Pillow plugin such as
  ``pillow-heif`` is installed) into ``[3, H, W]`` float in ``[0, 1]``. Transparent pixels are
  composited on white (the background of the whole package). Unreadable inputs raise
  :class:`~lyra.errors.InputFileError` with a one-line message.
* :func:`fit_to_size` centre-crops an image to the working aspect ratio and resizes it (antialiased)
  to the working size, returning a human-readable note of what it did.
* :func:`default_camera` is the pinhole camera assumed for a photo of unknown intrinsics: square
  pixels, centred principal point, the vertical field of view of the procedural worlds (50°).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import ConfigError, InputFileError
from lyra.fileio import check_input_file
from lyra.geometry.cameras import Cameras

__all__ = ["DEFAULT_FOV_Y_DEG", "default_camera", "fit_cameras_to_size", "fit_depth_to_size", "fit_to_size",
           "load_image"]

#: Vertical field of view (degrees) of :func:`default_camera`: that of every ``lyra.world`` preset.
DEFAULT_FOV_Y_DEG = 50.0


def _register_plugins() -> None:
    """Register optional Pillow plugins (HEIC/AVIF through ``pillow-heif``) when installed."""
    try:
        import pillow_heif  # type: ignore[import-not-found]
    except ImportError:
        return
    for name in ("register_heif_opener", "register_avif_opener"):
        fn = getattr(pillow_heif, name, None)
        if fn is not None:
            fn()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _to_array(im) -> np.ndarray:
    """A decoded PIL image → float64 ``[H, W, 3]`` in [0, 1], alpha composited on white."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
        gray = np.clip(a / peak, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        gray = np.clip(np.asarray(im).astype(np.float64), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=-1)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info) or (
        mode in ("L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float64) / 255.0
        alpha = rgba[..., 3:4]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    if mode != "RGB":
        im = im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
    return np.asarray(im).astype(np.float64) / 255.0


def load_image(path: str | os.PathLike) -> Tensor:
    """Read an image file into ``[3, H, W]`` float32 RGB in ``[0, 1]``.

    * EXIF orientation is applied (a phone photo stored sideways comes out upright).
    * Grayscale (8/16-bit) is replicated to three channels; 16-bit values are scaled by 1/65535.
    * Alpha (RGBA, LA, palette transparency) is composited on white.
    * Animated formats give their first frame.

    Raises:
        InputFileError: missing, empty, a directory, not an image, truncated or otherwise corrupt.
    """
    p = Path(path)
    check_input_file(p)
    from PIL import Image, ImageOps, UnidentifiedImageError

    _register_plugins()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im.load()
                try:
                    im = ImageOps.exif_transpose(im)
                except Exception:  # noqa: BLE001 - broken EXIF: keep the stored orientation
                    pass
                arr = _to_array(im)
    except UnidentifiedImageError:
        suffix = p.suffix.lower()
        hint = " (HEIC/AVIF need the 'pillow-heif' package: pip install pillow-heif)" if suffix in (
            ".heic", ".heif", ".avif") else ""
        raise InputFileError(f"{p}: not an image file Pillow can read{hint}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputFileError(f"{p}: image too large to load safely ({_first_line(e)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputFileError(f"{p}: corrupt or truncated image ({_first_line(e)})") from None
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputFileError(f"{p}: the image has no pixels")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()


def _crop_box(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, left, crop_h, crop_w)`` of the largest centred crop of ``h × w`` with aspect ``width/height``."""
    if w * height > h * width:  # too wide: crop the sides
        cw, ch = max(1, round(h * width / height)), h
    else:  # too tall (or exact): crop top and bottom
        cw, ch = w, max(1, round(w * height / width))
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def fit_to_size(image: Tensor, height: int, width: int) -> tuple[Tensor, str | None]:
    """Centre-crop ``image`` ``[3, H, W]`` to the aspect ``width / height``, then resize it to ``height × width``.

    The resize is bicubic with antialiasing (a low-pass filter when shrinking), clamped to ``[0, 1]``.

    Returns:
        the fitted image ``[3, height, width]`` and a note such as
        ``"resized 1920x1080 → 320x176 (centre-crop 1920x1056)"`` (width × height), or ``None`` when
        the image already had that size (returned unchanged).
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ConfigError(f"image must be [3, H, W], got {tuple(image.shape)}")
    if height <= 0 or width <= 0:
        raise ConfigError(f"the working size must be positive, got {width}x{height}")
    h, w = image.shape[-2:]
    if (h, w) == (height, width):
        return image, None
    top, left, ch, cw = _crop_box(h, w, height, width)
    crop = image[:, top:top + ch, left:left + cw]
    note = f"resized {w}x{h} → {width}x{height}"
    if (ch, cw) != (h, w):
        note += f" (centre-crop {cw}x{ch})"
    if (ch, cw) == (height, width):
        return crop.contiguous(), note
    out = F.interpolate(crop[None].float(), size=(height, width), mode="bicubic", align_corners=False,
                        antialias=True)[0]
    return out.clamp(0.0, 1.0).to(image.dtype), note


def fit_depth_to_size(depth: Tensor, height: int, width: int) -> Tensor:
    """The depth-map counterpart of :func:`fit_to_size`: the same centre crop of ``depth`` ``[H, W]``, then a
    nearest-neighbour resize to ``height × width`` (no blending across depth edges; ``inf`` stays ``inf``).

    z-depth is unchanged by cropping and by isotropic scaling of the image (the intrinsics scale instead).
    """
    if depth.dim() != 2:
        raise ConfigError(f"depth must be [H, W], got {tuple(depth.shape)}")
    h, w = depth.shape
    if (h, w) == (height, width):
        return depth
    top, left, ch, cw = _crop_box(h, w, height, width)
    crop = depth[top:top + ch, left:left + cw]
    if (ch, cw) == (height, width):
        return crop.contiguous()
    return F.interpolate(crop[None, None].float(), size=(height, width), mode="nearest-exact")[0, 0].to(depth.dtype)


def fit_cameras_to_size(cams: Cameras, height: int, width: int) -> Cameras:
    """Cameras (any batch shape) adapted to ``height × width`` as :func:`fit_to_size` adapts an image:
    scaled to cover it, then centre-cropped (intrinsics in pixels follow)."""
    if (cams.width, cams.height) == (width, height):
        return cams
    s = max(width / cams.width, height / cams.height)
    return cams.resize(max(width, math.ceil(cams.width * s - 1e-6)),
                       max(height, math.ceil(cams.height * s - 1e-6))).center_crop(width, height)


def default_camera(height: int, width: int, fov_deg: float = DEFAULT_FOV_Y_DEG) -> Cameras:
    """The input camera assumed for an image: identity ``c2w`` (OpenCV), square pixels, centred
    principal point, vertical field of view ``fov_deg`` (the ``lyra.world`` presets' 50° by default).

    Returns ``Cameras`` with batch shape ``[]`` and size ``width × height``.
    """
    if not 0.0 < fov_deg < 180.0:
        raise ConfigError(f"the field of view must lie in (0, 180) degrees, got {fov_deg}")
    return Cameras.from_fov(fov_deg, width, height)
