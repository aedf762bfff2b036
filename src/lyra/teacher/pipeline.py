"""The teacher pipeline: one image → normalised latents of videos along camera trajectories (GEN3C design).

A thin composition in the style of diffusers pipelines; every stage lives in its own module:

1. depth of the input image (:mod:`lyra.teacher.depth`; skipped when a depth map is given);
2. trajectories: GEN3C's six (:func:`~lyra.geometry.trajectories.sample_gen3c_trajectories`) from the
   input camera, scaled by the scene-centre depth — the median z-depth of the finite pixels of the
   centre window (middle quarter in each direction), as the procedural worlds choose it
   (:func:`lyra.geometry.depth.center_depth_of`), falling back to the median of the whole map — or
   user-given cameras ``[V, T]``;
3. the point cache warped along every trajectory and encoded by the tokenizer
   (:func:`~lyra.teacher.conditioning.warp_conditions`);
4. the rectified-flow sampler (:func:`~lyra.teacher.sampler.sample`): all trajectories in one batch,
   starting noise drawn on the CPU from the seed (same seed → same result, on any device);
5. optionally :meth:`TeacherPipeline.decode`: latents → RGB videos through the tokenizer.

Low-memory mode (:meth:`TeacherPipeline.enable_low_memory`; default for ``official`` on CUDA): the models are
parked on the CPU and each is put on the GPU only for its stage (:func:`lyra.lowmem.resident`): depth net →
tokenizer (warp + encode, ``trajectory_batch`` trajectories at a time, the warped videos moved to the CPU,
chunked tokenizer layers) → denoiser (``trajectory_batch`` trajectories at a time) → the tokenizer again for
:meth:`~TeacherPipeline.decode`. The results are those of the plain mode up to the float rounding of other
batch sizes. Seconds and peak GPU memory of every stage are in :attr:`TeacherOutput.profile`.

Dynamic scenes (Lyra's dynamic mode): ``pipe(video=[T, 3, H, W], video_depth=[T, H, W],
video_cameras=Cameras [T], times=[T])`` — frame ``f`` of every trajectory then shows the scene at time
``t_f`` from the trajectory's camera ``f``: the conditions are the dynamic 3D cache
(:func:`~lyra.teacher.conditioning.warp_conditions_dynamic`, input frame ``f`` warped into camera ``f``), the
denoiser and the sampler are the static ones (a dynamic fine-tune of the same architecture:
``lyra train teacher --dynamic``). Without per-frame depth the depth estimator runs on every frame; without
cameras the input camera is assumed static (the default camera, or ``camera``, at every frame); times
default to ``f / (T − 1)``. The trajectories start from the camera of frame 0 and are scaled by frame 0's
centre depth. :func:`dynamic_weights_dir` / ``from_preset(..., dynamic=True)`` pick a dynamic fine-tune.

Sizes: any ``H × W`` that is a multiple of 16 (the tokenizer compresses 8 × 8, the denoiser patches
2 × 2 latent cells) and ``T = 1 + 8k`` frames. The ``tiny`` denoiser's learnable positional embedding
(diffusers' ``CosmosLearnablePositionalEmbed``, ``max_size`` (16, 128, 128) latent cells) and its RoPE
are sliced to the input's grid, so other sizes run — up to 1024 × 1024 pixels and 121 frames — but only
the rows/columns of the training grid (176 × 320, 17 frames: 11 × 20 patches, 3 latent frames) were
trained; positions beyond it keep their initial (zero) embedding, so quality there is not measured.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError, FormatError, WeightsError
from lyra.fileio import atomic_path, check_input_file
from lyra.geometry.cameras import Cameras
from lyra.geometry.depth import center_depth_of
from lyra.geometry.trajectories import TRAJECTORY_NAMES, sample_gen3c_trajectories
from lyra.lowmem import StageMeter, park, resident
from lyra.teacher.conditioning import Conditions, warp_conditions, warp_conditions_dynamic
from lyra.teacher.denoiser import TeacherDenoiser
from lyra.teacher.depth import DepthEstimator, load_depth_estimator
from lyra.teacher.sampler import sample
from lyra.tokenizer.chunked import DEFAULT_CHUNK_ELEMENTS
from lyra.tokenizer.presets import SPATIAL_COMPRESSION
from lyra.tokenizer.tokenizer import SIGMA_DATA, Tokenizer, latent_frames
from lyra.weights.hub import PRESETS, Preset, shipped_dir, weights_sha256

__all__ = ["TeacherOutput", "TeacherPipeline", "center_depth", "default_times",
           "dynamic_weights_dir", "initial_noise", "teacher_weights_dir"]

#: Image sides must be multiples of this (8× tokenizer compression × 2×2 denoiser patches).
SIZE_MULTIPLE = 16
#: Latent-file format written by :meth:`TeacherOutput.save`.
LATENTS_FORMAT = "lyra-teacher-latents"
LATENTS_VERSION = 1  # dynamic outputs add optional tensors (times, video, ...): version-1 readers skip them
# Independent random streams derived from the seed (lyra.train.runtime.mix_seed).
_NOISE_STREAM, _TRAJECTORY_STREAM = 101, 102


def teacher_weights_dir(preset: str = "tiny") -> Path:
    """Folder of the shipped teacher weights of ``preset`` (``src/lyra/weights/teacher_<preset>``)."""
    p = _preset(preset)
    if p.teacher is None:
        raise WeightsError(f"the '{preset}' teacher weights are not shipped; pass the folder of a converted "
                           "checkpoint (weights=DIR / --weights DIR)")
    return shipped_dir(p.teacher)


def dynamic_weights_dir(preset: str = "tiny") -> Path | None:
    """Folder of the shipped *dynamic* teacher fine-tune of ``preset`` (``src/lyra/weights/teacher_<preset>_dynamic``),
    or ``None`` when it is not there (then the static weights serve dynamic inputs too; see
    :meth:`TeacherPipeline.from_preset`)."""
    p = _preset(preset)
    if p.teacher_dynamic is None:
        return None
    folder = shipped_dir(p.teacher_dynamic)
    return folder if (folder / "config.json").is_file() else None


def default_times(num_frames: int) -> Tensor:
    """Frame times ``[T]``: ``f / (T − 1)`` (all 0 for one frame), as the dynamic procedural worlds use."""
    return torch.arange(num_frames, dtype=torch.float32) / max(num_frames - 1, 1)


def _preset(name: str) -> Preset:
    """The preset ``name`` of the one registry (:mod:`lyra.weights.hub`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown teacher preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def center_depth(depth: Tensor) -> float:
    """Scene-centre depth of a z-depth map ``[H, W]``: median of the finite positive pixels of the centre
    window (as :func:`lyra.geometry.depth.center_depth_of`), else of the whole map.

    Raises ConfigError when no pixel has a finite positive depth.
    """
    d = torch.where(depth > 0, depth, torch.full_like(depth, math.inf)).float().cpu()
    c = center_depth_of(d)
    if c is None:
        fin = d[torch.isfinite(d)]
        if fin.numel() == 0:
            raise ConfigError("the depth map has no finite positive value; give a valid depth map")
        c = float(fin.median())
    return c


def initial_noise(shape: tuple[int, ...] | torch.Size, seed: int) -> Tensor:
    """The sampler's starting noise for ``seed``: a standard normal ``shape`` tensor (float32, CPU) drawn from
    a CPU generator seeded with ``mix_seed(seed, 101)`` — the same on every device and in every batch."""
    from lyra.seeds import mix_seed

    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(mix_seed(seed, _NOISE_STREAM)))


