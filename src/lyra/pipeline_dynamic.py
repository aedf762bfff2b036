"""Lyra's dynamic mode: one monocular video → 4D Gaussians (a :class:`~lyra.dynamic_scene.DynamicScene`).

What :func:`generate_dynamic` does (LYRA_FACTS "Dynamic"; the static counterpart is :mod:`lyra.pipeline`)::

    video ──► lyra.inputs.load_video: frames [T, 3, H, W] in [0, 1] (working size), times [T] in [0, 1]
          ──► input cameras, one per frame: Cameras [T] (OpenCV, c2w 4×4). Default: the static-camera assumption
              (every frame at the identity pose, lyra.inputs.default_camera's intrinsics); or given poses (the
              release uses ViPE's).
          ──► depth per frame [T, H, W] (z-depth; the depth estimator run on every frame; with a static camera each
              frame's scale is aligned to frame 0's by the median depth ratio)
          ──► dynamic teacher: frames + depth + cameras + times → raw latents of the six GEN3C trajectories
              [V=6, 16, t, h, w], their cameras Cameras [V, T], and the time of each trajectory frame [T]
              (frame f of every trajectory shows the scene at times[f]: the camera moves while time advances)
          ──► time-conditioned student at every output time τ_k (time encoded as [t, cos t, sin t], source- and
              target-time embeddings): Gaussians(τ_k), pruned to the most opaque 1 − prune_ratio (Lyra: 20 %)
          ──► DynamicScene(times=τ [K], gaussians [K], cameras [V, T], camera_times [T], metadata)

The teacher and the student are *injected*: any objects following :class:`DynamicTeacher` and
:class:`DynamicStudent` (so the pipeline runs with fakes in tests). Without them, :func:`load_dynamic_models` finds
the preset's dynamic weights (:func:`resolve_dynamic_weights`) and raises :class:`DynamicWeightsMissing` ("dynamic
weights not found") when they are absent.

Usage::

    from lyra.inputs import load_video
    from lyra.pipeline_dynamic import generate_dynamic

    frames, times, info = load_video("clip.mp4", num_frames=17, size=(176, 320))
    scene = generate_dynamic(frames, times, teacher=my_teacher, student=my_student, output_times=9)
    scene.save("scene4d/")                    # t000.ply … t008.ply + index.json + cameras.json
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from lyra.dynamic_scene import DynamicScene
from lyra.errors import ConfigError, WeightsError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras

__all__ = ["DEFAULT_NUM_TIMES", "DYNAMIC_DECODER_NAMES", "DynamicStudent", "DynamicTeacher", "DynamicTeacherOutput",
           "DynamicWeights", "DynamicWeightsMissing", "align_depth_scales", "estimate_depths", "generate_dynamic",
           "load_dynamic_models", "output_time_grid", "resolve_dynamic_weights", "static_cameras"]

#: Output times by default: this many, evenly spaced over [0, 1] (never more than the input frames).
DEFAULT_NUM_TIMES = 17
#: Names tried, in order, for the dynamic 3DGS decoder in a ``weights`` folder (the release ships lyra_dynamic.pt).
DYNAMIC_DECODER_NAMES = ("lyra_dynamic.safetensors", "lyra_dynamic.pt", "dynamic_decoder.safetensors")


class DynamicWeightsMissing(WeightsError):
    """The dynamic teacher or the time-conditioned student weights are not there."""


# ------------------------------------------------------------------------------------------------ protocols
@dataclass
class DynamicTeacherOutput:
    """What a :class:`DynamicTeacher` returns.

    Attributes:
        raw_latents: de-normalised tokenizer latents ``[V, 16, t, h, w]`` of the ``V`` trajectory videos (what the
            student reads; ``t = 1 + (T − 1)/8``, ``h, w = H/8, W/8``).
        cameras: the trajectory cameras ``Cameras [V, T]`` (OpenCV c2w 4×4, size ``W × H``; frame 0 = the input view).
        names: the ``V`` trajectory names.
        frame_times: ``[T]`` time in [0, 1] that frame ``f`` of every trajectory shows (the source times of the
            latents; normally the input video's ``times``).
        center_depth: the scene-centre depth the trajectories were scaled by (``nan`` if not known).
        timings: seconds per teacher stage (recorded in the scene's metadata).
        weights: SHA-256 of the teacher's weights, for provenance.
    """

    raw_latents: Tensor
    cameras: Cameras
    names: tuple[str, ...]
    frame_times: Tensor
    center_depth: float = math.nan
    timings: dict[str, float] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class DynamicTeacher(Protocol):
    """Video → latents of the trajectory videos (GEN3C on a video: the 3D cache of input frame ``f`` is warped into
    camera ``(v, f)`` of every trajectory ``v``)."""

    def __call__(self, frames: Tensor, depth: Tensor, cameras: Cameras, times: Tensor, *, seed: int,
                 steps: int) -> DynamicTeacherOutput:
        """Args: ``frames`` ``[T, 3, H, W]`` in [0, 1]; ``depth`` ``[T, H, W]`` z-depth (``inf`` = sky);
        ``cameras`` the input cameras ``Cameras [T]`` (size ``W × H``); ``times`` ``[T]`` in [0, 1];
        ``seed`` (trajectory distances and noise); ``steps`` sampler steps."""
        ...


@runtime_checkable
class DynamicStudent(Protocol):
    """The time-conditioned 3DGS decoder: the teacher's latents and cameras + a target time → Gaussians."""

    def __call__(self, teacher_output: DynamicTeacherOutput, target_time: float) -> Gaussians:
        """The scene at ``target_time`` in [0, 1], unpruned (the pipeline prunes), any device."""
        ...


# ------------------------------------------------------------------------------------------------ weights
@dataclass(frozen=True)
class DynamicWeights:
    """Where the dynamic models' weights are: ``teacher`` (a denoiser folder), ``tokenizer`` (a folder, or ``None``
    for the preset's), ``student`` (a student export folder or a released decoder file)."""

    preset: str
    teacher: Path
    tokenizer: Path | None
    student: Path


def _weights_root() -> Path:
    """The shipped weights folder (:func:`lyra.weights.hub.weights_root`; a seam for tests)."""
    from lyra.weights.hub import weights_root

    return weights_root()


def resolve_dynamic_weights(preset: str = "tiny", weights: str | os.PathLike | None = None,
                            student: str | os.PathLike | None = None) -> DynamicWeights:
    """Find the dynamic teacher and student weights of ``preset`` (nothing is loaded).

    Layout looked for:

    * ``weights=None`` (``tiny`` only): the shipped ``src/lyra/weights/teacher_tiny_dynamic/`` (``config.json``), or
      else the static ``teacher_tiny/`` (one denoiser serves images and videos), and
      ``src/lyra/weights/student_tiny_dynamic/`` (``student.json``).
    * ``weights=DIR``: ``DIR/teacher_dynamic/`` or else ``DIR/teacher/`` (GEN3C's one denoiser serves images and
      videos), ``DIR/tokenizer/`` (optional), and ``DIR/student_dynamic/`` or ``DIR/lyra_dynamic.pt``
      (:data:`DYNAMIC_DECODER_NAMES`).
    * ``student=PATH`` overrides the student (a dynamic student export folder or decoder file).

    Raises:
        DynamicWeightsMissing: "dynamic weights not found: ..." naming what is missing and where it was looked for.
    """
    from lyra.teacher.pipeline import PIPELINE_PRESETS

    if preset not in PIPELINE_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PIPELINE_PRESETS)}")
    tokenizer = None
    if weights is not None:
        root = Path(weights).expanduser()
        if not root.is_dir():
            raise DynamicWeightsMissing(f"dynamic weights not found: {root} is not a folder")
        teacher = next((root / n for n in ("teacher_dynamic", "teacher") if (root / n / "config.json").is_file()),
                       None)
        tokenizer = root / "tokenizer" if (root / "tokenizer").is_dir() else None
        decoder = root / "student_dynamic" if (root / "student_dynamic" / "student.json").is_file() else next(
            (root / n for n in DYNAMIC_DECODER_NAMES if (root / n).is_file()), None)
        where = f"in {root} (looked for teacher_dynamic/ or teacher/, and student_dynamic/ or " \
                f"{' | '.join(DYNAMIC_DECODER_NAMES)})"
    elif preset == "official":
        raise DynamicWeightsMissing("dynamic weights not found: the official preset needs --weights DIR with "
                                    "teacher/ (GEN3C), tokenizer/ and lyra_dynamic.pt")
    else:
        root = _weights_root()
        t_dir, s_dir = root / f"teacher_{preset}_dynamic", root / f"student_{preset}_dynamic"
        # GEN3C's one denoiser serves images and videos: without a dynamic fine-tune the static teacher runs on the
        # dynamic 3D cache (that is also what made the shipped dynamic student's SDG data).
        teacher = next((d for d in (t_dir, root / f"teacher_{preset}") if (d / "config.json").is_file()), None)
        decoder = s_dir if (s_dir / "student.json").is_file() else None
        where = f"(looked for {t_dir} or {root / f'teacher_{preset}'}, and {s_dir}; train them, or pass " \
                "--weights DIR / --student PATH)"
    if student is not None:
        decoder = Path(student).expanduser()
        if not decoder.exists():
            raise DynamicWeightsMissing(f"dynamic weights not found: student {decoder} does not exist")
    missing = [name for name, p in (("dynamic teacher", teacher), ("dynamic student", decoder)) if p is None]
    if missing:
        raise DynamicWeightsMissing(f"dynamic weights not found: no {' and no '.join(missing)} {where}")
    assert teacher is not None and decoder is not None
    return DynamicWeights(preset, teacher, tokenizer, decoder)


