"""Monocular depth for the teacher's 3D cache: one protocol, three sources.

Every estimator is a callable ``estimator(image) -> DepthResult`` with

* ``image``: ``[B, 3, H, W]`` (or ``[3, H, W]``) float RGB in ``[0, 1]``;
* ``DepthResult.depth``: ``[B, H, W]`` z-depth along the camera axis (OpenCV, see
  :mod:`lyra.geometry.cameras`) in world units — metres-like where the source knows the scale;
* ``DepthResult.confidence``: ``[B, H, W]`` in ``[0, 1]`` (0 where the depth should not be trusted,
  e.g. the sky).

Sources:

* :class:`~lyra.teacher.depth_net.TinyDepthNet` — the small network trained here on the procedural
  worlds (metric scale of those worlds), weights in ``lyra/weights/depth_tiny``.
* :class:`TransformersDepth` — any depth model a user has in a local folder, through ``transformers``
  (``AutoModelForDepthEstimation``: Depth Anything, DPT, GLPN, ZoeDepth, ...).
* :class:`FileDepth` — a depth map the user supplies (``.npy`` z-depth, or 16-bit PNG).

The teacher's trajectories are scaled by the scene-centre depth, so the warped views do not change
when all depths are multiplied by one factor: a relative depth with the right *shape* is enough; only
its shift (for disparity models) matters. See :func:`disparity_to_depth`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import ConfigError, FormatError, InputFileError, WeightsError
from lyra.fileio import atomic_path, check_input_file
from lyra.teacher.depth_protocol import DepthEstimator, DepthResult, as_image_batch

__all__ = [
    "DepthEstimator",
    "DepthResult",
    "FileDepth",
    "TransformersDepth",
    "align_scale_shift",
    "as_image_batch",
    "disparity_to_depth",
    "load_depth_estimator",
    "read_depth_file",
    "write_depth_png",
]

#: Metres per unit of a 16-bit depth PNG unless told otherwise (millimetres).
PNG_DEPTH_SCALE = 0.001


# --------------------------------------------------------------------------- scale and shift
def align_scale_shift(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Least-squares ``(scale, shift)`` ``[B]`` minimising ``|scale · pred + shift - target|²`` on ``mask``.

    ``pred``, ``target``, ``mask``: ``[B, H, W]`` (``mask`` bool; default: finite targets). Used with
    ``pred`` = disparity and ``target`` = 1 / reference depth, as MiDaS aligns affine-invariant output.
    """
    if mask is None:
        mask = torch.isfinite(target)
    m = mask.to(pred.dtype)
    p = torch.where(mask, pred, torch.zeros_like(pred))
    t = torch.where(mask, target, torch.zeros_like(target))
    dims = tuple(range(1, pred.dim()))
    n = m.sum(dims).clamp_min(1)
    sp, st = p.sum(dims), t.sum(dims)
    spp, spt = (p * p).sum(dims), (p * t).sum(dims)
    det = n * spp - sp * sp
    ok = det.abs() > 1e-12
    scale = torch.where(ok, (n * spt - sp * st) / torch.where(ok, det, torch.ones_like(det)), torch.ones_like(det))
    shift = (st - scale * sp) / n
    return scale, shift


def _batch_median(x: Tensor, mask: Tensor) -> Tensor:
    """Median ``[B]`` of ``x`` ``[B, H, W]`` over ``mask`` (1 where a batch item has no valid pixel)."""
    out = []
    for xi, mi in zip(x, mask, strict=True):
        v = xi[mi]
        out.append(v.median() if v.numel() else torch.ones((), dtype=x.dtype, device=x.device))
    return torch.stack(out)


