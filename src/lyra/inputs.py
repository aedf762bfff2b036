"""Input images for the whole product: robust loading, fitting to the working size, a default camera.

* :func:`load_image` reads any image Pillow can decode (PNG 8/16-bit, JPEG with EXIF orientation,
  WebP, TIFF, BMP, GIF, palette, grayscale, alpha; HEIC/AVIF where a Pillow plugin such as
  ``pillow-heif`` is installed) into ``[3, H, W]`` float in ``[0, 1]``. Transparent pixels are
  composited on white (the background of the whole package). Unreadable inputs raise
  :class:`~lyra.errors.InputFileError` with a one-line message.
* :func:`fit_to_size` centre-crops an image to the working aspect ratio and resizes it (antialiased)
  to the working size, returning a human-readable note of what it did.
* :func:`load_video` reads a video (or a folder of numbered frames) as ``T`` frames ``[T, 3, H, W]`` evenly
  spaced in time by their presentation timestamps (:func:`resample_by_timestamps`), fitted like images, with
  their normalised times ``[T]`` in ``[0, 1]``; :func:`is_video_input` tells a video input from an image.
* :func:`default_camera` is the pinhole camera assumed for a photo of unknown intrinsics: square
  pixels, centred principal point, the vertical field of view of the procedural worlds (50°).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import ConfigError, InputFileError
from lyra.fileio import check_input_file
from lyra.geometry.cameras import Cameras
from lyra.limits import MAX_IMAGE_DECODE_PIXELS

__all__ = ["DEFAULT_FOV_Y_DEG", "FRAME_EXTENSIONS", "default_camera", "fit_cameras_to_size", "fit_depth_to_size",
           "fit_to_size", "frame_files", "is_video_input", "load_image", "load_video", "parse_size",
           "resample_by_timestamps"]


def parse_size(text: str, multiple: int = 1, option: str = "--size") -> tuple[int, int]:
    """``"HxW"`` → ``(height, width)``; ConfigError unless both are positive multiples of ``multiple``
    (``option`` names the option in the message)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"{option} must look like HEIGHTxWIDTH (e.g. 176x320), got {text!r}") from None
    if h <= 0 or w <= 0 or h % multiple or w % multiple:
        what = "positive" if multiple == 1 else f"positive multiples of {multiple}"
        raise ConfigError(f"{option} {text}: height and width must be {what} (e.g. 176x320)")
    return h, w


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


def _check_image_size(p: Path, width: int, height: int) -> None:
    from lyra.limits import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE

    if width <= 0 or height <= 0:
        raise InputFileError(f"{p}: the image has no pixels ({width}x{height})")
    if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise InputFileError(f"{p}: a {width}x{height} image is larger than lyra reads ({MAX_IMAGE_SIDE} pixels a "
                             f"side, {MAX_IMAGE_PIXELS:,} pixels); downscale it first")


def _shrink(im: Any) -> Any:
    """A decoded image with more than :data:`~lyra.limits.MAX_IMAGE_DECODE_PIXELS` pixels shrunk (box filter,
    aspect kept) to at most that many, in its own 8/16-bit mode, before any float copy is made."""
    from PIL import Image

    w, h = im.size
    if w * h <= MAX_IMAGE_DECODE_PIXELS:
        return im
    if im.mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGBA" if im.mode in ("P", "PA") else "RGB")
    s = math.sqrt(MAX_IMAGE_DECODE_PIXELS / (w * h))
    return im.resize((max(1, int(w * s)), max(1, int(h * s))), Image.Resampling.BOX, reducing_gap=2.0)


def stored_image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(height, width)`` of an image file as displayed (EXIF rotation applied), from its header alone; ``None``
    when it cannot be read. :func:`load_image` may return a shrunk image; this is the size before shrinking."""
    from PIL import Image

    _register_plugins()
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - the loader reports unreadable files
        return None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def load_image(path: str | os.PathLike) -> Tensor:
    """Read an image file into ``[3, H, W]`` float32 RGB in ``[0, 1]``.

    * EXIF orientation is applied (a phone photo stored sideways comes out upright).
    * Grayscale (8/16-bit) is replicated to three channels; 16-bit values are scaled by 1/65535.
    * Alpha (RGBA, LA, palette transparency) is composited on white.
    * Animated formats give their first frame.
    * Images above :data:`lyra.limits.MAX_IMAGE_DECODE_PIXELS` (8.8 MP) are shrunk while decoding (aspect kept),
      so memory stays bounded; above :data:`lyra.limits.MAX_IMAGE_PIXELS` or
      :data:`lyra.limits.MAX_IMAGE_SIDE` they are refused before decoding.

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
                _check_image_size(p, im.width, im.height)  # from the header, before decoding
                if im.width * im.height > MAX_IMAGE_DECODE_PIXELS:  # JPEG: decode at 1/2, 1/4 or 1/8 scale
                    s = math.sqrt(MAX_IMAGE_DECODE_PIXELS / (im.width * im.height))
                    im.draft("RGB" if im.mode not in ("L", "RGB") else im.mode,
                             (max(1, int(im.width * s)), max(1, int(im.height * s))))
                im.load()
                try:
                    im = ImageOps.exif_transpose(im)
                except Exception:  # noqa: BLE001 - broken EXIF: keep the stored orientation
                    pass
                arr = _to_array(_shrink(im))
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