def load_dynamic_models(preset: str = "tiny", weights: str | os.PathLike | None = None,
                        student: str | os.PathLike | None = None, depth: Any = "tiny",
                        device: str | torch.device = "auto") -> tuple[DynamicTeacher, DynamicStudent]:
    """Load the dynamic teacher and student of ``preset`` (:func:`resolve_dynamic_weights` finds them).

    The teacher is :class:`~lyra.teacher.pipeline.TeacherPipeline` on a video (the dynamic 3D cache); the student
    is a time-conditioned :class:`~lyra.student.LatentDecoder` (``student.json`` with ``"dynamic": true``, or a
    released ``lyra_dynamic.pt``), sharing the teacher's tokenizer for its Plücker and time latents.

    Raises:
        DynamicWeightsMissing: the weights are absent. WeightsError: a student that has no time embeddings.
    """
    from lyra.pipeline_parts import load_decoder
    from lyra.teacher.pipeline import TeacherPipeline
    from lyra.weights.hub import pick_device

    found = resolve_dynamic_weights(preset, weights, student)
    dev = pick_device(device)
    dtype = torch.bfloat16 if preset == "official" and dev.type == "cuda" else torch.float32
    model, meta = load_decoder(found.student, dev, dtype)
    if not model.config.time_embeddings:
        raise WeightsError(f"{found.student}: this decoder has no time embeddings; it cannot decode dynamic scenes")
    if found.student.is_dir() and not meta.get("dynamic", False):
        raise WeightsError(f"{found.student}: a static student export (no \"dynamic\": true in student.json); "
                           "fine-tune it with `lyra train student --dynamic --init-from ...`")
    pipe = TeacherPipeline.from_preset(preset, weights=found.teacher, depth=None, device=dev,
                                       dtype=dtype, tokenizer=found.tokenizer)
    return _VideoTeacher(pipe), _TimeStudent(model, pipe.tokenizer)