def disparity_to_depth(
    disparity: Tensor,
    *,
    reference: Tensor | None = None,
    reference_mask: Tensor | None = None,
    median_depth: float = 1.0,
    min_fraction: float = 1e-3,
    max_ratio: float = 100.0,
) -> DepthResult:
    """z-depth from a relative inverse depth ``[B, H, W]`` (Depth Anything, MiDaS/DPT output).

    Such output is affine-invariant: ``disparity = a / z + b`` with unknown ``a > 0`` and ``b``.

    * With a ``reference`` depth ``[B, H, W]`` (e.g. sparse metric points; valid where
      ``reference_mask``, default finite and > 0): ``a`` and ``b`` are fitted by least squares on
      ``1 / reference`` (:func:`align_scale_shift`), then ``z = 1 / (a' · disparity + b')``.
    * Without: the shift is taken as 0 and the scale set so that the median depth of the image is
      ``median_depth`` — ``z = median_depth · median(disparity) / disparity``. The trajectories scale
      with the scene-centre depth, so this global scale does not change the warped views.

    Pixels whose disparity falls below ``min_fraction`` of the median (the sky: disparity ~ 0) get the
    depth ``max_ratio × median`` and confidence 0; depths are capped at that value everywhere.
    """
    disp = disparity.float()
    finite = torch.isfinite(disp)
    med = _batch_median(disp, finite & (disp > 0)).clamp_min(1e-12)
    valid = finite & (disp > min_fraction * med[:, None, None])
    if reference is not None:
        ref = reference.to(disp)
        rmask = (torch.isfinite(ref) & (ref > 0)) if reference_mask is None else reference_mask.bool()
        rmask = rmask & valid
        if int(rmask.sum()) < 2:
            raise ConfigError("disparity_to_depth: the reference depth has fewer than 2 valid pixels")
        scale, shift = align_scale_shift(disp, 1.0 / ref.clamp_min(1e-12), rmask)
        inv = scale[:, None, None] * disp + shift[:, None, None]
        valid = valid & (inv > 0)
        depth = 1.0 / torch.where(valid, inv, torch.ones_like(inv))
        cap = max_ratio * _batch_median(depth, valid)
    else:
        depth = median_depth * med[:, None, None] / torch.where(valid, disp, torch.ones_like(disp))
        cap = torch.full_like(med, max_ratio * median_depth)
    cap = cap[:, None, None]
    depth = torch.where(valid, depth.clamp(max=cap), cap.expand_as(depth))
    return DepthResult(depth, valid.float())


# --------------------------------------------------------------------------- transformers models
Output = Literal["auto", "depth", "disparity"]

_METRIC_MODEL_TYPES = {"glpn", "zoedepth", "depth_pro", "prompt_depth_anything"}
_RELATIVE_MODEL_TYPES = {"dpt", "depth_anything"}


def output_kind(config) -> Literal["depth", "disparity"]:
    """Whether a ``transformers`` depth model predicts metric depth or relative inverse depth."""
    kind = getattr(config, "depth_estimation_type", None)
    if kind == "metric":
        return "depth"
    if kind == "relative":
        return "disparity"
    model_type = getattr(config, "model_type", "")
    if model_type in _METRIC_MODEL_TYPES:
        return "depth"
    if model_type in _RELATIVE_MODEL_TYPES:
        return "disparity"
    raise ConfigError(f"cannot tell whether a {model_type!r} model predicts depth or disparity; "
                      "pass output='depth' or output='disparity'")