# ------------------------------------------------------------------------------------------ output
@dataclass
class TeacherOutput:
    """What the teacher produces for one image (DESIGN.md "Contracts": teacher → SDG / pipeline).

    Attributes:
        latents: ``[V, C, t, h, w]`` normalised latents ``(z − mean) / std · 0.5`` (float32, CPU); ``C`` the
            tokenizer's latent channels (16 for the Cosmos tokenizer).
        latents_mean, latents_std: ``[C, t]`` the tokenizer's statistics per channel and latent frame
            (:attr:`raw_latents` de-normalises with them).
        cameras: ``Cameras [V, T]`` of the trajectories (frame 0 of each = ``input_camera``), image size
            ``W × H``.
        input_camera: ``Cameras []`` of the input view.
        image: ``[3, H, W]`` the input image in [0, 1].
        depth: ``[H, W]`` the z-depth used for the 3D cache (``inf`` allowed: sky).
        conditions: the warp :class:`~lyra.teacher.conditioning.Conditions` (latents, mask latents and,
            for visualisation, warped ``rgb [V, T, 3, H, W]`` and ``mask [V, T, H, W]`` when present).
        names: trajectory names (``V``).
        center_depth: scene-centre depth that scaled the trajectories (``nan`` for given cameras).
        seed, steps, guidance: sampler settings.
        timings: seconds per stage (``depth``, ``trajectories``, ``warp_encode``, ``denoise``; ``decode``
            after :meth:`TeacherPipeline.decode`).
        times: dynamic scenes: ``[T]`` the time in [0, 1] of frame ``f`` of every trajectory (= of input frame
            ``f``); ``None`` for a static scene.
        video: dynamic: ``[T, 3, H, W]`` the input video (``image`` is its frame 0), else ``None``.
        video_depth: dynamic: ``[T, H, W]`` the per-frame z-depth the dynamic cache used (``depth`` is frame 0's).
        video_cameras: dynamic: ``Cameras [T]`` of the input frames (``input_camera`` is frame 0's).
        profile: ``peak_gib`` (peak GPU memory per stage and ``run``, GiB; low-memory mode on CUDA, else ``None``),
            ``transfer_s`` (seconds spent moving models to the GPU, per stage; low-memory mode),
            ``denoise_groups_s`` (seconds per group of trajectories sampled together), ``low_memory``.
            Not written by :meth:`save`.
    """

    latents: Tensor
    latents_mean: Tensor
    latents_std: Tensor
    cameras: Cameras
    input_camera: Cameras
    image: Tensor
    depth: Tensor
    conditions: Conditions
    names: tuple[str, ...]
    center_depth: float
    seed: int
    steps: int
    guidance: float = 1.0
    timings: dict[str, float] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    times: Tensor | None = None
    video: Tensor | None = None
    video_depth: Tensor | None = None
    video_cameras: Cameras | None = None

    @property
    def dynamic(self) -> bool:
        """Whether this is a dynamic scene (frames at different times)."""
        return self.times is not None

    @property
    def frame_times(self) -> Tensor:
        """``[V, T]`` time of every frame of every trajectory (zeros for a static scene)."""
        V, T = self.cameras.shape
        t = self.times if self.times is not None else torch.zeros(T)
        return t.reshape(1, T).expand(V, T).clone()

    def _stats(self) -> tuple[Tensor, Tensor]:
        c, t = self.latents.shape[1:3]
        if tuple(self.latents_mean.shape) != (c, t) or self.latents_std.shape != self.latents_mean.shape:
            raise ConfigError(f"latent statistics must be [{c}, {t}] (channels, latent frames of the latents), got "
                              f"{tuple(self.latents_mean.shape)} and {tuple(self.latents_std.shape)}")
        shape = (1, c, t, 1, 1)
        return (self.latents_mean.reshape(shape).to(self.latents), self.latents_std.reshape(shape).to(self.latents))

    @property
    def raw_latents(self) -> Tensor:
        """De-normalised tokenizer latents ``[V, C, t, h, w]``: ``latents / 0.5 · std + mean``
        (what the tokenizer decodes and the student reads)."""
        mean, std = self._stats()
        return self.latents / SIGMA_DATA * std + mean

    def normalize(self, raw: Tensor) -> Tensor:
        """Raw latents ``[V, C, t, h, w]`` → normalised with this output's statistics (inverse of
        :attr:`raw_latents`)."""
        mean, std = self._stats()
        return (raw.to(self.latents) - mean) / std * SIGMA_DATA

    @property
    def num_frames(self) -> int:
        return int(self.cameras.shape[1])

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write a ``.safetensors`` file atomically: normalised latents, statistics, cameras (``K`` /
        ``c2w`` of the trajectories and the input view), input image and depth, condition latents and
        masks (dynamic scenes: also ``times``, ``video``, ``video_depth``, ``video_K``/``video_c2w``); the
        settings (seed, steps, guidance, names, centre depth, timings) in its metadata."""
        from safetensors.torch import save_file

        c, ic = self.cameras, self.input_camera
        tensors = {
            "latents": self.latents, "latents_mean": self.latents_mean, "latents_std": self.latents_std,
            "K": c.K, "c2w": c.c2w, "input_K": ic.K, "input_c2w": ic.c2w,
            "image": self.image, "depth": self.depth,
            "cond_latents": self.conditions.latents, "cond_mask_latents": self.conditions.mask_latents,
        }
        if self.times is not None:
            tensors["times"] = self.times
        for k, v in (("video", self.video), ("video_depth", self.video_depth)):
            if v is not None:
                tensors[k] = v
        if self.video_cameras is not None:
            tensors["video_K"], tensors["video_c2w"] = self.video_cameras.K, self.video_cameras.c2w
        tensors = {k: v.detach().to("cpu", torch.float32).clone().contiguous() for k, v in tensors.items()}
        meta = {
            "format": LATENTS_FORMAT, "version": str(LATENTS_VERSION), "seed": str(self.seed),
            "steps": str(self.steps), "guidance": repr(float(self.guidance)), "width": str(c.width),
            "height": str(c.height), "names": json.dumps(list(self.names)), "center_depth": repr(self.center_depth),
            "normalisation": f"(z - latents_mean) / latents_std * {SIGMA_DATA}",
            "timings": json.dumps({k: round(v, 4) for k, v in self.timings.items()}),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TeacherOutput:
        """Read a file written by :meth:`save` (conditions without the warped RGB; dynamic fields when saved)."""
        from safetensors import SafetensorError, safe_open

        p = check_input_file(path)
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                t = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError) as e:
            raise FormatError(f"{p}: not a readable safetensors file ({e})") from None
        if meta.get("format") != LATENTS_FORMAT:
            raise FormatError(f"{p}: not a teacher latents file (format {meta.get('format')!r})")
        try:
            w, h = int(meta["width"]), int(meta["height"])
            return cls(
                latents=t["latents"], latents_mean=t["latents_mean"], latents_std=t["latents_std"],
                cameras=Cameras(t["K"], t["c2w"], w, h), input_camera=Cameras(t["input_K"], t["input_c2w"], w, h),
                image=t["image"], depth=t["depth"], conditions=Conditions(t["cond_latents"], t["cond_mask_latents"]),
                names=tuple(json.loads(meta["names"])), center_depth=float(meta["center_depth"]),
                seed=int(meta["seed"]), steps=int(meta["steps"]), guidance=float(meta["guidance"]),
                timings={k: float(v) for k, v in json.loads(meta.get("timings", "{}")).items()},
                times=t.get("times"), video=t.get("video"), video_depth=t.get("video_depth"),
                video_cameras=Cameras(t["video_K"], t["video_c2w"], w, h) if "video_K" in t else None,
            )
        except (KeyError, ValueError, json.JSONDecodeError) as e:
            raise FormatError(f"{p}: incomplete teacher latents file (missing or invalid {e})") from None


# ------------------------------------------------------------------------------------------ pipeline
def _resolve_depth(depth: str | DepthEstimator | None, device: torch.device) -> DepthEstimator | None:
    if depth is None or not isinstance(depth, str):
        return depth
    spec = os.path.expanduser(depth[3:]) if depth.startswith("hf:") else depth  # hf:~/models/... (no shell ~ there)
    if depth.startswith("hf:") and not Path(spec).is_dir():
        raise ConfigError(f"--depth {depth}: {spec} is not a folder (a local transformers depth model)")
    return load_depth_estimator(spec, device=device)


def _append_trajectories(trajectories: Cameras, names: tuple[str, ...], extra: Cameras,
                         extra_names: tuple[str, ...] | None, W: int, H: int) -> tuple[Cameras, tuple[str, ...]]:
    """``trajectories [V, T]`` followed by ``extra [E, T]`` (same size and frame count), with their names."""
    if len(extra.shape) == 1:
        extra = extra.reshape(1, -1)
    if len(extra.shape) != 2 or extra.shape[1] != trajectories.shape[1] or (extra.width, extra.height) != (W, H):
        raise ConfigError(f"extra trajectories must be Cameras [E, {trajectories.shape[1]}] of size {W}x{H}, got "
                          f"{tuple(extra.shape)} {extra.width}x{extra.height}")
    extra_names = tuple(extra_names) if extra_names is not None else tuple(f"user{i}" for i in range(extra.shape[0]))
    if len(extra_names) != extra.shape[0]:
        raise ConfigError(f"{len(extra_names)} names for {extra.shape[0]} extra trajectories")
    both = Cameras(torch.cat([trajectories.K, extra.K.to(trajectories.K)]),
                   torch.cat([trajectories.c2w, extra.c2w.to(trajectories.c2w)]), W, H)
    return both, tuple(names) + extra_names


class TeacherPipeline:
    """Image → normalised latents of videos along trajectories (see the module doc).

    Args:
        denoiser: the :class:`~lyra.teacher.denoiser.TeacherDenoiser`.
        tokenizer: the frozen :class:`~lyra.tokenizer.Tokenizer` the denoiser was trained with.
        depth_estimator: used when :meth:`__call__` gets no depth map (``None``: a depth map is required).
        num_frames: frames per trajectory (``1 + 8k``) for the GEN3C trajectories.
        preset: name recorded in outputs.
        weights: the denoiser's folder, if loaded from one (for hashes).
        working_size: ``(height, width)`` the weights were trained at (the preset's working size).

    Attributes ``low_memory``, ``execution_device``, ``trajectory_batch``: see :meth:`enable_low_memory`.
    """

    def __init__(self, denoiser: TeacherDenoiser, tokenizer: Tokenizer, depth_estimator: DepthEstimator | None = None,
                 num_frames: int = 17, preset: str = "tiny", weights: Path | None = None,
                 working_size: tuple[int, int] = PRESETS["tiny"].size[1:]) -> None:
        latent_frames(num_frames)
        if denoiser.latent_channels != tokenizer.latent_channels:
            raise WeightsError(f"the teacher reads {denoiser.latent_channels}-channel latents, its tokenizer makes "
                               f"{tokenizer.latent_channels}")
        self.denoiser = denoiser.eval().requires_grad_(False)
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.depth_estimator = depth_estimator
        self.num_frames = num_frames
        self.preset = preset
        self.weights = weights
        self.working_size = (int(working_size[0]), int(working_size[1]))
        self.load_seconds = 0.0
        self.low_memory = False
        self.execution_device: torch.device | None = None
        self.trajectory_batch: int | None = None

    def enable_low_memory(self, device: torch.device | str | None = None, trajectory_batch: int = 1,
                          chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS) -> TeacherPipeline:
        """Park the denoiser, tokenizer and depth net (if an ``nn.Module``) on the CPU and run each on ``device``
        (default: where the denoiser is now) only during its stage; warp, encode and sample
        ``trajectory_batch`` trajectories at a time; run the tokenizer's layers in chunks of
        ``chunk_elements`` (``None``: keep its setting). Returns ``self``.

        At the official size one trajectory at a time keeps every stage under 24 GiB: the 7.2 B-parameter
        denoiser's bf16 weights take 13.5 GiB and one trajectory's activations about 6 GiB.
        """
        if trajectory_batch < 1:
            raise ConfigError(f"trajectory_batch must be >= 1, got {trajectory_batch}")
        self.execution_device = torch.device(device) if device is not None else self.denoiser.device
        self.trajectory_batch = int(trajectory_batch)
        if chunk_elements is not None:
            self.tokenizer.set_chunking(chunk_elements)
        park(self.denoiser, self.tokenizer, self.depth_estimator)
        self.low_memory = True
        return self

    @classmethod
    def from_preset(cls, preset: str = "tiny", weights: str | os.PathLike | None = None,
                    depth: str | DepthEstimator | None = "tiny", device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32, tokenizer: str | os.PathLike | None = None,
                    tokenizer_batch: int | None = None, low_memory: bool | None = None,
                    dynamic: bool = False) -> TeacherPipeline:
        """Load a preset's denoiser, tokenizer and depth estimator.

        Args:
            preset: ``tiny`` (shipped weights) or ``official`` (``weights`` must point at a converted
                GEN3C checkpoint; the official tokenizer comes from ``$LYRA_COSMOS_TOKENIZER`` or
                ``tokenizer``).
            weights: the denoiser folder (default: the preset's shipped ``lyra/weights/teacher_<preset>``).
            depth: a depth spec for :func:`~lyra.teacher.depth.load_depth_estimator` (``"tiny"``, a
                ``.npy``/``.png`` file, a transformers model folder, optionally prefixed ``hf:``), an
                estimator, or ``None`` (then every call needs a depth map).
            device, dtype: where and in which precision the denoiser runs (the tokenizer runs in fp32).
            tokenizer: a tokenizer folder overriding the preset's (``tokenizer_dynamic`` for a dynamic teacher;
                :meth:`~lyra.weights.hub.Preset.tokenizer_for`). Its latent channels must be the denoiser's
                (WeightsError otherwise).
            tokenizer_batch: videos per tokenizer pass (default 2 on the CPU — fastest and bounded
                memory on 2 cores — all at once on CUDA).
            low_memory: load the models to the CPU and run each on ``device`` only during its stage
                (:meth:`enable_low_memory`); default: on for ``official`` on CUDA.
            dynamic: without ``weights``, load the preset's dynamic fine-tune (:func:`dynamic_weights_dir`); when
                it is not shipped the static weights are loaded with a warning (same architecture; they were not
                trained on dynamic conditions).
        """
        t0 = time.perf_counter()
        p = _preset(preset)
        device = torch.device(device)
        tok_name = p.tokenizer_for(dynamic)
        if weights is None and dynamic:
            dyn = dynamic_weights_dir(preset)
            if dyn is None:
                tok_name = p.tokenizer  # the static weights read the static tokenizer
                import warnings

                warnings.warn(f"no dynamic '{preset}' teacher weights shipped; using the static ones (fine-tune a "
                              "dynamic teacher with `lyra train teacher --dynamic --init-from ...`)", stacklevel=2)
            weights = dyn
        if low_memory is None:
            low_memory = preset == "official" and device.type == "cuda"
        home = torch.device("cpu") if low_memory else device
        folder = Path(weights) if weights is not None else teacher_weights_dir(preset)
        if not folder.is_dir() or not (folder / "config.json").is_file():
            raise WeightsError(
                f"no teacher weights in {folder}: " + (
                    "train them with `python -m lyra.train.recipes.teacher --out runs/teacher "
                    f"--export-to {folder}` (a CUDA GPU is recommended) or pass --weights DIR"
                    if weights is None else "expected a folder written by TeacherDenoiser.save_pretrained "
                    "(config.json, diffusion_pytorch_model.safetensors, teacher.json)"))
        denoiser = TeacherDenoiser.from_pretrained(folder, device=home, dtype=dtype)
        if tokenizer_batch is None and device.type == "cpu":
            tokenizer_batch = 2
        if tokenizer is None and denoiser.tokenizer_name not in (None, tok_name):
            from lyra.weights.hub import TOKENIZERS, tokenizer_dir

            name = denoiser.tokenizer_name
            shipped = tokenizer_dir(name) if name in TOKENIZERS else None
            if shipped is not None and shipped.is_dir():  # a shipped tokenizer: the one the teacher was trained on
                tok_name = name
            else:
                raise WeightsError(f"the teacher {folder} reads tokenizer {denoiser.tokenizer_name} (teacher.json), "
                                   f"the '{preset}' preset's is {tok_name}; pass the tokenizer's folder")
        tok = Tokenizer.from_preset(tok_name, path=tokenizer, device=home, max_batch=tokenizer_batch)
        if denoiser.latent_channels != tok.latent_channels:
            raise WeightsError(f"the teacher {folder} reads {denoiser.latent_channels}-channel latents, tokenizer "
                               f"{tokenizer or tok_name!s} makes {tok.latent_channels}")
        pipe = cls(denoiser, tok, _resolve_depth(depth, device), num_frames=p.size[0], preset=preset,
                   weights=folder, working_size=p.size[1:])
        if low_memory:
            pipe.enable_low_memory(device)
        pipe.load_seconds = time.perf_counter() - t0
        return pipe

    @property
    def device(self) -> torch.device:
        """Where the models run (the execution device in low-memory mode, else the denoiser's device)."""
        return self.execution_device if self.low_memory and self.execution_device is not None else self.denoiser.device

    def _on(self) -> torch.device | None:
        """The device :func:`~lyra.lowmem.resident` puts a model on for its stage (``None``: models stay put)."""
        return self.device if self.low_memory else None

    def check_size(self, height: int, width: int, num_frames: int) -> None:
        """ConfigError unless ``height × width × num_frames`` fits the tokenizer and the denoiser."""
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height <= 0 or width <= 0:
            raise ConfigError(f"image size {width}x{height}: both sides must be positive multiples of "
                              f"{SIZE_MULTIPLE} (crop or resize it, e.g. with lyra.inputs.fit_to_size)")
        t = latent_frames(num_frames)
        max_t, max_h, max_w = self.denoiser.config.max_size
        h, w = height // SPATIAL_COMPRESSION, width // SPATIAL_COMPRESSION
        if t > max_t or h > max_h or w > max_w:
            raise ConfigError(
                f"{num_frames} frames of {width}x{height}: the denoiser's positional grid ends at {max_t} latent "
                f"frames × {max_h * SPATIAL_COMPRESSION}x{max_w * SPATIAL_COMPRESSION} pixels; use a smaller size")

    # ------------------------------------------------------------------ run
    @torch.no_grad()
    def __call__(
        self,
        image: Tensor | None = None,
        depth: Tensor | None = None,
        camera: Cameras | None = None,
        trajectories: Cameras | None = None,
        seed: int = 0,
        steps: int = 35,
        guidance: float = 1.0,
        movement: float = 1.0,
        distances: list[float] | None = None,
        num_frames: int | None = None,
        names: tuple[str, ...] | None = None,
        progress: bool = True,
        *,
        video: Tensor | None = None,
        video_depth: Tensor | None = None,
        video_cameras: Cameras | None = None,
        times: Tensor | None = None,
        extra_trajectories: Cameras | None = None,
        extra_names: tuple[str, ...] | None = None,
    ) -> TeacherOutput:
        """Run depth → trajectories → warp + encode → sampler, for one image or (dynamic) one video.

        Args:
            image: ``[3, H, W]`` in [0, 1], ``H`` and ``W`` multiples of 16 (static scenes; give ``video``
                instead for a dynamic one).
            depth: ``[H, W]`` z-depth of ``image`` (OpenCV camera, world units; ``inf`` = sky); default:
                the pipeline's depth estimator.
            camera: the input camera (batch shape ``[]``, size ``W × H``); default
                :func:`lyra.inputs.default_camera` (identity pose, 50° vertical FoV), or frame 0 of
                ``trajectories`` when those are given. For a video without ``video_cameras``: the static
                camera of every frame.
            trajectories: ``Cameras [V, T]`` (size ``W × H``, ``T = 1 + 8k``) to use instead of GEN3C's
                six; their frame 0 should be the input camera.
            seed: draws the trajectory distances and the starting noise (independent streams).
            steps: Euler steps (GEN3C's 35 by default); guidance: CFG scale (1.0: conditional only).
            movement: GEN3C's movement factor (multiplies the drawn distances); distances: the six
                distance factors instead of drawing them.
            num_frames: frames per GEN3C trajectory (default: the preset's, 17 for ``tiny``; a video's own
                frame count for a dynamic scene).
            names: trajectory names for given ``trajectories`` (default ``traj0``, ``traj1``, ...).
            progress: tqdm bar over the sampler steps.
            video: dynamic scenes: ``[T, 3, H, W]`` in [0, 1], ``T = 1 + 8k`` frames (frame ``f`` at time
                ``times[f]``); frame ``f`` of every trajectory then shows the scene at that time.
            video_depth: ``[T, H, W]`` z-depth of every frame (default: the depth estimator per frame).
            video_cameras: ``Cameras [T]`` of the frames (default: ``camera`` at every frame, a static camera).
            times: ``[T]`` frame times in [0, 1], non-decreasing or non-increasing (a time-reversed video);
                default :func:`default_times`.
            extra_trajectories: ``Cameras [E, T]`` (size ``W × H``) appended after GEN3C's six (a user's camera
                path that adds to the six rather than replacing them); only without ``trajectories``.
            extra_names: their names (default ``user0``, ``user1``, ...).

        Returns:
            :class:`TeacherOutput` (tensors on the CPU); dynamic scenes fill its ``times``, ``video``,
            ``video_depth`` and ``video_cameras``.
        """
        dev = self.device
        if video is not None:
            if image is not None or depth is not None:
                raise ConfigError("give either an image (with depth) or a video (with video_depth), not both")
            if not isinstance(video, Tensor) or video.dim() != 4 or video.shape[1] != 3 \
                    or not video.is_floating_point():
                raise ConfigError(f"video must be a float tensor [T, 3, H, W] in [0, 1], got "
                                  f"{tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__}")
            frames = video.clamp(0.0, 1.0)
            if num_frames is not None and num_frames != video.shape[0]:
                raise ConfigError(f"num_frames {num_frames} differs from the video's {video.shape[0]} frames")
            T_in = int(video.shape[0])
        else:
            if video_depth is not None or video_cameras is not None or times is not None:
                raise ConfigError("video_depth, video_cameras and times belong with a video (video=...)")
            if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3 \
                    or not image.is_floating_point():
                raise ConfigError(f"image must be a float tensor [3, H, W] in [0, 1], got "
                                  f"{tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__}")
            frames = image.clamp(0.0, 1.0)[None]
            T_in = None
        H, W = frames.shape[-2:]
        T = int(trajectories.shape[-1]) if trajectories is not None else (T_in or num_frames or self.num_frames)
        if T_in is not None and T != T_in:
            raise ConfigError(f"the trajectories have {T} frames but the video {T_in}; give one camera per video frame")
        self.check_size(H, W, T)
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        frames = frames.to(dev, torch.float32)
        if T_in is not None:
            times = self._check_times(times, T_in)
        meter = StageMeter(dev, memory=self.low_memory)  # per-stage GPU peaks in low-memory mode only
        transfer: dict[str, float] = {}

        with meter.stage("depth"):
            given = video_depth if video is not None else (None if depth is None else depth[None])
            depths = self._depths(frames, given, transfer)

        with meter.stage("trajectories"):
            trajectories, traj_names, camera, cd = self._trajectories(trajectories, names, camera, depths[0], H, W,
                                                                       T, seed, movement, distances, video_cameras)
            if extra_trajectories is not None:
                trajectories, traj_names = _append_trajectories(trajectories, traj_names, extra_trajectories,
                                                                extra_names, W, H)
            if video is not None:
                if video_cameras is None:  # a static camera: the input camera at every frame
                    video_cameras = Cameras(camera.K.expand(T, 3, 3), camera.c2w.expand(T, 4, 4), W, H)
                if tuple(video_cameras.shape) != (T,) or (video_cameras.width, video_cameras.height) != (W, H):
                    raise ConfigError(f"video_cameras must be Cameras [{T}] of size {W}x{H}, got "
                                      f"{tuple(video_cameras.shape)} {video_cameras.width}x{video_cameras.height}")
                camera = video_cameras[0]

        cpu = torch.device("cpu")
        fill = bool(getattr(self.denoiser, "fills_holes", False))
        with meter.stage("warp_encode"), resident(self.tokenizer, self._on()) as moved:
            if video is None:
                cond = warp_conditions(frames[0], depths[0], camera.to(dev), trajectories.to(dev), self.tokenizer,
                                       trajectory_batch=self.trajectory_batch if self.low_memory else None,
                                       store_device=cpu if self.low_memory else None, fill=fill)
            else:
                cond = warp_conditions_dynamic(frames, depths, video_cameras.to(dev), trajectories.to(dev),
                                               self.tokenizer, fill=fill)
        transfer["warp_encode"] = moved.seconds

        groups_s: list[float] = []
        with meter.stage("denoise"), resident(self.denoiser, self._on()) as moved:
            noise = initial_noise(cond.latents.shape, seed)
            model_cond = Conditions(cond.latents.to(dev), cond.mask_latents.to(dev))
            V = noise.shape[0]
            step = self.trajectory_batch if self.low_memory and self.trajectory_batch else V
            parts = []
            for a in range(0, V, step):
                t0 = time.perf_counter()
                parts.append(sample(self.denoiser, model_cond[a:a + step] if step < V else model_cond, steps=steps,
                                    guidance=guidance, noise=noise[a:a + step].to(dev), progress=progress))
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                groups_s.append(time.perf_counter() - t0)
            lat = parts[0] if len(parts) == 1 else torch.cat(parts)
            del parts
        transfer["denoise"] = moved.seconds

        mean, std = self.tokenizer.latent_stats(lat.shape[2])
        conditions = Conditions(cond.latents.to(cpu), cond.mask_latents.to(cpu),
                                None if cond.rgb is None else cond.rgb.to(cpu),
                                None if cond.mask is None else cond.mask.to(cpu))
        profile = {"peak_gib": meter.peak_gib(), "transfer_s": transfer, "denoise_groups_s": groups_s,
                   "low_memory": self.low_memory, "trajectory_batch": step}
        dynamic = video is not None
        return TeacherOutput(
            latents=lat.to(cpu), latents_mean=mean.reshape(lat.shape[1], -1).cpu(),
            latents_std=std.reshape(lat.shape[1], -1).cpu(), cameras=trajectories.to(cpu),
            input_camera=camera.to(cpu), image=frames[0].to(cpu), depth=depths[0].to(cpu), conditions=conditions,
            names=traj_names, center_depth=cd, seed=int(seed), steps=int(steps), guidance=float(guidance),
            timings=dict(meter.seconds), profile=profile, times=times.cpu() if dynamic else None,
            video=frames.to(cpu) if dynamic else None, video_depth=depths.to(cpu) if dynamic else None,
            video_cameras=video_cameras.to(cpu) if dynamic else None)

    def _trajectories(self, trajectories: Cameras | None, names: tuple[str, ...] | None, camera: Cameras | None,
                      depth: Tensor, H: int, W: int, T: int, seed: int, movement: float,
                      distances: list[float] | None, video_cameras: Cameras | None = None
                      ) -> tuple[Cameras, tuple[str, ...], Cameras, float]:
        """Given or GEN3C trajectories ``[V, T]`` (CPU), their names, the input camera, the centre depth of
        ``depth`` (frame 0's). A video's cameras ``video_cameras [T]`` give the default input camera (frame 0)."""
        if trajectories is not None:
            if len(trajectories.shape) != 2:
                raise ConfigError(f"trajectories must be Cameras [V, T], got batch shape {tuple(trajectories.shape)}")
            if (trajectories.width, trajectories.height) != (W, H):
                raise ConfigError(f"trajectory cameras are {trajectories.width}x{trajectories.height} but the image is "
                                  f"{W}x{H}; resize them (Cameras.resize) to the image size")
            if camera is None:
                camera = video_cameras[0] if video_cameras is not None else trajectories[0, 0]
            traj_names = tuple(names) if names is not None else tuple(f"traj{i}" for i in range(trajectories.shape[0]))
            if len(traj_names) != trajectories.shape[0]:
                raise ConfigError(f"{len(traj_names)} names for {trajectories.shape[0]} trajectories")
            cd = math.nan
        else:
            if camera is None:
                if video_cameras is not None:
                    camera = video_cameras[0]
                else:
                    from lyra.inputs import default_camera

                    camera = default_camera(H, W)
            cd = center_depth(depth)
            from lyra.seeds import mix_seed

            g = torch.Generator().manual_seed(mix_seed(seed, _TRAJECTORY_STREAM))
            start = video_cameras[0] if video_cameras is not None else camera
            trajectories = sample_gen3c_trajectories(start.to("cpu"), cd, T, movement, g, distances=distances)
            traj_names = TRAJECTORY_NAMES
        if camera.shape != () or (camera.width, camera.height) != (W, H):
            raise ConfigError(f"the input camera must be one camera of size {W}x{H}")
        return trajectories, traj_names, camera, cd

    @staticmethod
    def _check_times(times: Tensor | None, T: int) -> Tensor:
        """Frame times ``[T]`` (default :func:`default_times`), checked: finite, in [0, 1], monotonic."""
        if times is None:
            return default_times(T)
        t = torch.as_tensor(times, dtype=torch.float32).detach().cpu()
        if tuple(t.shape) != (T,):
            raise ConfigError(f"times must be [{T}] (one per video frame), got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()) or float(t.min()) < 0.0 or float(t.max()) > 1.0:
            raise ConfigError("times must be finite and lie in [0, 1]")
        d = t.diff()
        if not (bool((d >= 0).all()) or bool((d <= 0).all())):
            raise ConfigError("times must be monotonic (a video forwards or backwards in time)")
        return t

    def _depths(self, frames: Tensor, given: Tensor | None, transfer: dict[str, float], chunk: int = 8) -> Tensor:
        """z-depth ``[N, H, W]`` of ``frames [N, 3, H, W]``: ``given`` (checked) or the depth estimator in chunks
        (on the GPU only for this stage in low-memory mode; the seconds moving it there go to ``transfer``)."""
        N, _, H, W = frames.shape
        if given is None:
            if self.depth_estimator is None:
                raise ConfigError("no depth map given and the pipeline has no depth estimator")
            with resident(self.depth_estimator, self._on()) as moved:
                given = torch.cat([self.depth_estimator(part).depth for part in frames.split(chunk)])
            transfer["depth"] = moved.seconds
        if tuple(given.shape) != (N, H, W):
            what = "depth map" if N == 1 else "per-frame depth"
            shown = tuple(given.shape[1:]) if N == 1 else tuple(given.shape)
            want = f"the image {H}x{W}" if N == 1 else f"the video [{N}, {H}, {W}]"
            raise ConfigError(f"{what} {shown} does not match {want}")
        given = given.to(frames.device, torch.float32)
        if torch.isnan(given).any():
            raise ConfigError("the depth map holds NaN values")
        return given

    @torch.no_grad()
    def decode(self, output: TeacherOutput) -> Tensor:
        """Decode ``output``'s latents through the tokenizer → videos ``[V, T, 3, H, W]`` in [0, 1] (CPU).

        Records the seconds in ``output.timings["decode"]``.
        """
        meter = StageMeter(self.device, memory=self.low_memory)
        H, W = output.cameras.height, output.cameras.width
        with meter.stage("decode"), resident(self.tokenizer, self._on()) as moved:
            raw = output.raw_latents
            if self.low_memory:  # one group of trajectories at a time, each moved to the CPU at once
                step = self.trajectory_batch or raw.shape[0]
                video = torch.cat([self.tokenizer.decode(raw[a:a + step].to(self.tokenizer.device))[..., :H, :W].cpu()
                                   for a in range(0, raw.shape[0], step)])
            else:
                video = self.tokenizer.decode(raw.to(self.tokenizer.device))[..., :H, :W].cpu()
        output.timings["decode"] = meter.seconds["decode"]
        output.profile.setdefault("transfer_s", {})["decode"] = moved.seconds
        peaks = meter.peak_gib()
        if peaks is not None:
            output.profile["decode_peak_gib"] = peaks["decode"]
        return video

    def describe(self) -> dict[str, Any]:
        """Preset, parameter counts and weight hashes (for records such as ``teacher.json``)."""
        info: dict[str, Any] = {"preset": self.preset, "denoiser_parameters": self.denoiser.num_parameters(),
                                "tokenizer_parameters": self.tokenizer.num_parameters(),
                                "depth": type(self.depth_estimator).__name__ if self.depth_estimator else None}
        if self.weights is not None:
            info["weights"] = str(self.weights)
            info["weights_sha256"] = weights_sha256(self.weights)
        return info