class _VideoTeacher:
    """:class:`DynamicTeacher` over a :class:`~lyra.teacher.pipeline.TeacherPipeline` (``pipe(video=...)``)."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        from lyra.weights.hub import weights_sha256

        self.weights = weights_sha256(pipe.weights) if pipe.weights is not None else {}

    def __call__(self, frames: Tensor, depth: Tensor, cameras: Cameras, times: Tensor, *, seed: int,
                 steps: int) -> DynamicTeacherOutput:
        out = self.pipe(video=frames, video_depth=depth, video_cameras=cameras, times=times, seed=seed,
                        steps=steps, progress=False)
        return DynamicTeacherOutput(raw_latents=out.raw_latents, cameras=out.cameras, names=tuple(out.names),
                                    frame_times=out.times, center_depth=out.center_depth,
                                    timings=dict(out.timings), weights={"teacher": self.weights})


def _student_paths(student: Any) -> dict[str, str | None] | None:
    """The compute paths a decoder-backed student last ran (``LatentDecoder.compute_paths``), else ``None``."""
    paths = getattr(getattr(student, "model", None), "compute_paths", None)
    return paths() if callable(paths) else None


class _TimeStudent:
    """:class:`DynamicStudent` over a time-conditioned decoder: Plücker latents once per teacher output, time
    latents cached per distinct time row (:class:`~lyra.student.latents.LatentCache`)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        from lyra.student.latents import LatentCache, raw_video_encoder

        self.model, self.encoder = model, raw_video_encoder(tokenizer)
        self.cache = LatentCache(self.encoder, max_entries=256)
        self._plucker: tuple[DynamicTeacherOutput, Tensor] | None = None  # the output itself: an id can be reused

    @torch.no_grad()
    def __call__(self, teacher_output: DynamicTeacherOutput, target_time: float) -> Gaussians:
        from lyra.student import LatentDecoder, plucker_latents
        from lyra.student.dynamic import decode_at_time

        dev = next(self.model.parameters()).device
        out = teacher_output
        cams = out.cameras.to(dev)
        V, T = cams.shape
        if self._plucker is None or self._plucker[0] is not out:
            self._plucker = (out, plucker_latents(cams.reshape(1, V, T), self.encoder))
        times = out.frame_times.float().reshape(1, 1, T).expand(1, V, T).to(dev)
        raw = decode_at_time(self.model, out.raw_latents[None].to(dev), cams.reshape(1, V, T), self._plucker[1],
                             times, float(target_time), self.encoder, cache=self.cache)
        (g,) = LatentDecoder.to_gaussians(raw.float(), None)
        return g