class TransformersDepth:
    """A local ``transformers`` depth model (``AutoModelForDepthEstimation`` + ``AutoImageProcessor``).

    Args:
        local_dir: folder written by ``save_pretrained`` (``config.json``, weights, and the image
            processor's ``preprocessor_config.json``). Nothing is downloaded.
        output: ``"depth"`` (metric z-depth: Depth Anything metric, ZoeDepth, GLPN, Depth Pro),
            ``"disparity"`` (relative inverse depth: Depth Anything relative, DPT/MiDaS) or ``"auto"``
            (read from the model config, see :func:`output_kind`).
        median_depth: disparity models: the median depth the output is scaled to (see
            :func:`disparity_to_depth`); metric models: if given, rescale so the median is this.
        device, dtype: where and in which precision the model runs (default: CUDA if present, fp32).

    ``__call__(image)`` resizes the prediction back to the image size (bilinear) and converts it to a
    :class:`DepthResult`; :meth:`estimate` also accepts a ``reference`` depth to align to.
    """

    def __init__(self, local_dir: str | os.PathLike, output: Output = "auto", median_depth: float | None = None,
                 device: str | torch.device | None = None, dtype: torch.dtype = torch.float32) -> None:
        path = Path(local_dir)
        if not path.is_dir() or not (path / "config.json").is_file():
            raise WeightsError(f"{path}: not a transformers model folder (no config.json); save one with "
                               "model.save_pretrained(DIR) and processor.save_pretrained(DIR)")
        try:
            from transformers import AutoImageProcessor, AutoModelForDepthEstimation
        except ImportError as e:  # pragma: no cover - transformers is a dev/optional dependency
            raise ConfigError(f"TransformersDepth needs the transformers package: {e}") from e
        try:
            self.model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True)
            self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            raise WeightsError(f"{path}: cannot load a depth model and image processor from it ({e})") from e
        if output not in ("auto", "depth", "disparity"):
            raise ConfigError(f"output must be auto, depth or disparity, got {output!r}")
        self.kind = output_kind(self.model.config) if output == "auto" else output
        self.median_depth = median_depth
        from lyra.weights.hub import pick_device

        self.device = pick_device(device or "auto")
        self.dtype = dtype
        self.model.to(self.device, dtype).eval().requires_grad_(False)

    @torch.no_grad()
    def raw(self, image: Tensor) -> Tensor:
        """The model's own output ``[B, H, W]`` (depth or disparity), resized to the image size."""
        image = as_image_batch(image)
        H, W = image.shape[-2:]
        arrays = [im.permute(1, 2, 0).clamp(0, 1).float().cpu().numpy() for im in image]
        inputs = self.processor(images=arrays, return_tensors="pt", do_rescale=False)
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        pred = self.model(pixel_values=pixels).predicted_depth.float()  # [B, h, w]
        return F.interpolate(pred[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0].to(image.device)

    def estimate(self, image: Tensor, reference: Tensor | None = None,
                 reference_mask: Tensor | None = None) -> DepthResult:
        """Depth of ``image`` ``[B, 3, H, W]``, optionally aligned to a ``reference`` depth ``[B, H, W]``."""
        pred = self.raw(image)
        if self.kind == "disparity":
            return disparity_to_depth(pred, reference=reference, reference_mask=reference_mask,
                                      median_depth=1.0 if self.median_depth is None else self.median_depth)
        valid = torch.isfinite(pred) & (pred > 0)
        depth = torch.where(valid, pred, torch.full_like(pred, float("inf")))
        if reference is not None:  # metric output: scale only
            ref = reference.to(depth)
            rmask = (torch.isfinite(ref) & (ref > 0)) if reference_mask is None else reference_mask.bool()
            rmask = rmask & valid
            ratio = torch.where(rmask, ref / depth, torch.zeros_like(ref))
            depth = depth * _batch_median(ratio, rmask)[:, None, None]
        elif self.median_depth is not None:
            depth = depth * (self.median_depth / _batch_median(depth, valid))[:, None, None]
        cap = 100.0 * _batch_median(depth, valid)[:, None, None]
        depth = torch.where(valid, depth.clamp(max=cap), cap.expand_as(depth))
        return DepthResult(depth, valid.float())

    def __call__(self, image: Tensor) -> DepthResult:
        return self.estimate(image)


# --------------------------------------------------------------------------- depth files
def read_depth_file(path: str | os.PathLike, png_scale: float = PNG_DEPTH_SCALE) -> Tensor:
    """Read a z-depth map ``[H, W]`` (float32, world units) from ``.npy`` or a 16-bit ``.png``.

    * ``.npy``: a float array ``[H, W]`` (or ``[1, H, W]`` / ``[H, W, 1]``) of z-depths.
    * ``.png``: single-channel 16-bit; depth = value × ``png_scale`` (default 0.001: millimetres).

    Every value must be finite and positive (a PNG's 0 usually means "no measurement": fill such
    holes before handing the file to lyra). Raises :class:`~lyra.errors.FormatError` otherwise.
    """
    p = check_input_file(path)
    suffix = p.suffix.lower()
    from lyra.limits import MAX_DEPTH_PIXELS, MAX_IMAGE_SIDE, npy_shape

    def check_pixels(h: int, w: int) -> None:
        if h * w > MAX_DEPTH_PIXELS or max(h, w) > MAX_IMAGE_SIDE:
            raise FormatError(f"{p}: a {w}x{h} depth map is larger than lyra reads ({MAX_DEPTH_PIXELS:,} pixels, "
                              f"{MAX_IMAGE_SIDE} a side); downscale it first")

    if suffix == ".npy":
        shape, _ = npy_shape(p)  # checked against the file size before any data is read
        if len(shape) in (2, 3):
            dims = [s for s in shape if s != 1] if len(shape) == 3 else list(shape)
            if len(dims) == 2:
                check_pixels(dims[0], dims[1])
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise FormatError(f"{p}: not a readable .npy array ({str(e)[:160]})") from None
        if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
            arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:-1])
        if arr.ndim != 2:
            raise FormatError(f"{p}: expected a depth map [H, W], got an array of shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise FormatError(f"{p}: expected numbers, got dtype {arr.dtype}")
        depth = torch.from_numpy(arr.astype(np.float32))
    elif suffix == ".png":
        if not png_scale > 0:
            raise ConfigError(f"png_scale must be positive, got {png_scale}")
        from PIL import Image, UnidentifiedImageError

        try:
            with warnings.catch_warnings():  # our own size limit below replaces Pillow's bomb warning
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(p)
            with im:
                mode = im.mode
                check_pixels(im.height, im.width)  # before decoding: a tiny PNG can declare a huge image
                arr = np.array(im)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
                Image.DecompressionBombError) as e:
            raise FormatError(f"{p}: not a readable PNG ({str(e)[:160]})") from None
        if mode not in ("I;16", "I;16B", "I;16L", "I") or arr.ndim != 2 or arr.dtype not in (np.uint16, np.int32):
            raise FormatError(f"{p}: a depth PNG must be single-channel 16-bit (value × {png_scale} = depth); "
                              f"got mode {mode}")
        depth = torch.from_numpy(arr.astype(np.float32)) * png_scale
    else:
        raise InputFileError(f"{p}: unknown depth file type {suffix!r}; use .npy (float z-depth) or a 16-bit .png")
    bad = ~torch.isfinite(depth)
    if bad.any():
        raise FormatError(f"{p}: {int(bad.sum())} depth values are not finite (NaN/inf); every pixel needs a depth")
    nonpos = depth <= 0
    if nonpos.any():
        raise FormatError(f"{p}: {int(nonpos.sum())} depth values are <= 0 (0 often marks missing depth); "
                          "every pixel needs a positive z-depth: fill the holes first")
    return depth


