"""What the product pipeline's stages share (:mod:`lyra.pipeline`): the student loader, the stage reporter, and the
model protocols a video run is written against.

* :func:`load_decoder` — a student export folder or an official decoder file → ``LatentDecoder``;
* :func:`reporter` — ``progress`` as a ``(stage, seconds)`` callback;
* :class:`DynamicTeacher` / :class:`DynamicStudent` (and :class:`DynamicTeacherOutput`) — the protocols the video
  stages run on, so the pipeline runs with fakes in tests; :class:`VideoTeacher` and :class:`TimeStudent` adapt the
  real models (:class:`~lyra.teacher.pipeline.TeacherPipeline` on a video, a time-conditioned
  :class:`~lyra.student.LatentDecoder`) to them;
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from lyra.errors import ConfigError, WeightsError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras

__all__ = ["DynamicStudent", "DynamicTeacher", "DynamicTeacherOutput", "DynamicWeightsMissing", "ProgressFn",
           "StudentWeightsMissing", "TimeStudent", "VideoTeacher", "check_teacher_output", "load_decoder",
           "reporter", "student_paths"]

ProgressFn = Callable[[str, float], None]


class StudentWeightsMissing(WeightsError):
    """The student (3DGS decoder) weights of a preset are not there."""


class DynamicWeightsMissing(WeightsError):
    """The dynamic teacher or the time-conditioned student weights are not there."""


def load_decoder(path: Path, device: torch.device, dtype: torch.dtype) -> tuple[Any, dict[str, Any]]:
    """A student export folder or an official decoder file → (LatentDecoder in eval mode, its meta)."""
    from lyra.student import LatentDecoder
    from lyra.student.checkpoint import load_official_checkpoint

    if path.is_dir():
        if not (path / "student.json").is_file():
            raise StudentWeightsMissing(f"{path}: no student.json; not a student export (train one with `lyra "
                                        "train student`, or pass the official decoder file)")
        model = LatentDecoder.from_pretrained(path, device=device, dtype=dtype)
        return model, model.meta
    model = load_official_checkpoint(path, "official", device=device).to(dtype)
    return model, {"preset": "official", "tokenizer": "official", "single_view": False}


def reporter(progress: bool | ProgressFn) -> ProgressFn:
    """``progress`` as a ``(stage, seconds)`` callback: itself if callable, a stderr line per stage if true, else
    a no-op."""
    if callable(progress):
        return progress
    if progress:
        def show(stage: str, seconds: float) -> None:
            print(f"  {stage:<14} {seconds:8.2f} s", file=sys.stderr, flush=True)

        return show
    return lambda stage, seconds: None


# ------------------------------------------------------------------------------------------------ protocols
@dataclass
class DynamicTeacherOutput:
    """What a :class:`DynamicTeacher` returns.

    Attributes:
        raw_latents: de-normalised tokenizer latents ``[V, C, t, h, w]`` of the ``V`` trajectory videos (what the
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



# ------------------------------------------------------------------------------------------------ adapters
class VideoTeacher:
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


def student_paths(student: Any) -> dict[str, str | None] | None:
    """The compute paths a decoder-backed student last ran (``LatentDecoder.compute_paths``), else ``None``."""
    paths = getattr(getattr(student, "model", None), "compute_paths", None)
    return paths() if callable(paths) else None


class TimeStudent:
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


class StaticStudent:
    """:class:`DynamicStudent` over the static decoder (:class:`~lyra.student.LatentDecoder`): a static scene is the
    one-time case, so ``target_time`` is not read.

    A call runs two stages on ``meter`` (a :class:`~lyra.lowmem.StageMeter`: seconds and peak memory):
    ``plucker`` (the cameras' Plücker latents through the tokenizer's encoder) and ``student`` (the decoder on all
    trajectories; ``single_view``: each alone, the Gaussians merged). With ``on`` (a device; the low-memory mode)
    each model is moved there for its stage and back; :attr:`transfer` holds the seconds those moves took.
    """

    def __init__(self, model: Any, encoder: Any, single_view: bool, meter: Any,
                 on: torch.device | None = None) -> None:
        self.model, self.encoder, self.single_view, self.meter, self.on = model, encoder, single_view, meter, on
        self.transfer: dict[str, float] = {}
        #: bool ``[N]``: which Gaussians of the last call sit at the decoder's scale cap (``None``: not known).
        self.at_scale_cap: Tensor | None = None

    @torch.no_grad()
    def __call__(self, teacher_output: DynamicTeacherOutput, target_time: float) -> Gaussians:
        from lyra.lowmem import resident
        from lyra.student import LatentDecoder
        from lyra.student.inference import decode, plucker_of

        dev = self.meter.device
        cams = teacher_output.cameras
        with self.meter.stage("plucker"), resident(self.encoder, self.on) as moved:
            plucker = plucker_of(cams.to(dev), self.encoder)
        self.transfer["plucker"] = moved.seconds
        cams32 = Cameras(cams.K.float(), cams.c2w.float(), cams.width, cams.height)
        with self.meter.stage("student"), resident(self.model, self.on) as moved:
            raw = decode(self.model, teacher_output.raw_latents, cams32, plucker, self.single_view)
            del plucker
        self.transfer["student"] = moved.seconds
        saturation = getattr(self.model, "scale_saturation", None)
        self.at_scale_cap = (saturation(raw[None], cams32.reshape(1, *cams.shape).to(raw.device))[0]
                             if callable(saturation) else None)
        (g,) = LatentDecoder.to_gaussians(raw[None], None)
        return g


def kept_fraction(gaussians: Gaussians, flags: Tensor | None, prune_ratio: float | None) -> float | None:
    """The fraction of ``flags`` (bool ``[N]``, one per Gaussian of ``gaussians``) among the Gaussians that
    :func:`pruned_on_cpu` keeps (:meth:`Gaussians.kept_indices`, the selection :meth:`Gaussians.prune` makes);
    ``None`` without flags or Gaussians."""
    if flags is None or not len(gaussians):
        return None
    if flags.shape != (len(gaussians),):
        raise ValueError(f"{flags.shape[0] if flags.dim() else 0} flags for {len(gaussians)} Gaussians")
    if prune_ratio:
        idx = gaussians.kept_indices(1.0 - prune_ratio)
        flags = flags.to(idx.device)[idx]
    return float(flags.float().mean()) if flags.numel() else None


def pruned_on_cpu(gaussians: Gaussians, prune_ratio: float | None) -> Gaussians:
    """The delivered set: the ``int(N · (1 − prune_ratio))`` most opaque of ``gaussians`` in their order (all with
    ``None`` or 0; the release's arithmetic, :meth:`~lyra.student.LatentDecoder.to_gaussians`), detached, float32,
    on the CPU. ConfigError unless ``prune_ratio`` lies in [0, 1)."""
    if prune_ratio is not None and not 0.0 <= prune_ratio < 1.0:
        raise ConfigError(f"prune_ratio must lie in [0, 1), got {prune_ratio}")
    g = gaussians.detach()
    if prune_ratio:
        g = g.prune(1.0 - prune_ratio)
    return g.to("cpu").float()


def check_teacher_output(out: Any, num_frames: int) -> DynamicTeacherOutput:
    """The contract of a :class:`DynamicTeacher` (a programming error, not a user's: TypeError / ValueError): a
    :class:`DynamicTeacherOutput` with latents ``[V, C, t, h, w]``, cameras ``[V, T]``, ``V`` names and ``T`` frame
    times for the ``num_frames`` input frames."""
    if not isinstance(out, DynamicTeacherOutput):
        raise TypeError(f"the teacher must return a DynamicTeacherOutput, got {type(out).__name__}")
    if out.raw_latents.dim() != 5 or len(out.cameras.shape) != 2:
        raise ValueError(f"teacher output: latents must be [V, C, t, h, w] and cameras [V, T], got "
                         f"{tuple(out.raw_latents.shape)} and {tuple(out.cameras.shape)}")
    v, t = out.cameras.shape
    if out.raw_latents.shape[0] != v or len(out.names) != v or t != num_frames or len(out.frame_times) != t:
        raise ValueError(f"teacher output: {out.raw_latents.shape[0]} latent videos, {len(out.names)} names, "
                         f"cameras {v}x{t} and {len(out.frame_times)} frame times for {num_frames} input frames")
    return out