# ------------------------------------------------------------------------------------------------ stages
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


def _depth_estimator(spec: str, device: torch.device) -> Any:
    """A depth spec (``tiny``, ``hf:DIR`` or a transformers folder) → an estimator; per-image files do not apply."""
    from lyra.teacher.depth import load_depth_estimator

    if Path(spec).suffix.lower() in (".npy", ".png"):
        raise ConfigError(f"depth {spec}: a depth file describes one image; for a video give an estimator (tiny, "
                          "hf:DIR) or depth_maps [T, H, W]")
    folder = os.path.expanduser(spec[3:]) if spec.startswith("hf:") else spec
    if spec.startswith("hf:") and not Path(folder).is_dir():
        raise ConfigError(f"depth {spec}: {folder} is not a folder (a local transformers depth model)")
    return load_depth_estimator(folder, device=device)


def _check_frames(frames: Tensor, times: Tensor) -> tuple[Tensor, Tensor]:
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


def _check_teacher_output(out: Any, num_frames: int) -> DynamicTeacherOutput:
    if not isinstance(out, DynamicTeacherOutput):
        raise ConfigError(f"the teacher must return a DynamicTeacherOutput, got {type(out).__name__}")
    if out.raw_latents.dim() != 5 or len(out.cameras.shape) != 2:
        raise ConfigError(f"teacher output: latents must be [V, C, t, h, w] and cameras [V, T], got "
                          f"{tuple(out.raw_latents.shape)} and {tuple(out.cameras.shape)}")
    v, t = out.cameras.shape
    if out.raw_latents.shape[0] != v or len(out.names) != v or t != num_frames or len(out.frame_times) != t:
        raise ConfigError(f"teacher output: {out.raw_latents.shape[0]} latent videos, {len(out.names)} names, "
                          f"cameras {v}x{t} and {len(out.frame_times)} frame times for {num_frames} input frames")
    return out


