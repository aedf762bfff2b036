"""A photo's focal length in pixels from its EXIF tags (for the input camera of ``lyra generate``).

Two sources, tried in order:

1. ``FocalLengthIn35mmFilm`` (tag 0xA405): the 35 mm-equivalent focal length, defined on the diagonal of a
   36 × 24 mm frame (43.27 mm), so ``f_px = f35 / 43.27 · √(W² + H²)`` for the image as loaded;
2. ``FocalLength`` (0x920A, mm) with ``FocalPlaneXResolution`` (0xA20E) and ``FocalPlaneResolutionUnit`` (0xA210:
   2 inch, 3 cm, 4 mm, 5 µm): pixels per mm on the sensor at the size of ``PixelXDimension`` × ``PixelYDimension``
   (0xA002/0xA003; default the image's own), rescaled to the image as loaded.

Square pixels and a centred principal point are assumed. The image as loaded has EXIF orientation applied
(:func:`lyra.inputs.load_image`): the diagonal and the longer side do not change under a 90° turn.
"""

from __future__ import annotations

import math
import os

__all__ = ["FULL_FRAME_DIAGONAL_MM", "exif_focal_px"]

#: The diagonal of a 36 × 24 mm frame, which the 35 mm-equivalent focal length refers to.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
_EXIF_IFD = 0x8769
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}


def _number(v) -> float | None:
    try:
        x = float(v[0]) / float(v[1]) if isinstance(v, tuple) and len(v) == 2 else float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def exif_focal_px(path: str | os.PathLike, width: int, height: int) -> tuple[float, str] | None:
    """``(focal in pixels, a note naming the tags used)`` for the image at ``path`` as loaded at ``width × height``,
    or ``None`` when its EXIF has no usable focal length (or it has no EXIF, or cannot be opened)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            exif = im.getexif()
            ifd = dict(exif.get_ifd(_EXIF_IFD))
    except Exception:  # noqa: BLE001 - no or broken EXIF: no focal length
        return None
    tags = {**dict(exif), **ifd}
    f35 = _number(tags.get(0xA405))
    if f35 is not None:
        f = f35 / FULL_FRAME_DIAGONAL_MM * math.hypot(width, height)
        return f, f"EXIF FocalLengthIn35mmFilm {f35:g} mm"
    fl, res = _number(tags.get(0x920A)), _number(tags.get(0xA20E))
    unit = tags.get(0xA210, 2)
    if fl is None or res is None or unit not in _UNIT_MM:
        return None
    px_per_mm = res / _UNIT_MM[unit]
    px, py = _number(tags.get(0xA002)), _number(tags.get(0xA003))
    scale = max(width, height) / max(px, py) if px and py else 1.0
    f = fl * px_per_mm * scale
    if not math.isfinite(f) or f <= 0:
        return None
    return f, f"EXIF FocalLength {fl:g} mm and FocalPlaneXResolution"