def photo_crop(image: Tensor, height: int, width: int) -> Tensor:
    """The part of ``image`` ``[3, H, W]`` that :func:`fit_to_size` keeps for a working size ``height × width``
    (the largest centred crop of that aspect), at the image's own resolution."""
    top, left, ch, cw = _crop_box(int(image.shape[-2]), int(image.shape[-1]), height, width)
    return image[..., top:top + ch, left:left + cw]


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


# ------------------------------------------------------------------------------------------------ videos
#: Image extensions a folder of numbered frames may hold.
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: ``ftyp`` brands of still images (HEIC/AVIF photos share the MP4 container's signature).
_IMAGE_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files (:data:`FRAME_EXTENSIONS`) of ``folder`` in natural order (``f2.png`` before ``f10.png``);
    hidden files are skipped."""
    p = Path(folder)
    files = [f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
             and f.suffix.lower() in FRAME_EXTENSIONS]
    return sorted(files, key=lambda f: _natural_key(f.name))


def is_video_input(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a video input for ``lyra generate`` rather than an image.

    A folder counts as a video (a folder of numbered frames); a file by its extension
    (:data:`lyra.media.READ_VIDEO_EXTENSIONS`; a GIF only when animated) or, for other extensions, by its first bytes
    (an MP4/MOV ``ftyp`` box that is not a HEIC/AVIF photo, Matroska/WebM, AVI). Unreadable paths give ``False``
    (the image loader then reports the problem).
    """
    from lyra.media import READ_VIDEO_EXTENSIONS

    p = Path(path)
    if p.is_dir():
        return True
    if not p.is_file():
        return p.suffix.lower() in READ_VIDEO_EXTENSIONS and p.suffix.lower() != ".gif"
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    if head[:6] in (b"GIF87a", b"GIF89a"):
        from PIL import Image

        try:
            with Image.open(p) as im:
                return getattr(im, "n_frames", 1) > 1
        except Exception:  # noqa: BLE001 - a broken GIF: let the video reader say why
            return p.suffix.lower() == ".gif"
    if p.suffix.lower() in READ_VIDEO_EXTENSIONS:
        return True
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    return head[:4] == b"\x1a\x45\xdf\xa3" or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


def resample_by_timestamps(pts: np.ndarray | Sequence[float], num_frames: int) -> np.ndarray:
    """Choose ``num_frames`` frames of a video, evenly spaced in *time*, from their presentation timestamps.

    The targets are ``num_frames`` instants evenly spaced from the first to the last timestamp; each gets the frame
    whose timestamp is nearest (ties: the earlier frame). Where a variable-frame-rate gap makes two targets share a
    nearest frame, the frames are instead chosen by dynamic programming as the strictly increasing set that
    minimises the summed distance ``Σ |pts[i_k] − target_k|`` (so every chosen frame is distinct and in order; when
    the nearest frames are already distinct this is the same choice).

    Args:
        pts: presentation times ``[N]`` (seconds or any unit), non-decreasing.
        num_frames: ``T``, at most ``N``.

    Returns:
        int64 indices ``[T]``, strictly increasing, first ``0`` and last ``N − 1`` (for ``T ≥ 2``).
    """
    t = np.asarray(pts, dtype=np.float64)
    n, k = len(t), int(num_frames)
    if k < 1:
        raise ConfigError(f"num_frames must be at least 1, got {num_frames}")
    if n < k:
        raise ConfigError(f"{n} frames cannot give {k} distinct frames")
    if not np.isfinite(t).all() or (n > 1 and np.any(np.diff(t) < 0)):
        raise ConfigError("timestamps must be finite and non-decreasing")
    if k == 1:
        return np.zeros(1, dtype=np.int64)
    targets = np.linspace(t[0], t[-1], k)
    right = np.clip(np.searchsorted(t, targets, side="left"), 0, n - 1)
    left = np.clip(right - 1, 0, n - 1)
    nearest = np.where(np.abs(t[left] - targets) <= np.abs(t[right] - targets), left, right)
    # Equal timestamps: take the first frame of the run (so that "ties: earlier" holds for duplicates too).
    nearest = np.searchsorted(t, t[nearest], side="left")
    if np.all(np.diff(nearest) > 0):
        return nearest.astype(np.int64)
    # Monotone assignment: cost[j] = best total with target k at frame j; frame j may serve target k only if
    # k ≤ j ≤ n − K + k (room for the earlier and the later targets).
    idx = np.arange(n)
    cost = np.where(idx <= n - k, np.abs(t - targets[0]), np.inf)
    back = np.zeros((k, n), dtype=np.int64)
    for q in range(1, k):
        run_min = np.minimum.accumulate(cost)
        new_min = np.r_[True, cost[1:] < run_min[:-1]]
        run_arg = np.maximum.accumulate(np.where(new_min, idx, 0))
        best = np.r_[np.inf, run_min[:-1]]  # best over j' < j
        back[q] = np.r_[0, run_arg[:-1]]
        cost = np.abs(t - targets[q]) + best
        cost[(idx < q) | (idx > n - k + q)] = np.inf
    out = np.empty(k, dtype=np.int64)
    out[-1] = int(np.argmin(cost))
    for q in range(k - 1, 0, -1):
        out[q - 1] = back[q, out[q]]
    return out


def _fit_frame(frame: Tensor, size: tuple[int, int] | None) -> tuple[Tensor, str | None]:
    return (frame, None) if size is None else fit_to_size(frame, size[0], size[1])


def _check_num_frames(num_frames: int) -> int:
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 2:
        raise ConfigError(f"num_frames must be an integer of at least 2, got {num_frames!r}")
    return int(num_frames)


def _window(pts: np.ndarray, start: float, duration: float | None, src: Path) -> np.ndarray:
    """Indices of the frames inside ``[pts[0] + start, pts[0] + start + duration]``."""
    if start < 0 or not math.isfinite(start) or (duration is not None and (not duration > 0 or
                                                                           not math.isfinite(duration))):
        raise ConfigError(f"start must be ≥ 0 and duration > 0 seconds, got start={start}, duration={duration}")
    t0 = pts[0] + start
    t1 = math.inf if duration is None else t0 + duration
    keep = np.nonzero((pts >= t0 - 1e-9) & (pts <= t1 + 1e-9))[0]
    if start > 0 and not len(keep):
        raise InputFileError(f"{src}: no frame after start={start:g} s (the video lasts {pts[-1] - pts[0]:.3g} s)")
    return keep


def load_video(path: str | os.PathLike, num_frames: int, size: tuple[int, int] | None = None, start: float = 0.0,
               duration: float | None = None) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Read a video (or a folder of numbered frames) as ``num_frames`` frames evenly spaced in time.

    Resampling: the frames' presentation timestamps are read from the stream (one decode pass, so a
    variable-frame-rate video is handled by its true timing, not by frame count), and
    :func:`resample_by_timestamps` picks the ``num_frames`` distinct frames nearest to instants evenly spaced from
    the first to the last frame (of the ``[start, start + duration]`` window when given). Frames are never
    interpolated or blended. Where a stream has no usable timestamps (missing, or not increasing), frames are
    taken evenly by their order instead (``info["timing"] == "frame order"``). A folder of frames is read in
    natural name order, as frames at a constant rate.

    Each chosen frame is then fitted like an image (:func:`fit_to_size`: centre crop to the aspect of ``size``,
    antialiased bicubic resize). Frames with more than :data:`lyra.media.MAX_DECODE_PIXELS` pixels are first shrunk
    by ffmpeg while decoding, so memory holds about one large frame plus the ``num_frames`` fitted ones.

    Args:
        path: a video file (anything the packaged ffmpeg decodes: MP4, MOV, MKV, WebM, AVI, animated GIF, ...;
            rotation metadata applied) or a folder of numbered image frames.
        num_frames: ``T`` frames to return (at least 2; the video needs at least that many).
        size: working ``(height, width)``; ``None`` keeps the decoded size (then the ``T`` returned frames hold
            ``T·H·W·12`` bytes: pass a size for large videos).
        start: seconds to skip from the first frame; duration: seconds to use after ``start`` (default: the rest).

    Returns:
        ``frames`` float32 ``[T, 3, H, W]`` in [0, 1]; ``times`` float32 ``[T]`` in [0, 1], the chosen frames'
        timestamps normalised to the window (``times[0] = 0``, ``times[-1] = 1``, increasing); ``info``: ``source``,
        ``kind`` (``"video"``/``"frames"``), ``codec``, ``source_size`` ``[W, H]``, ``decoded_size`` ``[W, H]``,
        ``source_frames``, ``fps`` (header), ``variable_frame_rate``, ``timing`` (``"timestamps"``/``"frame order"``),
        ``indices`` (chosen frame numbers), ``source_times_s``, ``duration_s`` (first to last chosen frame), ``fit``.

    Raises:
        InputFileError: missing, empty, not a video, undecodable, too large, too few frames (says how many are
            needed), frames of different sizes in a folder. ConfigError: bad arguments.
    """
    from lyra.media import decode_size, probe_video, read_video_frames, video_timestamps

    num_frames = _check_num_frames(num_frames)
    p = Path(path)
    if p.is_dir():
        return _load_frame_folder(p, num_frames, size, start, duration)
    probe = probe_video(p)
    stamps = video_timestamps(probe)
    pts = stamps.pts
    timing = "timestamps"
    if len(pts) > 1 and (not np.isfinite(pts).all() or np.any(np.diff(pts) < 0) or pts[-1] <= pts[0]):
        fps = probe.fps or 25.0
        pts, timing = np.arange(len(pts), dtype=np.float64) / fps, "frame order"
    window = _window(pts, start, duration, p)
    if len(window) < num_frames:
        where = "" if (start == 0 and duration is None) else f" between {start:g} s and " + (
            "the end" if duration is None else f"{start + duration:g} s")
        raise InputFileError(f"{p}: {len(window)} frame{'s' if len(window) != 1 else ''}{where}; {num_frames} are "
                             f"needed (give a longer video" + (" or a wider --start/--duration window)" if where
                                                                else ")"))
    chosen = window[resample_by_timestamps(pts[window], num_frames)]
    dw, dh = decode_size(stamps.width, stamps.height)
    frames, note = [], None
    for arr in read_video_frames(probe, chosen.tolist(), (dw, dh)):
        img = torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1)
        fitted, note = _fit_frame(img, size)
        frames.append(fitted.contiguous())
    sel = pts[chosen]
    diffs = np.diff(pts[window])
    info: dict[str, Any] = {
        "source": str(p), "kind": "video", "codec": probe.codec, "source_size": [stamps.width, stamps.height],
        "decoded_size": [dw, dh], "source_frames": len(pts), "fps": probe.fps,
        "variable_frame_rate": bool(len(diffs) > 1 and diffs.max() - diffs.min() > 0.01 * max(np.median(diffs), 1e-9)),
        "timing": timing, "indices": chosen.tolist(), "source_times_s": [round(float(v), 6) for v in sel],
        "duration_s": float(sel[-1] - sel[0]), "fit": note,
    }
    if (dw, dh) != (stamps.width, stamps.height):
        info["fit"] = f"decoded at {dw}x{dh} (source {stamps.width}x{stamps.height} is above the decode limit)" + (
            f"; {note}" if note else "")
    return torch.stack(frames), _normalised(sel), info


def _normalised(sel: np.ndarray) -> Tensor:
    span = float(sel[-1] - sel[0])
    return torch.from_numpy((sel - sel[0]) / span if span > 0 else np.linspace(0.0, 1.0, len(sel))).float()


def _load_frame_folder(folder: Path, num_frames: int, size: tuple[int, int] | None, start: float,
                       duration: float | None) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """:func:`load_video` for a folder of numbered frames (constant rate; ``start``/``duration`` in frames ÷ 1)."""
    if not os.access(folder, os.R_OK | os.X_OK):
        raise InputFileError(f"{folder}: folder not readable (check its permissions)")
    files = frame_files(folder)
    if not files:
        raise InputFileError(f"{folder}: is a folder without image frames ({', '.join(FRAME_EXTENSIONS)}); give a "
                             "video file or a folder of numbered frames")
    if start or duration is not None:
        raise ConfigError(f"{folder}: start/duration apply to video files; a folder of frames has no timing (remove "
                          "the frames you do not want)")
    if len(files) < num_frames:
        raise InputFileError(f"{folder}: {len(files)} image frame{'s' if len(files) != 1 else ''}; {num_frames} are "
                             "needed (give more frames)")
    chosen = resample_by_timestamps(np.arange(len(files), dtype=np.float64), num_frames)
    frames, shape, note = [], None, None
    for i in chosen:
        img = load_image(files[i])
        if shape is None:
            shape = tuple(img.shape)
        elif tuple(img.shape) != shape:
            raise InputFileError(f"{files[i]}: {img.shape[2]}x{img.shape[1]}, but the first chosen frame is "
                                 f"{shape[2]}x{shape[1]}; all frames must have one size")
        fitted, note = _fit_frame(img, size)
        frames.append(fitted.contiguous())
    assert shape is not None
    info: dict[str, Any] = {
        "source": str(folder), "kind": "frames", "codec": None, "source_size": [shape[2], shape[1]],
        "decoded_size": [shape[2], shape[1]], "source_frames": len(files), "fps": None, "variable_frame_rate": False,
        "timing": "frame order", "indices": chosen.tolist(), "files": [files[i].name for i in chosen],
        "source_times_s": None, "duration_s": None, "fit": note,
    }
    return torch.stack(frames), _normalised(chosen.astype(np.float64)), info