def write_depth_png(path: str | os.PathLike, depth: Tensor, png_scale: float = PNG_DEPTH_SCALE) -> Path:
    """Write ``depth`` ``[H, W]`` as a 16-bit PNG (value = round(depth / ``png_scale``)), atomically.

    Depths outside ``[png_scale, 65535 · png_scale]`` (e.g. inf sky) are clamped to that range.
    """
    from PIL import Image

    d = depth.detach().float().cpu()
    if d.dim() != 2:
        raise ConfigError(f"depth must be [H, W], got {tuple(d.shape)}")
    d = torch.nan_to_num(d, nan=png_scale, posinf=65535 * png_scale)
    q = (d / png_scale).round().clamp(1, 65535).numpy().astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(q).save(tmp, format="PNG")
    return Path(path)


class FileDepth:
    """User-supplied depth (``--depth file.npy|file.png``), read and checked once (:func:`read_depth_file`).

    ``__call__(image)`` returns it (confidence 1) after checking that its size is the image's; the same
    map is used for every image of a batch.
    """

    def __init__(self, path: str | os.PathLike, png_scale: float = PNG_DEPTH_SCALE) -> None:
        self.path = Path(path)
        self.depth = read_depth_file(path, png_scale)

    def __call__(self, image: Tensor) -> DepthResult:
        image = as_image_batch(image)
        B, _, H, W = image.shape
        h, w = self.depth.shape
        if (h, w) != (H, W):
            raise ConfigError(f"{self.path}: the depth map is {w}x{h} but the image is {W}x{H}; "
                              "give a depth map of the image's size")
        depth = self.depth.to(image.device).expand(B, H, W).clone()
        return DepthResult(depth, torch.ones_like(depth))


# --------------------------------------------------------------------------- resolution of a spec
def _is_tiny_depth_export(folder: Path) -> bool:
    """Whether ``folder`` holds a :class:`~lyra.teacher.depth_net.TinyDepthNet` export (not a transformers model)."""
    import json

    try:
        return json.loads((folder / "config.json").read_text()).get("model") == "TinyDepthNet"
    except (OSError, ValueError, AttributeError):
        return False


def load_depth_estimator(spec: str, device: str | torch.device | None = None,
                         png_scale: float = PNG_DEPTH_SCALE) -> DepthEstimator:
    """The estimator named by ``spec`` (what ``--depth`` takes on the command line):

    * a preset name (``"tiny"``): :meth:`TinyDepthNet.from_preset <lyra.teacher.depth_net.TinyDepthNet.from_preset>`;
    * a folder written by ``lyra train depth`` (its ``config.json`` says ``"model": "TinyDepthNet"``): that net;
    * another folder: :class:`TransformersDepth` (a local transformers depth model);
    * a ``.npy`` / ``.png`` file: :class:`FileDepth`.
    """
    from lyra.teacher.depth_net import TinyDepthNet
    from lyra.weights.hub import DEPTH_NETS

    if spec in DEPTH_NETS:
        return TinyDepthNet.from_preset(spec, device=device)
    p = Path(spec)
    if p.is_dir():
        if _is_tiny_depth_export(p):
            return TinyDepthNet.from_pretrained(p, device=device)
        return TransformersDepth(p, device=device)
    if p.suffix.lower() in (".npy", ".png"):
        return FileDepth(p, png_scale)
    raise ConfigError(f"--depth {spec}: not a preset ({', '.join(DEPTH_NETS)}), a transformers model folder, "
                      "or a .npy / 16-bit .png depth file")
