"""The product's inputs, checked before any model runs (:mod:`lyra.pipeline`): an image (path, PIL image or
tensor) and its working size, camera and extra trajectory; a video's frames, times, cameras, depth and output times;
and the options every run shares (seed, steps, prune ratio).

Conventions: images ``[3, H, W]`` and frames ``[T, 3, H, W]`` float in [0, 1]; cameras OpenCV (camera-to-world
4×4, intrinsics in pixels of the image they belong to); depth is z-depth (``inf``: sky).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.geometry.cameras import Cameras

__all__ = ["DEFAULT_NUM_TIMES", "DEFAULT_STEPS", "VideoInputs", "align_depth_scales", "as_image", "check_frames",
           "check_run_options", "check_size", "check_video_inputs", "depth_estimator", "estimate_depths",
           "input_camera", "load_trajectory", "output_time_grid", "static_cameras"]

#: Sampler steps by default (GEN3C's 35).
DEFAULT_STEPS = 35
#: Output times of a video by default: this many, evenly spaced over [0, 1] (never more than the input frames).
DEFAULT_NUM_TIMES = 17


def check_run_options(seed: Any, steps: int | None) -> int:
    """The options every run shares: ``seed`` a non-negative int, ``steps`` (default :data:`DEFAULT_STEPS`) at
    least 1. Returns the steps (ConfigError otherwise)."""
    steps = DEFAULT_STEPS if steps is None else int(steps)
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return steps


# ------------------------------------------------------------------------------------------------ an image
def as_image(image: Any) -> tuple[Tensor, str]:
    """A path, a PIL image or a ``[3, H, W]`` tensor → float ``[3, H, W]`` in [0, 1] and a label."""
    from lyra.inputs import load_image

    if isinstance(image, (str, os.PathLike)):
        return load_image(image), str(image)
    if isinstance(image, Tensor):
        if image.dim() != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
            raise ConfigError(f"image must be a tensor [3, H, W] in [0, 1], got {tuple(image.shape)}")
        img = image.detach().float().cpu()
        if image.dtype == torch.uint8:
            img = img / 255.0
        if not torch.isfinite(img).all():
            raise ConfigError("the image tensor holds non-finite values")
        return img.clamp(0, 1), "tensor"
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        import numpy as np

        arr = np.asarray(image.convert("RGB")).astype("float32") / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), "PIL image"
    raise ConfigError(f"image must be a file path, a PIL image or a [3, H, W] tensor, got {type(image).__name__}")


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """A working size ``(H, W)``: positive multiples of the teacher's 16 (ConfigError otherwise)."""
    from lyra.teacher.pipeline import SIZE_MULTIPLE

    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be (height, width), got {size!r}") from None
    if h <= 0 or w <= 0 or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ConfigError(f"size {h}x{w}: height and width must be positive multiples of {SIZE_MULTIPLE} "
                          "(e.g. 176x320)")
    return h, w


def load_trajectory(path: str | os.PathLike, height: int, width: int,
                     frames: int | None = None) -> tuple[Cameras, tuple[str, ...]]:
    """A camera-path file (lyra JSON, nerfstudio ``transforms.json`` or Lyra-2 ``trajectory.npz``) → ``Cameras [1, T]``
    fitted to the working size (as ``lyra teacher --trajectory``) and its name.

    With ``frames`` (a path *added* to GEN3C's six): the path is re-expressed relative to its first camera (which
    becomes the input camera at the origin, :func:`lyra.geometry.intrinsics.relative_path`) and resampled to
    ``frames`` cameras (:func:`~lyra.geometry.intrinsics.resample_path`). Without: it must have ``1 + 8k`` cameras
    and is used as it is (it replaces the six).
    """
    from lyra.geometry.intrinsics import relative_path, resample_path
    from lyra.geometry.trajectories import load_camera_path
    from lyra.inputs import fit_cameras_to_size

    cams = load_camera_path(path)
    n = len(cams)
    if frames is not None:
        cams = resample_path(relative_path(cams), frames)
        n = frames
    elif len(cams.shape) != 1 or (n - 1) % 8:
        raise ConfigError(f"trajectory {path}: {n} cameras; the teacher needs 1 + 8k (9, 17, 25, ...)")
    return fit_cameras_to_size(cams, height, width).reshape(1, n), (Path(path).stem,)