# ------------------------------------------------------------------------------------------------ pipeline
@torch.no_grad()
def generate_dynamic(
    frames: Tensor,
    times: Tensor,
    *,
    teacher: DynamicTeacher | None = None,
    student: DynamicStudent | None = None,
    depth: Any = "tiny",
    depth_maps: Tensor | None = None,
    input_cameras: Cameras | None = None,
    output_times: int | Sequence[float] | Tensor | None = None,
    preset: str = "tiny",
    weights: str | os.PathLike | None = None,
    student_weights: str | os.PathLike | None = None,
    seed: int = 0,
    steps: int | None = None,
    prune_ratio: float | None = None,
    device: str | torch.device = "auto",
    progress: Any = True,
    metadata: dict[str, Any] | None = None,
) -> DynamicScene:
    """A monocular video → 4D Gaussians (the stages are in the module doc).

    Args:
        frames: ``[T, 3, H, W]`` float in [0, 1] at the working size (:func:`lyra.inputs.load_video`).
        times: ``[T]`` in [0, 1], strictly increasing: each frame's time (``load_video``'s second output).
        teacher, student: the dynamic models (:class:`DynamicTeacher`, :class:`DynamicStudent`); default: loaded
            from ``preset`` / ``weights`` / ``student_weights`` by :func:`load_dynamic_models`.
        depth: depth estimator spec (``"tiny"``, ``hf:DIR``, a transformers folder) or a
            :class:`~lyra.teacher.depth.DepthEstimator`, run on every frame; ignored with ``depth_maps``.
        depth_maps: ``[T, H, W]`` z-depth of the frames, instead of estimating it.
        input_cameras: ``Cameras [T]`` of the frames (OpenCV c2w, size ``W × H``); default the static-camera
            assumption (:func:`static_cameras`), under which estimated depths are scale-aligned to frame 0
            (:func:`align_depth_scales`).
        output_times: how many output times (evenly spaced in [0, 1]; at most ``T``) or the times themselves;
            default ``min(T, DEFAULT_NUM_TIMES)`` (17).
        seed: trajectory distances and sampler noise; steps: sampler steps (default 35, as GEN3C).
        prune_ratio: fraction of each time's Gaussians dropped, least opaque first (default Lyra's 0.8; 0 keeps
            all).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (for loaded models and the depth estimator).
        progress: ``True`` (one line per stage on stderr), ``False``, or a callable ``(stage, seconds)``.
        metadata: extra provenance stored in the scene (e.g. ``load_video``'s ``info`` under ``"input"``).

    Returns:
        :class:`DynamicScene` with ``K`` output times; ``gaussians[k]`` = the pruned student output at ``times[k]``;
        ``cameras`` the teacher's trajectories ``[V, T]`` and ``camera_times`` their frame times.

    Raises:
        ConfigError: bad frames, times, cameras, depth or options (checked before any model runs);
        DynamicWeightsMissing: no models given and no dynamic weights found.
    """
    from lyra.pipeline_parts import reporter
    from lyra.student.inference import PRUNE_RATIO
    from lyra.weights.hub import pick_device

    t_start = time.perf_counter()
    report = reporter(progress)
    timings: dict[str, float] = {}

    # ---- inputs, all checked before any model is loaded or run
    frames, times = _check_frames(frames, times)
    T, _, H, W = frames.shape
    taus = output_time_grid(min(T, DEFAULT_NUM_TIMES) if output_times is None else output_times, T)
    steps = 35 if steps is None else int(steps)
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
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
    dev = pick_device(device)
    timings["inputs"] = time.perf_counter() - t_start
    report("inputs", timings["inputs"])

    # ---- models (the weights are checked before the depth net is loaded)
    if teacher is None or student is None:
        t0 = time.perf_counter()
        loaded_teacher, loaded_student = load_dynamic_models(preset, weights, student_weights, depth, dev)
        teacher, student = teacher or loaded_teacher, student or loaded_student
        timings["load"] = time.perf_counter() - t0
        report("load", timings["load"])

    # ---- depth of every frame
    t0 = time.perf_counter()
    depth_source = "given"
    depth_scales = None
    if depth_maps is None:
        estimator = depth
        if estimator is None:
            raise ConfigError("no depth: give depth (an estimator or spec such as 'tiny') or depth_maps")
        if isinstance(estimator, str):
            estimator = _depth_estimator(estimator, dev)
        depth_maps = estimate_depths(frames, estimator, device=dev)
        depth_source = depth if isinstance(depth, str) else type(depth).__name__
        if static:
            depth_maps, depth_scales = align_depth_scales(depth_maps)
    timings["depth"] = time.perf_counter() - t0
    report("depth", timings["depth"])

    # ---- dynamic teacher: latents of the six trajectories
    t0 = time.perf_counter()
    out = _check_teacher_output(teacher(frames, depth_maps, input_cameras, times, seed=seed, steps=steps), T)
    timings["teacher"] = time.perf_counter() - t0
    report("teacher", timings["teacher"])

    # ---- time-conditioned student at every output time
    t0 = time.perf_counter()
    sets: list[Gaussians] = []
    before: list[int] = []
    from tqdm import tqdm

    for tau in tqdm(taus.tolist(), desc="student", unit="time", disable=progress is not True):
        g = student(out, float(tau))
        if not isinstance(g, Gaussians):
            raise ConfigError(f"the student must return Gaussians, got {type(g).__name__}")
        before.append(len(g))
        g = g.detach()
        if prune_ratio > 0 and len(g):
            g = g.prune(1.0 - prune_ratio)
        sets.append(g.to("cpu").float())
    timings["student"] = time.perf_counter() - t0
    report("student", timings["student"])
    timings["total"] = time.perf_counter() - t_start

    meta: dict[str, Any] = {
        "kind": "dynamic", "preset": preset, "seed": int(seed), "steps": steps, "size": [H, W], "frames": T,
        "input_times": [round(float(v), 6) for v in times], "output_times": [round(float(v), 6) for v in taus],
        "input_cameras": "static (identity pose, 50° FoV)" if static else "given",
        "depth": depth_source, "depth_scales": None if depth_scales is None else [round(float(s), 6)
                                                                                for s in depth_scales],
        "trajectories": list(out.names), "latents": list(out.raw_latents.shape),
        "center_depth": None if math.isnan(out.center_depth) else float(out.center_depth),
        "prune_ratio": prune_ratio, "gaussians_before_prune": before, "gaussians": [len(g) for g in sets],
        "device": str(dev), "weights": dict(out.weights),
        "student_path": _student_paths(student),
        "timings_s": {k: round(v, 4) for k, v in {**out.timings, **timings}.items()},
    }
    meta.update(metadata or {})
    return DynamicScene(times=taus, gaussians=sets, cameras=out.cameras.to("cpu"), names=tuple(out.names),
                        camera_times=out.frame_times.detach().float().cpu(), metadata=meta)
