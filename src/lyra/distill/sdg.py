"""Synthetic data generation (SDG): run the teacher over input images and write shards.

For every input (a procedural world, or one of the user's images) the teacher generates the six
trajectory videos in latent space; the tokenizer decodes them; a depth estimator (the
:class:`~lyra.teacher.depth.DepthEstimator` protocol) estimates the depth of every decoded frame. The
raw latents, the decoded frames (uint8), the cameras and the depth go into shards
(:mod:`lyra.shards`), the student's training data.

Planning, sharding and resuming:

* the requested range ``[start, start + count)`` of the source is cut into shards of ``shard_size``
  samples: shard ``k`` holds items ``start + [k·S, (k+1)·S)``;
* rank ``r`` of ``W`` processes (``accelerate.PartialState``; one process without a launcher) makes
  the shards ``k ≡ r (mod W)``. Every random draw follows from the sample (noise seed
  ``mix_seed(seed, world seed or image index)``) and the teacher runs over the scenes of one shard at
  a time, so shard bytes do not depend on ``W``: the union over ranks equals a one-process run;
* shards are written atomically; a rerun skips every shard that exists and whose header matches the
  run (settings and sample ids), so a killed run continues without duplicates or holes. An existing
  folder made with other settings is refused (:class:`~lyra.errors.ConfigError`).

Dynamic scenes (``WorldSource(dynamic=True)``, ``lyra sdg --dynamic``): the input is a monocular video (the
dynamic world seen by its static input camera over the frame times ``t_f``) and the teacher runs in its
dynamic mode (:class:`~lyra.teacher.pipeline.TeacherPipeline` with ``video=``): frame ``f`` of every
trajectory shows time ``t_f``. With **motion reversal** (default for dynamic sources) the same video is also
generated reversed in time (:func:`reversed_request`: frames, depths, cameras and times flipped, same
trajectory cameras, noise seed ``mix_seed(noise_seed, 1)``), and the sample holds both: ``2 × 6``
trajectories, the reversed six after the forward six, with each frame's time (``times [12, T]``) — so for
every time ``τ`` twelve frames show the scene at ``τ`` (six at camera step ``f`` with ``t_f = τ``, six at
step ``T − 1 − f``). Shards record the layout (``directions``, :mod:`lyra.shards`).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lyra.errors import ConfigError, FormatError, InputFileError
from lyra.geometry.cameras import Cameras
from lyra.shards import (
    MANIFEST_NAME,
    SdgSample,
    check_settings,
    ensure_output_dir,
    read_manifest,
    read_shard_header,
    scan_manifest,
    shard_files,
    shard_name,
    write_manifest,
    write_shard,
)
from lyra.weights.hub import weights_digest  # noqa: F401  (re-exported: tests and the trainer use it here)

__all__ = [
    "ImageSource",
    "PipelineTeacher",
    "REVERSED_STREAM",
    "SceneRequest",
    "SceneResult",
    "SdgReport",
    "SdgTeacher",
    "ShardPlan",
    "SourceItem",
    "WorldSource",
    "estimate_frame_depth",
    "generate_sdg",
    "plan_shards",
    "rank_shards",
    "merge_directions",
    "resolve_rank",
    "reversed_request",
    "weights_digest",
]

#: Frame sides the teacher accepts are multiples of this (8× tokenizer, 2 × 2 denoiser patches).
SIDE_MULTIPLE = 16
#: Rank 0 rewrites ``sdg.json`` after a shard at most this often (and always at the end).
MANIFEST_EVERY_S = 30.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: The reversed direction's noise seed is ``mix_seed(noise_seed, REVERSED_STREAM)``.
REVERSED_STREAM = 1


# ------------------------------------------------------------------------------------ the teacher
@dataclass
class SceneRequest:
    """One input for the teacher.

    Attributes:
        image: ``[3, H, W]`` float in [0, 1].
        depth: ``[H, W]`` z-depth to lift the image with, or ``None`` (the teacher estimates it).
        camera: the input camera (batch shape ``[]``, ``W × H``) or ``None`` (the teacher's default).
        trajectories: ``Cameras [V, T]`` or ``None`` (the teacher draws the six GEN3C trajectories).
        noise_seed: seed of the starting noise (and of any trajectory draw).
        video: dynamic scenes: the input video ``[T, 3, H, W]`` in [0, 1] (``image`` is its frame 0), else ``None``.
        video_depth: dynamic: ``[T, H, W]`` per-frame z-depth, or ``None`` (the teacher estimates it per frame).
        video_cameras: dynamic: ``Cameras [T]`` of the frames, or ``None`` (``camera`` at every frame).
        times: dynamic: ``[T]`` frame times in [0, 1] (monotonic), or ``None`` (``f / (T − 1)``).
    """

    image: Tensor
    depth: Tensor | None
    camera: Cameras | None
    trajectories: Cameras | None
    noise_seed: int
    video: Tensor | None = None
    video_depth: Tensor | None = None
    video_cameras: Cameras | None = None
    times: Tensor | None = None

    @property
    def dynamic(self) -> bool:
        return self.video is not None


@dataclass
class SceneResult:
    """The teacher's output for one :class:`SceneRequest`.

    Attributes:
        latents: *raw* (de-normalised) tokenizer latents ``[V, C, t, h, w]`` (``C`` the teacher's tokenizer's
            latent channels: 16 for the Cosmos tokenizer).
        videos: decoded frames ``[V, T, 3, H, W]`` float in [0, 1], cropped to the image size.
        cameras: ``Cameras [V, T]`` of the frames (``W × H``).
        input_depth: ``[H, W]`` the depth the image was lifted with.
        times: dynamic: ``[V, T]`` the time of every frame, else ``None``.
        input_video_depth: dynamic: ``[T, H, W]`` the per-frame depth the video was lifted with, else ``None``.
    """

    latents: Tensor
    videos: Tensor
    cameras: Cameras
    input_depth: Tensor
    times: Tensor | None = None
    input_video_depth: Tensor | None = None


@runtime_checkable
class SdgTeacher(Protocol):
    """What SDG needs from a teacher: ``generate(requests, steps) -> results`` and weight hashes."""

    def generate(self, requests: Sequence[SceneRequest], steps: int) -> list[SceneResult]: ...

    def weight_hashes(self) -> dict[str, str]: ...


class PipelineTeacher:
    """:class:`SdgTeacher` over a :class:`~lyra.teacher.pipeline.TeacherPipeline`.

    ``generate`` with one request (or requests without given trajectories) calls the pipeline itself
    (:meth:`TeacherPipeline.__call__ <lyra.teacher.pipeline.TeacherPipeline.__call__>` and
    :meth:`~lyra.teacher.pipeline.TeacherPipeline.decode`). Several requests with given trajectories run
    as **one batch**: the depth estimator over all images at once, each scene's warp conditions, then
    the sampler over all ``B × V`` trajectories with each scene's own starting noise (drawn exactly as
    the pipeline draws it from the scene's seed) and one tokenizer decode — the same computation as ``B``
    pipeline calls, up to floating-point summation order in batched kernels. Dynamic requests (with a
    ``video``) use the dynamic 3D cache, in both paths.

    Args:
        pipe: the pipeline.
        tokenizer_weights, depth_weights: folders/files of the tokenizer and depth weights, hashed into
            the shard headers (``None``: recorded as ``None``).
        composite: the frames are composited in pixel space: the warped input where the warp has data, the
            teacher's decoded frames only in its holes (:func:`lyra.teacher.conditioning.composite_frames`); the
            latents stay the teacher's.
    """

    def __init__(self, pipe: Any, tokenizer_weights: str | os.PathLike | None = None,
                 depth_weights: str | os.PathLike | None = None, composite: bool = False) -> None:
        self.pipe = pipe
        self.composite = composite
        self._hashes = {
            "teacher": weights_digest(pipe.weights) if getattr(pipe, "weights", None) is not None else None,
            "tokenizer": weights_digest(tokenizer_weights) if tokenizer_weights is not None else None,
            "depth": weights_digest(depth_weights) if depth_weights is not None else None,
        }

    def weight_hashes(self) -> dict[str, str | None]:
        return dict(self._hashes)

    def generate(self, requests: Sequence[SceneRequest], steps: int) -> list[SceneResult]:
        if len(requests) > 1 and all(r.trajectories is not None for r in requests):
            return self._generate_batch(requests, steps)
        out = []
        for r in requests:
            if r.dynamic:
                res = self.pipe(video=r.video, video_depth=r.video_depth, video_cameras=r.video_cameras, times=r.times,
                                camera=r.camera, trajectories=r.trajectories, seed=r.noise_seed, steps=steps,
                                progress=False)
            else:
                res = self.pipe(r.image, depth=r.depth, camera=r.camera, trajectories=r.trajectories,
                                seed=r.noise_seed, steps=steps, progress=False)
            videos = self.pipe.decode(res)
            if self.composite:
                from lyra.teacher.conditioning import composite_frames

                videos = composite_frames(videos, res.conditions.rgb, res.conditions.mask)
            out.append(SceneResult(res.raw_latents, videos, res.cameras, res.depth,
                                   res.frame_times if res.dynamic else None, res.video_depth))
        return out

    @torch.no_grad()
    def _generate_batch(self, requests: Sequence[SceneRequest], steps: int) -> list[SceneResult]:
        from lyra.seeds import mix_seed
        from lyra.teacher.conditioning import Conditions, composite_frames, warp_conditions, warp_conditions_dynamic
        from lyra.teacher.pipeline import _NOISE_STREAM, TeacherPipeline
        from lyra.teacher.sampler import sample

        pipe, dev = self.pipe, self.pipe.device
        tok = pipe.tokenizer
        H, W = requests[0].image.shape[-2:]
        for r in requests:
            if tuple(r.image.shape[-2:]) != (H, W) or (r.trajectories.width, r.trajectories.height) != (W, H):
                raise ConfigError("a teacher batch needs images and trajectory cameras of one size")
            pipe.check_size(H, W, int(r.trajectories.shape[-1]))
        # every request's input frames [N, 3, H, W] (one image, or a video) and their depth where given
        frames = [(r.video if r.dynamic else r.image[None]).to(dev, torch.float32).clamp(0.0, 1.0) for r in requests]
        depths: list[Tensor | None] = [
            None if (r.video_depth if r.dynamic else r.depth) is None
            else (r.video_depth if r.dynamic else r.depth[None]).to(dev, torch.float32) for r in requests]
        need = [i for i, d in enumerate(depths) if d is None]
        if need:
            if pipe.depth_estimator is None:
                raise ConfigError("no depth map given and the pipeline has no depth estimator")
            todo = torch.cat([frames[i] for i in need])
            est = torch.cat([pipe.depth_estimator(part).depth for part in todo.split(32)]).to(dev, torch.float32)
            for i, part in zip(need, est.split([len(frames[i]) for i in need]), strict=True):
                depths[i] = part
        conds, noises, times = [], [], []
        fill = bool(getattr(pipe.denoiser, "fills_holes", False))
        for r, fr, depth in zip(requests, frames, depths, strict=True):
            camera = r.camera if r.camera is not None else r.trajectories[0, 0]
            if r.dynamic:
                T = fr.shape[0]
                if int(r.trajectories.shape[-1]) != T:
                    raise ConfigError(f"the trajectories have {r.trajectories.shape[-1]} frames but the video {T}")
                vc = r.video_cameras if r.video_cameras is not None else Cameras(
                    camera.K.expand(T, 3, 3), camera.c2w.expand(T, 4, 4), W, H)
                c = warp_conditions_dynamic(fr, depth, vc.to(dev), r.trajectories.to(dev), tok, fill=fill)
                t = TeacherPipeline._check_times(r.times, T)
                times.append(t.reshape(1, T).expand(len(c), T).clone())
            else:
                c = warp_conditions(fr[0], depth[0], camera.to(dev), r.trajectories.to(dev), tok, fill=fill)
                times.append(None)
            conds.append(c)
            g = torch.Generator().manual_seed(mix_seed(r.noise_seed, _NOISE_STREAM))
            noises.append(torch.randn(c.latents.shape, generator=g))
        cond = Conditions(torch.cat([c.latents for c in conds]).to(dev),
                          torch.cat([c.mask_latents for c in conds]).to(dev))
        lat = sample(pipe.denoiser, cond, steps=steps, noise=torch.cat(noises).to(dev), progress=False)
        raw = tok.denormalize(lat)
        videos = tok.decode(raw.to(tok.device))[..., :H, :W].cpu()
        if self.composite:
            videos = composite_frames(videos, torch.cat([c.rgb for c in conds]), torch.cat([c.mask for c in conds]))
        V = [len(c) for c in conds]
        return [SceneResult(lt.cpu(), vd, r.trajectories.to("cpu"), d[0].cpu(), t, d.cpu() if r.dynamic else None)
                for lt, vd, r, d, t in zip(raw.split(V), videos.split(V), requests, depths, times, strict=True)]


def reversed_request(request: SceneRequest) -> SceneRequest:
    """The motion-reversal twin of a dynamic request: the video, its depth, cameras and times flipped in time
    (frame ``f`` ← frame ``T − 1 − f``; ``image`` = the last frame), the same trajectory cameras (frame ``f``
    of each trajectory then shows time ``t_{T−1−f}``) and noise seed ``mix_seed(noise_seed, 1)``."""
    from lyra.seeds import mix_seed
    from lyra.teacher.pipeline import default_times

    if not request.dynamic:
        raise ConfigError("motion reversal needs a dynamic request (a video)")
    T = request.video.shape[0]
    times = request.times if request.times is not None else default_times(T)
    vc = request.video_cameras
    if vc is None and request.camera is not None:
        vc = Cameras(request.camera.K.expand(T, 3, 3), request.camera.c2w.expand(T, 4, 4), request.camera.width,
                     request.camera.height)
    flipped_cams = None if vc is None else Cameras(vc.K.flip(0), vc.c2w.flip(0), vc.width, vc.height)
    return SceneRequest(
        image=request.video[-1], depth=None if request.video_depth is None else request.video_depth[-1],
        camera=None if flipped_cams is None else flipped_cams[0], trajectories=request.trajectories,
        noise_seed=mix_seed(request.noise_seed, REVERSED_STREAM), video=request.video.flip(0),
        video_depth=None if request.video_depth is None else request.video_depth.flip(0),
        video_cameras=flipped_cams, times=times.flip(0))


def merge_directions(forward: SceneResult, reverse: SceneResult) -> SceneResult:
    """One :class:`SceneResult` of ``2V`` trajectories: the forward ``V`` then the reversed ``V`` (their
    latents, videos, cameras and per-frame times concatenated); the input depth is the forward one's."""
    if forward.times is None or reverse.times is None:
        raise ConfigError("merge_directions needs dynamic results (with times)")
    cams = Cameras.cat([forward.cameras, reverse.cameras])
    return SceneResult(torch.cat([forward.latents, reverse.latents]), torch.cat([forward.videos, reverse.videos]),
                       cams, forward.input_depth, torch.cat([forward.times, reverse.times]),
                       forward.input_video_depth)


# ------------------------------------------------------------------------------------ sources
@dataclass
class SourceItem:
    """One input of a source: the teacher's request fields, plus provenance and optional ground truth.

    ``gt_depth`` ``[V, T, H, W]``: exact depth of every trajectory frame (for motion reversal: of the forward
    and then the reversed trajectories). Dynamic items also carry ``video`` ``[T, 3, H, W]``, ``video_depth``
    ``[T, H, W]`` (or ``None``: estimated), ``video_cameras`` ``Cameras [T]`` and ``times`` ``[T]``.
    """

    key: str
    world_seed: int | None
    image: Tensor
    depth: Tensor | None
    camera: Cameras | None
    trajectories: Cameras | None
    gt_depth: Tensor | None = None
    video: Tensor | None = None
    video_depth: Tensor | None = None
    video_cameras: Cameras | None = None
    times: Tensor | None = None

    def request(self, noise_seed: int) -> SceneRequest:
        """The teacher request of this item (forward in time)."""
        return SceneRequest(self.image, self.depth, self.camera, self.trajectories, noise_seed, self.video,
                            self.video_depth, self.video_cameras, self.times)


def crop_to_multiple(image: Tensor, multiple: int = SIDE_MULTIPLE) -> tuple[int, int, int, int]:
    """``(left, top, width, height)`` of the centred crop of ``image [..., H, W]`` to sides multiple of ``multiple``."""
    H, W = image.shape[-2:]
    h, w = H - H % multiple, W - W % multiple
    if h == 0 or w == 0:
        raise ConfigError(f"frames {W}x{H} are smaller than {multiple} pixels")
    return (W - w) // 2, (H - h) // 2, w, h


class WorldSource:
    """Procedural worlds of a split (:func:`lyra.world.split_seeds`): item ``i`` is the ``i``-th seed.

    The world's input image is the teacher's input, its ground-truth trajectory cameras the
    trajectories (so that the teacher's frames can later be compared with ground truth); the input
    depth is the teacher's estimate unless ``gt_depth``. ``store_gt`` keeps the exact world depth of
    every frame. Frames are centre-cropped to sides that are multiples of 16.

    ``dynamic``: dynamic worlds; the input is the input camera's video over the frame times (its exact
    per-frame depth with ``gt_depth``, else estimated per frame), the teacher runs in its dynamic mode, and
    with ``motion_reversal`` every sample also holds the six trajectories generated from the reversed video
    (module doc).
    """

    def __init__(self, split: str = "train", preset: str = "tiny", gt_depth: bool = False, store_gt: bool = False,
                 device: torch.device | str = "cpu", dynamic: bool = False, motion_reversal: bool = True) -> None:
        from lyra.world import get_preset, split_seeds

        self.seeds = split_seeds(split)
        self.split = split
        self.preset = get_preset(preset).name
        self.gt_depth = gt_depth
        self.store_gt = store_gt
        self.device = torch.device(device)
        self.dynamic = dynamic
        self.motion_reversal = bool(dynamic and motion_reversal)
        self.name = f"world-{split}" + ("-dynamic" if dynamic else "")
        self.trajectory_set = "world-gt" + ("+reversed" if self.motion_reversal else "")

    @property
    def directions(self) -> list[str]:
        """``["forward"]``, or ``["forward", "reversed"]`` with motion reversal."""
        return ["forward", "reversed"] if self.motion_reversal else ["forward"]

    def __len__(self) -> int:
        return len(self.seeds)

    def settings(self) -> dict[str, Any]:
        out = {"kind": "world", "split": self.split, "world_preset": self.preset, "trajectories": self.trajectory_set}
        if self.dynamic:
            out |= {"dynamic": True, "motion_reversal": self.motion_reversal}
        return out

    def key(self, index: int) -> str:
        return str(self.seeds[index])

    def world_seed(self, index: int) -> int | None:
        return self.seeds[index]

    def noise_key(self, index: int) -> int:
        return self.seeds[index]

    def load(self, indices: Sequence[int]) -> list[SourceItem]:
        """Render the items' worlds in one batch: only the input view (image and depth), unless
        ``store_gt`` asks for the depth of every frame (then all ``1 + 6·(T − 1)`` views)."""
        from lyra.world import SceneBatch, render, render_samples, sample_world

        if self.dynamic:
            return self._load_dynamic(indices)
        worlds = [sample_world(self.seeds[i], self.preset) for i in indices]
        if self.store_gt:
            examples = render_samples(worlds, self.device)
            views = [(ex.image, ex.depth, ex.depths) for ex in examples]
        else:
            n = len(worlds)
            cams = Cameras.cat([ws.input_camera.reshape(1) for ws in worlds]).to(self.device)
            res = render(SceneBatch.pack([ws.scene for ws in worlds], self.device), cams,
                         torch.zeros(n, device=self.device), torch.arange(n, device=self.device))
            views = [(res.rgb[k], res.depth[k], None) for k in range(n)]
        items = []
        for ws, (image, depth, depths) in zip(worlds, views, strict=True):
            left, top, w, h = crop_to_multiple(image)
            ys, xs = slice(top, top + h), slice(left, left + w)
            cams = ws.cameras.crop(left, top, w, h)
            items.append(SourceItem(
                key=str(ws.scene.seed), world_seed=ws.scene.seed, image=image[:, ys, xs].contiguous(),
                depth=depth[ys, xs].contiguous() if self.gt_depth else None, camera=cams[0, 0], trajectories=cams,
                gt_depth=None if depths is None else depths[..., ys, xs].contiguous()))
        return items

    def _load_dynamic(self, indices: Sequence[int]) -> list[SourceItem]:
        """Dynamic worlds in one render call: the input camera at every frame time (the input video), and with
        ``store_gt`` every trajectory camera at its frame's time (and, for motion reversal, at the reversed
        time ``t_{T−1−f}``) for the exact depth."""
        from lyra.world import SceneBatch, render, sample_world

        worlds = [sample_world(self.seeds[i], self.preset, dynamic=True) for i in indices]
        cams, times, scene = [], [], []
        for k, ws in enumerate(worlds):
            t = ws.frame_times
            T = len(t)
            ic = ws.input_camera
            parts = [(Cameras(ic.K.expand(T, 3, 3), ic.c2w.expand(T, 4, 4), ic.width, ic.height), t)]
            if self.store_gt:
                V = ws.cameras.shape[0]
                parts.append((ws.cameras.flatten(), t.repeat(V)))
                if self.motion_reversal:
                    parts.append((ws.cameras.flatten(), t.flip(0).repeat(V)))
            for c, tt in parts:
                cams.append(c)
                times.append(tt)
                scene.append(torch.full((len(c),), k, dtype=torch.long))
        dev = self.device
        res = render(SceneBatch.pack([ws.scene for ws in worlds], dev), Cameras.cat(cams).to(dev),
                     torch.cat(times).to(dev), torch.cat(scene).to(dev))
        items, n = [], 0
        for ws in worlds:
            T = len(ws.frame_times)
            V = ws.cameras.shape[0]
            count = T + (V * T * len(self.directions) if self.store_gt else 0)
            rgb, depth = res.rgb[n:n + count], res.depth[n:n + count]
            n += count
            left, top, w, h = crop_to_multiple(rgb[0])
            ys, xs = slice(top, top + h), slice(left, left + w)
            video, vdepth = rgb[:T, :, ys, xs].contiguous(), depth[:T, ys, xs].contiguous()
            traj = ws.cameras.crop(left, top, w, h)
            ic = traj[0, 0]
            gt = depth[T:, ys, xs].reshape(-1, T, h, w).contiguous() if self.store_gt else None
            items.append(SourceItem(
                key=str(ws.scene.seed), world_seed=ws.scene.seed, image=video[0], depth=vdepth[0] if self.gt_depth
                else None, camera=ic, trajectories=traj, gt_depth=gt, video=video,
                video_depth=vdepth if self.gt_depth else None,
                video_cameras=Cameras(ic.K.expand(T, 3, 3), ic.c2w.expand(T, 4, 4), w, h),
                times=ws.frame_times.clone()))
        return items


def load_input_image(path: Path, height: int, width: int) -> Tensor:
    """``[3, height, width]`` in [0, 1]: :func:`lyra.inputs.load_image` then :func:`lyra.inputs.fit_to_size`
    (centre crop to the aspect, antialiased bicubic resize)."""
    from lyra.inputs import fit_to_size, load_image

    return fit_to_size(load_image(path), height, width)[0].contiguous()


def photo_input_camera(path: Path, height: int, width: int) -> tuple[Cameras, str]:
    """The input camera of the photo at ``path`` once fitted to ``height × width`` as :func:`load_input_image`
    fits it (batch shape ``[]``, identity ``c2w``, OpenCV): its EXIF focal length when present
    (:func:`lyra.inputs_exif.exif_focal_px`, in pixels of the stored image, then scaled and cropped with it),
    else the default 50° vertical field of view, as ``lyra generate`` assumes. Returns the camera and a note of
    where its intrinsics came from."""
    from lyra.geometry.intrinsics import photo_camera
    from lyra.inputs import fit_cameras_to_size, stored_image_size
    from lyra.inputs_exif import exif_focal_px

    size = stored_image_size(path)
    if size is None:
        raise InputFileError(f"{path}: not a readable image")
    h0, w0 = size
    exif = exif_focal_px(path, w0, h0)
    cam, note = photo_camera(h0, w0, exif_focal_px=exif[0] if exif else None, exif_note=exif[1] if exif else None)
    return fit_cameras_to_size(cam, height, width), note


class ImageSource:
    """The images of a folder (``.png .jpg .jpeg .webp .bmp .tif .tiff``), sorted by name: item ``i`` is
    the ``i``-th file, the way ``lyra generate`` takes a user's photo. Each is centre-cropped to the aspect of
    ``height × width`` and resized; its input camera comes from its EXIF focal length when it has one, else the
    default 50° vertical field of view (:func:`photo_input_camera`); the teacher estimates its depth and draws the
    six GEN3C trajectories from the sample's noise seed.

    Every file's header is read up front, so an unreadable image fails before any model is loaded or any shard
    is written (``InputFileError`` naming it)."""

    trajectory_set = "gen3c6"

    def __init__(self, folder: str | os.PathLike, height: int, width: int) -> None:
        from lyra.inputs import stored_image_size

        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputFileError(f"--images {self.folder}: no such folder")
        self.files = sorted(p for p in self.folder.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not self.files:
            raise InputFileError(f"--images {self.folder}: holds no images ({' '.join(IMAGE_SUFFIXES)})")
        if height % SIDE_MULTIPLE or width % SIDE_MULTIPLE:
            raise ConfigError(f"image size {width}x{height}: sides must be multiples of {SIDE_MULTIPLE}")
        bad = [p.name for p in self.files if stored_image_size(p) is None]
        if bad:
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise InputFileError(f"--images {self.folder}: {bad[0]}{more} cannot be read as an image; remove or "
                                 "convert them")
        self.height, self.width = height, width
        self.name = "images"

    def __len__(self) -> int:
        return len(self.files)

    def settings(self) -> dict[str, Any]:
        names = "".join(f"{p.name}\n" for p in self.files)
        return {"kind": "images", "folder": self.folder.resolve().name, "files": len(self.files),
                "files_sha256": hashlib.sha256(names.encode()).hexdigest(), "size": [self.height, self.width],
                "trajectories": self.trajectory_set, "camera": "exif-or-default"}

    def key(self, index: int) -> str:
        return self.files[index].name

    def world_seed(self, index: int) -> int | None:
        return None

    def noise_key(self, index: int) -> int:
        return index

    def camera(self, index: int) -> tuple[Cameras, str]:
        """Item ``index``'s input camera and where it came from (:func:`photo_input_camera`)."""
        return photo_input_camera(self.files[index], self.height, self.width)

    def load(self, indices: Sequence[int]) -> list[SourceItem]:
        return [SourceItem(key=self.files[i].name, world_seed=None,
                           image=load_input_image(self.files[i], self.height, self.width), depth=None,
                           camera=self.camera(i)[0], trajectories=None) for i in indices]


# ------------------------------------------------------------------------------------ planning
@dataclass(frozen=True)
class ShardPlan:
    """Shard ``index`` holds source items ``items`` (absolute indices into the source)."""

    index: int
    items: tuple[int, ...]


def plan_shards(start: int, count: int, shard_size: int) -> list[ShardPlan]:
    """Cut ``[start, start + count)`` into shards: shard ``k`` holds ``start + [k·S, min((k+1)·S, count))``."""
    if start < 0 or count < 1 or shard_size < 1:
        raise ConfigError(f"need start >= 0, count >= 1 and shard size >= 1; got {start}, {count}, {shard_size}")
    return [ShardPlan(k, tuple(range(start + k * shard_size, start + min((k + 1) * shard_size, count))))
            for k in range(math.ceil(count / shard_size))]


def rank_shards(plans: Sequence[ShardPlan], rank: int, world_size: int) -> list[ShardPlan]:
    """The shards rank ``rank`` of ``world_size`` makes: those with ``index ≡ rank (mod world_size)``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, world_size), got rank {rank} of {world_size}")
    return [p for p in plans if p.index % world_size == rank]


def resolve_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: as given, or from ``accelerate.PartialState`` (1 process without a launcher)."""
    if (rank is None) != (world_size is None):
        raise ConfigError("give both rank and world_size, or neither")
    if rank is not None:
        return int(rank), int(world_size)  # type: ignore[arg-type]
    from accelerate import PartialState

    state = PartialState()
    return state.process_index, state.num_processes


# ------------------------------------------------------------------------------------ per-frame depth
@torch.no_grad()
def estimate_frame_depth(estimator: Any, rgb: Tensor, chunk: int = 32, device: torch.device | str | None = None
                         ) -> Tensor:
    """Depth ``[V, T, H, W]`` float32 (CPU) of frames ``rgb [V, T, H, W, 3]`` uint8, via ``estimator``
    (a :class:`~lyra.teacher.depth.DepthEstimator`), ``chunk`` frames per call."""
    V, T, H, W, _ = rgb.shape
    frames = rgb.reshape(V * T, H, W, 3)
    out = []
    for part in frames.split(chunk):
        x = part.to(device or "cpu").permute(0, 3, 1, 2).float() / 255.0
        out.append(estimator(x).depth.float().cpu())
    return torch.cat(out).reshape(V, T, H, W)


# ------------------------------------------------------------------------------------ the run
@dataclass
class SdgReport:
    """What one process did: shards written and skipped, samples generated, time, rank."""

    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    samples: int = 0
    seconds: float = 0.0
    rank: int = 0
    world_size: int = 1
    manifest: Path | None = None
    stopped_early: bool = False  # the max_seconds budget ran out before all of this rank's shards were made

    @property
    def scenes_per_min(self) -> float:
        return 60.0 * self.samples / self.seconds if self.seconds > 0 else 0.0


def _progress_postfix(bar: tqdm, done: int, t0: float) -> None:
    dt = time.perf_counter() - t0
    if dt > 0 and done:
        bar.set_postfix_str(f"{60.0 * done / dt:.2f} scenes/min")


def _check_existing(root: Path, settings: dict[str, Any]) -> dict[int, bool]:
    """Refuse a folder made with other settings; return ``{shard index: header readable}``."""
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        try:
            found = read_manifest(root)
        except FormatError:
            found = None  # rebuilt from the shards below
        if found is not None and found.get("settings") is not None:
            check_settings(found["settings"], settings, str(root))
    status: dict[int, bool] = {}
    for index, path in shard_files(root).items():
        try:
            h = read_shard_header(path)
        except FormatError as e:
            warnings.warn(f"{e} — it will be regenerated if it is in the requested range", stacklevel=3)
            status[index] = False
            continue
        check_settings(h.settings, settings, str(root))
        status[index] = True
    return status


def _remove_stale_temps(root: Path, mine: Sequence[ShardPlan]) -> None:
    """Delete temporary files left by interrupted writes of this rank's shards (only this rank writes them)."""
    stems = {Path(shard_name(p.index)).stem for p in mine}
    for p in root.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp.safetensors"):
            stem = p.name[1:].split(".", 1)[0]
            if stem in stems:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


def _chunks(items: Sequence[int], n: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), max(1, n)):
        yield items[i:i + n]


def run_settings(source: Any, teacher: SdgTeacher, *, preset: str, start: int, shard_size: int, steps: int,
                 seed: int, depth: str, depth_hash: str | None, store_plucker: bool = False) -> dict[str, Any]:
    """The settings that define an SDG data set (stored in every shard header; must match on resume).
    ``store_plucker`` adds ``"plucker": "stored"`` (absent otherwise, so folders made before it still match)."""
    input_depth = "gt" if getattr(source, "gt_depth", False) else "estimate"
    weights = dict(teacher.weight_hashes())
    weights["frame_depth"] = depth_hash
    settings = {"preset": preset, "source": source.settings(), "start": start, "shard_size": shard_size,
                "steps": steps, "seed": seed, "input_depth": input_depth, "frame_depth": depth,
                "store_gt": bool(getattr(source, "store_gt", False)), "weights": weights}
    if store_plucker:
        settings["plucker"] = "stored"
    if getattr(teacher, "composite", False):
        settings["frames"] = "composite"  # absent: the teacher's decoded frames (folders made before it still match)
    return settings


def generate_sdg(
    out_dir: str | os.PathLike,
    source: Any,
    teacher: SdgTeacher,
    frame_depth: Any,
    *,
    preset: str,
    start: int = 0,
    count: int = 8,
    shard_size: int = 8,
    steps: int = 35,
    seed: int = 0,
    batch_size: int = 1,
    depth_name: str = "tiny",
    depth_hash: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    barrier: Any = None,
    max_seconds: float | None = None,
    plucker_encoder: Any = None,
) -> SdgReport:
    """Generate (or complete) the SDG set ``[start, start + count)`` of ``source`` in ``out_dir``.

    Args:
        out_dir: the SDG folder (created if missing; its parent must exist).
        source: :class:`WorldSource` or :class:`ImageSource` (anything with their methods).
        teacher: an :class:`SdgTeacher` (e.g. :class:`lyra.distill.sdg.PipelineTeacher`).
        frame_depth: a :class:`~lyra.teacher.depth.DepthEstimator` run on every decoded frame.
        preset: the teacher preset's name (recorded).
        start, count, shard_size: the planned range and the shard size ``S``.
        steps: the teacher's sampling steps; seed: base of every sample's noise seed.
        batch_size: scenes per teacher call (within one shard).
        depth_name, depth_hash: the frame-depth estimator's name and weights hash (recorded).
        rank, world_size: this process's share (default: ``accelerate.PartialState``).
        device: where the frame-depth estimator runs (the teacher has its own device).
        progress: show a tqdm bar (scenes and scenes/min).
        barrier: a callable all processes reach before the final manifest is written (default:
            ``PartialState().wait_for_everyone`` when ``rank`` was not given).
        max_seconds: a wall-time budget: no new shard is started once it is spent (at least one shard is
            made; the shards written are complete; rerunning the same call continues). ``report.stopped_early`` says so.
        plucker_encoder: the tokenizer (:class:`~lyra.tokenizer.Tokenizer`) whose Plücker latents of every scene's
            cameras are stored with it (``plucker``), so that student training need not compute them; ``None``:
            not stored.

    Returns:
        an :class:`SdgReport`. Raises :class:`~lyra.errors.ConfigError` when ``out_dir`` holds
        shards or a manifest made with other settings.
    """
    explicit_rank = rank is not None
    rank, world_size = resolve_rank(rank, world_size)
    if not 0 <= start or start + count > len(source):
        raise ConfigError(f"--start {start} --count {count} leaves the source's {len(source)} items "
                          f"(items [{start}, {start + count}) were asked for)")
    root = ensure_output_dir(out_dir)
    settings = run_settings(source, teacher, preset=preset, start=start, shard_size=shard_size, steps=steps, seed=seed,
                            depth=depth_name, depth_hash=depth_hash, store_plucker=plucker_encoder is not None)
    plans = plan_shards(start, count, shard_size)
    mine = rank_shards(plans, rank, world_size)
    readable = _check_existing(root, settings)
    _remove_stale_temps(root, mine)
    plan_record = {"start": start, "count": count, "shard_size": shard_size}

    from lyra.seeds import mix_seed

    def expected_ids(plan: ShardPlan) -> list[str]:
        return [f"{source.name}:{source.key(i)}:{source.trajectory_set}" for i in plan.items]

    directions = list(getattr(source, "directions", ["forward"]))
    todo = []
    report = SdgReport(rank=rank, world_size=world_size)
    for plan in mine:
        path = root / shard_name(plan.index)
        if readable.get(plan.index) and read_shard_header(path).sample_ids == expected_ids(plan):
            report.skipped.append(plan.index)
        else:
            todo.append(plan)
    total = sum(len(p.items) for p in todo)
    t0 = last_manifest = time.perf_counter()
    bar = tqdm(total=total, unit="scene", desc=f"sdg rank {rank}/{world_size}" if world_size > 1 else "sdg",
               disable=not progress, dynamic_ncols=True)
    try:
        for n_done, plan in enumerate(todo):
            if n_done and max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                report.stopped_early = True
                break
            samples: list[SdgSample] = []
            ids = expected_ids(plan)
            for part in _chunks(plan.items, batch_size):
                items = source.load(part)
                noise = [mix_seed(seed, source.noise_key(i)) for i in part]
                requests = [it.request(n) for it, n in zip(items, noise, strict=True)]
                if "reversed" in directions:  # both directions of every scene in one teacher batch
                    results = teacher.generate(requests + [reversed_request(r) for r in requests], steps)
                    results = [merge_directions(f, r) for f, r in zip(results[:len(part)], results[len(part):],
                                                                       strict=True)]
                else:
                    results = teacher.generate(requests, steps)
                for it, res, n in zip(items, results, noise, strict=True):
                    samples.append(_to_sample(ids[len(samples)], it, res, n, frame_depth, device, plucker_encoder))
                bar.update(len(part))
                report.samples += len(part)
                _progress_postfix(bar, report.samples, t0)
            write_shard(root / shard_name(plan.index), plan.index, samples, settings, directions)
            report.written.append(plan.index)
            if rank == 0 and time.perf_counter() - last_manifest > MANIFEST_EVERY_S:
                write_manifest(root, scan_manifest(root, settings, plan_record))
                last_manifest = time.perf_counter()
    finally:
        bar.close()
    report.seconds = time.perf_counter() - t0
    if barrier is None and not explicit_rank and world_size > 1:
        from accelerate import PartialState

        barrier = PartialState().wait_for_everyone
    if barrier is not None:
        barrier()
    if rank == 0:
        report.manifest = write_manifest(root, scan_manifest(root, settings, plan_record))
    return report


def _to_sample(sample_id: str, item: SourceItem, res: SceneResult, noise_seed: int, frame_depth: Any,
               device: torch.device | str, plucker_encoder: Any = None) -> SdgSample:
    """Quantise the decoded frames, estimate their depth and pack one :class:`SdgSample` (CPU tensors); with a
    ``plucker_encoder`` also the Plücker latents of the cameras (as the student's trainer computes them)."""
    from lyra.media import to_uint8

    videos = res.videos.detach()
    V, T, _, H, W = videos.shape
    if tuple(res.cameras.shape) != (V, T) or (res.cameras.width, res.cameras.height) != (W, H):
        raise ConfigError(f"teacher output: cameras {tuple(res.cameras.shape)} {res.cameras.width}x"
                          f"{res.cameras.height} do not match videos {tuple(videos.shape)}")
    rgb = torch.from_numpy(to_uint8(videos.permute(0, 1, 3, 4, 2)))
    depth = estimate_frame_depth(frame_depth, rgb, device=device)
    image = torch.from_numpy(to_uint8(item.image.detach().permute(1, 2, 0)))
    gt = None if item.gt_depth is None else item.gt_depth.detach().cpu()
    dyn: dict[str, Tensor] = {}
    if item.video is not None:
        if res.times is None or res.input_video_depth is None:
            raise ConfigError("a dynamic input needs a dynamic teacher result (per-frame times and depth)")
        dyn = {"times": res.times.detach().float().cpu(),
               "input_video": torch.from_numpy(to_uint8(item.video.detach().permute(0, 2, 3, 1))),
               "input_video_depth": res.input_video_depth.detach().float().cpu()}
    if plucker_encoder is not None:
        from lyra.student.latents import LatentCache

        pl = LatentCache(plucker_encoder, 0).plucker(sample_id, res.cameras)
        if pl.shape[1] != 2 * res.latents.shape[1]:
            raise ConfigError(f"the Plücker encoder makes {pl.shape[1] // 2}-channel latents, the teacher's latents "
                              f"have {res.latents.shape[1]}: store the Plücker latents of the teacher's tokenizer")
        dyn["plucker"] = pl
    return SdgSample(sample_id, item.world_seed, noise_seed, res.latents.detach().cpu(), rgb, res.cameras.K.cpu(),
                     res.cameras.c2w.cpu(), depth, image, res.input_depth.detach().float().cpu(), gt, **dyn)