def input_camera(image: Any, img: Tensor, camera: Cameras | None, fov: float | None, focal_px: float | None,
                  intrinsics: Any, exif: bool) -> tuple[Cameras | None, str | None]:
    """The input camera at the image's own size from the options (:func:`lyra.geometry.intrinsics.photo_camera`)
    and, for an image file, its EXIF focal length; ``(None, None)`` when nothing is known (the pipeline's default,
    or a trajectory file's first camera, then applies)."""
    from lyra.geometry.intrinsics import photo_camera

    if camera is not None:
        if fov is not None or focal_px is not None or intrinsics is not None:
            raise ConfigError("give either camera or fov / focal_px / intrinsics, not both")
        return camera, "given"
    H, W = int(img.shape[1]), int(img.shape[2])
    exif_f = None
    if fov is None and focal_px is None and intrinsics is None:
        if exif and isinstance(image, (str, os.PathLike)):
            from lyra.inputs_exif import exif_focal_px

            exif_f = exif_focal_px(image, W, H)
        if exif_f is None:
            return None, None
    cam, source = photo_camera(H, W, fov=fov, focal_px=focal_px, intrinsics=intrinsics,
                               exif_focal_px=exif_f[0] if exif_f else None, exif_note=exif_f[1] if exif_f else None)
    return cam, source


# ------------------------------------------------------------------------------------------------ a video
@dataclass
class VideoInputs:
    """A video run's checked inputs (:func:`check_video_inputs`).

    Attributes:
        frames: ``[T, 3, H, W]`` in [0, 1] (CPU); times: ``[T]`` in [0, 1], strictly increasing.
        output_times: ``[K]`` the times the scene is decoded at.
        cameras: the input cameras ``Cameras [T]``; static_camera: they are the static-camera assumption.
        depth_maps: ``[T, H, W]`` given z-depth, or ``None`` (estimated).
        seed, steps, prune_ratio: as checked.
    """

    frames: Tensor
    times: Tensor
    output_times: Tensor
    cameras: Cameras
    static_camera: bool
    depth_maps: Tensor | None
    seed: int
    steps: int
    prune_ratio: float


def check_video_inputs(frames: Tensor, times: Tensor, depth_maps: Tensor | None, input_cameras: Cameras | None,
                       output_times: int | Sequence[float] | Tensor | None, seed: int, steps: int | None,
                       prune_ratio: float | None) -> VideoInputs:
    """Check a video run's inputs (arguments as :func:`lyra.pipeline.generate_dynamic`) before any model is loaded
    or run; ConfigError names the first problem."""
    from lyra.student.inference import PRUNE_RATIO

    frames, times = check_frames(frames, times)
    T, _, H, W = frames.shape
    taus = output_time_grid(min(T, DEFAULT_NUM_TIMES) if output_times is None else output_times, T)
    steps = check_run_options(seed, steps)
    prune_ratio = PRUNE_RATIO if prune_ratio is None else float(prune_ratio)
    if not 0.0 <= prune_ratio < 1.0:
        raise ConfigError(f"prune_ratio must lie in [0, 1), got {prune_ratio}")
    static = input_cameras is None
    if input_cameras is None:
        input_cameras = static_cameras(T, H, W)
    elif input_cameras.shape != (T,) or (input_cameras.width, input_cameras.height) != (W, H):
        raise ConfigError(f"input cameras must be Cameras [{T}] of size {W}x{H} (one per frame), got "
                          f"{tuple(input_cameras.shape)} of {input_cameras.width}x{input_cameras.height}")
    if depth_maps is not None:
        depth_maps = torch.as_tensor(depth_maps).float().cpu()
        if tuple(depth_maps.shape) != (T, H, W) or torch.isnan(depth_maps).any():
            raise ConfigError(f"depth_maps must be [{T}, {H}, {W}] z-depth without NaN, got "
                              f"{tuple(depth_maps.shape)}")
    return VideoInputs(frames, times, taus, input_cameras, static, depth_maps, seed, steps, prune_ratio)


def output_time_grid(output_times: int | Sequence[float] | Tensor, num_frames: int | None = None) -> Tensor:
    """The output times ``[K]`` (float32, in [0, 1], strictly increasing).

    An int ``K`` gives ``linspace(0, 1, K)`` (``[0.]`` for ``K = 1``); with ``num_frames`` it may not exceed the
    input frames. A sequence or tensor is checked and returned as float32.
    """
    if isinstance(output_times, bool):
        raise ConfigError(f"output_times must be a count or a list of times, got {output_times!r}")
    if isinstance(output_times, int):
        k = output_times
        if k < 1:
            raise ConfigError(f"the number of output times must be at least 1, got {k}")
        if num_frames is not None and k > num_frames:
            raise ConfigError(f"{k} output times from {num_frames} input frames; ask for at most {num_frames}")
        return torch.linspace(0.0, 1.0, k) if k > 1 else torch.zeros(1)
    t = torch.as_tensor(output_times, dtype=torch.float32).reshape(-1)
    if t.numel() == 0 or not torch.isfinite(t).all() or (t < 0).any() or (t > 1).any():
        raise ConfigError(f"output times must be values in [0, 1], got {t.tolist()[:8]}")
    if t.numel() > 1 and not (t[1:] > t[:-1]).all():
        raise ConfigError(f"output times must be strictly increasing, got {t.tolist()[:8]}")
    return t


def static_cameras(num_frames: int, height: int, width: int) -> Cameras:
    """The static-camera assumption: ``Cameras [T]``, every frame at the identity pose (OpenCV) with the intrinsics
    of :func:`lyra.inputs.default_camera` (square pixels, centred principal point, 50° vertical FoV)."""
    from lyra.inputs import default_camera

    cam = default_camera(height, width)
    return Cameras(cam.K.expand(num_frames, 3, 3).contiguous(), cam.c2w.expand(num_frames, 4, 4).contiguous(),
                   width, height)


def estimate_depths(frames: Tensor, estimator: Any, batch: int = 4, device: torch.device | None = None) -> Tensor:
    """Run a :class:`~lyra.teacher.depth.DepthEstimator` on every frame ``[T, 3, H, W]`` (``batch`` at a time) →
    z-depth ``[T, H, W]`` float32 on the CPU (``inf`` where the estimator says sky).

    The frames go to the estimator's device (its ``device`` attribute, or its parameters' for a module), else to
    ``device``, else they stay on the CPU.
    """
    dev = getattr(estimator, "device", None)
    if not isinstance(dev, torch.device) and isinstance(estimator, torch.nn.Module):
        dev = next(iter(estimator.parameters()), torch.empty(0)).device
    dev = dev if isinstance(dev, torch.device) else device
    out = []
    for i in range(0, len(frames), batch):
        chunk = frames[i:i + batch]
        d = estimator(chunk if dev is None else chunk.to(dev)).depth
        out.append(torch.as_tensor(d).float().cpu().reshape(len(chunk), *frames.shape[-2:]))
    return torch.cat(out)


def align_depth_scales(depth: Tensor) -> tuple[Tensor, Tensor]:
    """Rescale each frame's depth ``[T, H, W]`` so that its median ratio to frame 0 is 1 (static camera).

    Monocular depth is known up to a scale that drifts from frame to frame; with a fixed camera the background
    stays put, so ``s_f = median(d_0 / d_f)`` over pixels finite and positive in both frames. Returns the aligned
    depth and the factors ``[T]`` (``s_0 = 1``; frames sharing no valid pixel with frame 0 keep ``s = 1``).
    """
    d0 = depth[0]
    scales = torch.ones(len(depth))
    for f in range(1, len(depth)):
        ok = torch.isfinite(d0) & torch.isfinite(depth[f]) & (d0 > 0) & (depth[f] > 0)
        if ok.any():
            scales[f] = (d0[ok] / depth[f][ok]).median()
    return depth * scales[:, None, None], scales


def depth_estimator(spec: str, device: torch.device) -> Any:
    """A depth spec (``tiny``, ``hf:DIR`` or a transformers folder) → an estimator; per-image files do not apply."""
    from lyra.teacher.depth import load_depth_estimator

    if Path(spec).suffix.lower() in (".npy", ".png"):
        raise ConfigError(f"depth {spec}: a depth file describes one image; for a video give an estimator (tiny, "
                          "hf:DIR) or depth_maps [T, H, W]")
    folder = os.path.expanduser(spec[3:]) if spec.startswith("hf:") else spec
    if spec.startswith("hf:") and not Path(folder).is_dir():
        raise ConfigError(f"depth {spec}: {folder} is not a folder (a local transformers depth model)")
    return load_depth_estimator(folder, device=device)


def check_frames(frames: Tensor, times: Tensor) -> tuple[Tensor, Tensor]:
    """Video frames ``[T, 3, H, W]`` (float, finite, ``T >= 2``) and their times ``[T]`` (strictly increasing in
    [0, 1]) → frames clamped to [0, 1] on the CPU and times float32 (ConfigError otherwise)."""
    if not isinstance(frames, Tensor) or frames.dim() != 4 or frames.shape[1] != 3 or not frames.is_floating_point():
        raise ConfigError("frames must be a float tensor [T, 3, H, W] in [0, 1], got "
                          f"{tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__}")
    if len(frames) < 2:
        raise ConfigError(f"a video needs at least 2 frames, got {len(frames)}")
    if not torch.isfinite(frames).all():
        raise ConfigError("the frames hold non-finite values")
    t = torch.as_tensor(times, dtype=torch.float32).reshape(-1)
    if len(t) != len(frames):
        raise ConfigError(f"{len(t)} times for {len(frames)} frames; give one time per frame")
    if not torch.isfinite(t).all() or (t < 0).any() or (t > 1).any() or not (t[1:] > t[:-1]).all():
        raise ConfigError(f"times must increase strictly within [0, 1], got {t.tolist()[:8]}")
    return frames.detach().float().cpu().clamp(0, 1), t
