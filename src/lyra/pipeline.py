"""The product entry point: one image → a 3D Gaussian Splatting :class:`Scene` (``lyra generate``).

Flow (each stage timed, one progress line per stage)::

    image ──► lyra.inputs (load, centre-crop + resize to the working size)
          ──► TeacherPipeline (depth → six trajectories → warp + encode → sampler): raw latents [V, 16, t, h, w]
          ──► Plücker latents of the trajectory cameras (frozen tokenizer encoder) ──► student LatentDecoder
          ──► raw Gaussians [V·T·h·w, 14] ──► LatentDecoder.to_gaussians(prune_ratio=0.8) ──► Scene

The tokenizer's RGB decoder is not run unless ``decode_videos=True`` (then ``Scene.videos`` holds the
teacher's decoded videos ``[V, T, 3, H, W]``).

Low memory (``low_memory=True``, the default for ``official`` on CUDA; :meth:`ScenePipeline.enable_low_memory`):
every model is parked on the CPU and put on the GPU only for its stage — depth net → tokenizer (warp + encode,
one trajectory at a time) → denoiser (one trajectory at a time) → tokenizer (Plücker latents) → student — with
the tokenizer's layers run in chunks (:mod:`lyra.tokenizer.chunked`) and the CUDA cache emptied between stages.
Same results as the plain mode up to float rounding. ``scene.metadata["peak_gib"]`` holds the peak GPU memory of
every stage (low-memory mode on CUDA; measuring it resets CUDA's peak counter at every stage boundary).

Use :func:`generate` for one image; :class:`ScenePipeline` keeps the models loaded between images::

    from lyra.pipeline import generate
    scene = generate("photo.jpg", seed=3)
    scene.save("scene.ply")          # or .splat / .spz

Weights
-------
``preset="tiny"`` (default): the shipped teacher, tokenizer and depth net under ``src/lyra/weights/`` and the
student export ``src/lyra/weights/student_tiny/`` (``model.safetensors`` + ``student.json`` +
``training_record.json``, written by :meth:`lyra.student.LatentDecoder.save_pretrained`). Another student export:
``student=DIR``.

``preset="official"`` needs ``weights=DIR``, a folder laid out as (:data:`OFFICIAL_LAYOUT`)::

    DIR/teacher/      the converted GEN3C denoiser (TeacherDenoiser.save_pretrained layout: config.json, ...)
    DIR/tokenizer/    Cosmos-Tokenize1-CV8x8x8 in diffusers format (else $LYRA_COSMOS_TOKENIZER)
    DIR/decoder.safetensors | DIR/decoder.pt | DIR/lyra_static.safetensors | DIR/lyra_static.pt
                      the released 3DGS decoder (read by lyra.student.load_official_checkpoint), or
    DIR/student/      a student export folder

The same layout works for ``tiny`` (each missing part falls back to the shipped one); a ``weights`` folder
that is itself a denoiser folder (``config.json``) replaces only the teacher, as ``lyra teacher --weights``.
``student=`` (a student export folder or an official decoder file) overrides the layout's decoder.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError, InputFileError, WeightsError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras
from lyra.pipeline_parts import ProgressFn, StudentWeightsMissing, load_decoder, reporter
from lyra.student.inference import PRUNE_RATIO  # the fraction of Gaussians dropped: Lyra keeps 20 %
from lyra.student.input_view import DEFAULT_MAX_SIDE
from lyra.text_to_image import image_from_prompt  # noqa: F401  (re-exported: the product takes prompts)
from lyra.weights.hub import pick_device, sha256_file, weights_root, weights_sha256

__all__ = ["OFFICIAL_LAYOUT", "PRUNE_RATIO", "DynamicWeightsMissing", "Scene", "ScenePipeline", "StudentWeightsMissing",
           "generate", "generate_dynamic", "image_from_prompt", "student_weights_dir"]

#: Names tried, in order, for the decoder in an official ``weights`` folder.
OFFICIAL_DECODER_NAMES = ("decoder.safetensors", "decoder.pt", "lyra_static.safetensors", "lyra_static.pt")
OFFICIAL_LAYOUT = ("teacher/", "tokenizer/", "student/ or " + " | ".join(OFFICIAL_DECODER_NAMES))


def student_weights_dir(preset: str = "tiny") -> Path:
    """Folder of the shipped student export of ``preset`` (``src/lyra/weights/student_<preset>``)."""
    return weights_root() / f"student_{preset}"


def _hashes(path: Path | None) -> dict[str, str] | str | None:
    """SHA-256 of a weights file, or of the ``.safetensors``/``.json`` files of a weights folder."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        return weights_sha256(path)
    return None


# ------------------------------------------------------------------------------------------------ Scene
@dataclass
class Scene:
    """What :func:`generate` returns (DESIGN.md "Contracts": pipeline → user).

    Attributes:
        gaussians: the pruned Gaussians (CPU, float32; OpenCV world of the input camera at the origin).
        cameras: ``Cameras [V, T]`` of the trajectories the teacher generated (frame 0 = the input view).
        names: the trajectory names (``V``).
        metadata: ``preset``, ``seed``, ``steps``, ``size`` ``[H, W]``, ``input_size`` ``[H, W]``, ``fit``
            (the crop/resize note or ``None``), ``trajectories``, ``center_depth``, ``prune_ratio``,
            ``gaussians_before_prune``, ``gaussians``, ``device``, ``weights`` (SHA-256 per component),
            ``timings_s`` (seconds per stage, and ``total``), ``low_memory``, ``peak_gib`` (peak GPU memory per
            stage and ``run``, GiB; measured in low-memory mode on CUDA, else ``None``), ``transfer_s`` (seconds
            moving models to the GPU).
        videos: the teacher's decoded videos ``[V, T, 3, H, W]`` in [0, 1] (only with ``decode_videos``).
        image: the fitted input image ``[3, H, W]`` in [0, 1].
        depth: the input view's z-depth ``[H, W]`` the teacher warped with (given or estimated; ``inf``: sky).
        input_camera: the input view's camera at the working size (batch shape ``[]``).
        latent_start: index of the first latent-head Gaussian in ``gaussians`` (the input-view Gaussians, one per
            pixel of the photo, come first; 0 when there are none).
    """

    gaussians: Gaussians
    cameras: Cameras
    names: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    videos: Tensor | None = None
    image: Tensor | None = None
    depth: Tensor | None = None
    input_camera: Cameras | None = None
    latent_start: int = 0

    def save(self, path: str | os.PathLike, **options: Any) -> Path:
        """Write the Gaussians to ``path`` atomically, the format chosen by its extension (``.ply``, ``.splat``,
        ``.spz``; format options as :func:`lyra.gaussians.io.save_gaussians`). Unknown extensions raise
        :class:`~lyra.errors.OutputPathError` before anything is written."""
        from lyra.gaussians.io import save_gaussians

        return save_gaussians(self.gaussians, path, **options)

    def camera_path(self) -> dict[str, Any]:
        """The trajectory cameras as lyra's camera-path JSON (``lyra render --trajectory`` / ``lyra view
        --cameras``): the ``V`` trajectories one after the other (``V·T`` frames)."""
        from lyra.geometry.trajectories import camera_path_dict

        return camera_path_dict(self.cameras)

    def save_cameras(self, path: str | os.PathLike) -> Path:
        """Write :meth:`camera_path` (plus the trajectory names and frame counts) to a JSON file, atomically."""
        import json

        from lyra.fileio import atomic_path

        data = self.camera_path()
        data["trajectories"] = [{"name": n, "frames": int(self.cameras.shape[1])} for n in self.names]
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data) + "\n")
        return Path(path)

    def __len__(self) -> int:
        return len(self.gaussians)


# ------------------------------------------------------------------------------------------------ inputs
def _as_image(image: Any) -> tuple[Tensor, str]:
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


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    from lyra.teacher.pipeline import SIZE_MULTIPLE

    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be (height, width), got {size!r}") from None
    if h <= 0 or w <= 0 or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ConfigError(f"size {h}x{w}: height and width must be positive multiples of {SIZE_MULTIPLE} "
                          "(e.g. 176x320)")
    return h, w


def _load_trajectory(path: str | os.PathLike, height: int, width: int,
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


# ------------------------------------------------------------------------------------------------ pipeline
def _resolve_weights(preset: str, weights: str | os.PathLike | None, student: str | os.PathLike | None
                     ) -> tuple[Path | None, Path | None, Path]:
    """(teacher folder or None = shipped, tokenizer folder or None = preset's, student path)."""
    teacher = tokenizer = decoder = None
    if weights is not None:
        root = Path(weights).expanduser()
        if not root.is_dir():
            raise WeightsError(f"weights {root}: not a folder (expected the layout {', '.join(OFFICIAL_LAYOUT)})")
        if (root / "config.json").is_file() and not (root / "teacher").is_dir():
            teacher = root  # a denoiser folder itself, as `lyra teacher --weights`
        else:
            teacher = root / "teacher" if (root / "teacher").is_dir() else None
            tokenizer = root / "tokenizer" if (root / "tokenizer").is_dir() else None
            if (root / "student").is_dir():
                decoder = root / "student"
            else:
                decoder = next((root / n for n in OFFICIAL_DECODER_NAMES if (root / n).is_file()), None)
        if preset == "official" and teacher is None:
            raise WeightsError(f"weights {root}: no teacher/ folder (the converted GEN3C denoiser); expected the "
                               f"layout {', '.join(OFFICIAL_LAYOUT)}")
    elif preset == "official":
        raise WeightsError("the official preset needs its checkpoints: pass weights=DIR (--weights DIR) laid out as "
                           f"{', '.join(OFFICIAL_LAYOUT)}")
    if student is not None:
        decoder = Path(student).expanduser()
        if not decoder.exists():
            raise StudentWeightsMissing(f"student {decoder}: no such file or folder (a student export folder from "
                                        "`lyra train student`, or an official decoder checkpoint)")
    if decoder is None:
        if preset == "official":
            raise StudentWeightsMissing(f"weights {weights}: no decoder ({' | '.join(OFFICIAL_DECODER_NAMES)} or "
                                        "student/); copy the released lyra_static.pt there or pass --student FILE")
        decoder = student_weights_dir(preset)
        if not (decoder / "student.json").is_file():
            raise StudentWeightsMissing(
                f"the '{preset}' student weights are missing from {decoder}: train a student with `lyra train "
                "student --data SDG_DIR --export-to DIR` and pass --student DIR (student=DIR), or copy its export "
                "there")
    return teacher, tokenizer, decoder


class ScenePipeline:
    """Loaded models of one preset: call it with an image to get a :class:`Scene` (see the module doc).

    Build with :meth:`from_preset`. Attributes: ``teacher`` (:class:`~lyra.teacher.pipeline.TeacherPipeline`),
    ``student`` (:class:`~lyra.student.LatentDecoder`), ``encoder`` (the tokenizer used for the Plücker
    latents), ``single_view`` (the student was trained on one trajectory at a time), ``weights`` (hashes),
    ``load_seconds``.
    """

    def __init__(self, teacher: Any, student: Any, encoder: Any, preset: str = "tiny", single_view: bool = False,
                 weights: dict[str, Any] | None = None) -> None:
        self.teacher = teacher
        self.student = student.eval().requires_grad_(False)
        self.encoder = encoder
        self.preset = preset
        self.single_view = single_view
        self.weights = weights or {}
        self.load_seconds = 0.0
        self.low_memory = False
        #: What ``quantize`` did to the denoiser (:class:`lyra.teacher.quant.QuantStats`), else ``None``.
        self.quantized: Any = None
        self.execution_device: torch.device | None = None
        #: long side (pixels) of the input-view Gaussians by default (0: the latent head's Gaussians alone); the
        #: tiny preset delivers the photo's detail, the official one stays as released unless asked
        self.input_resolution = DEFAULT_MAX_SIDE if preset == "tiny" else 0

    def enable_low_memory(self, device: str | torch.device | None = None, trajectory_batch: int = 1) -> ScenePipeline:
        """Park every model on the CPU; run each on ``device`` (default: where the student is now) only during its
        stage, ``trajectory_batch`` trajectories at a time (see the module doc). Returns ``self``."""
        from lyra.lowmem import park

        dev = torch.device(device) if device is not None else next(self.student.parameters()).device
        self.teacher.enable_low_memory(dev, trajectory_batch)
        if self.encoder is not self.teacher.tokenizer and hasattr(self.encoder, "set_chunking"):
            from lyra.tokenizer.chunked import DEFAULT_CHUNK_ELEMENTS

            self.encoder.set_chunking(DEFAULT_CHUNK_ELEMENTS)
        park(self.student, self.encoder)
        self.execution_device = dev
        self.low_memory = True
        return self

    @classmethod
    def from_preset(cls, preset: str = "tiny", weights: str | os.PathLike | None = None,
                    student: str | os.PathLike | None = None, depth: Any = "tiny",
                    device: str | torch.device = "auto", dtype: torch.dtype | None = None,
                    low_memory: bool | None = None, quantize: str | None = None) -> ScenePipeline:
        """Load the teacher (depth net, tokenizer, denoiser) and the student of ``preset``.

        Args:
            preset: ``tiny`` or ``official``.
            weights: a weights folder (module doc, "Weights"); required for ``official``.
            student: a student export folder (``lyra train student``) or an official decoder file; default the
                preset's (``src/lyra/weights/student_tiny``; the ``weights`` folder's for ``official``).
            depth: depth spec (``"tiny"``, a ``.npy``/``.png`` depth file, ``hf:DIR``) or an estimator.
            device: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N``.
            dtype: denoiser and student precision (default float32; bfloat16 for ``official`` on CUDA).
            low_memory: models parked on the CPU, each on the GPU only for its stage (module doc); default: on
                for ``official`` on CUDA.
            quantize: ``"fp8"`` or ``"int8"``: the denoiser's large linear layers keep their weights in 8 bits
                (:mod:`lyra.teacher.quant`; half the memory of bf16, a small error); ``None``: as loaded.

        Raises:
            StudentWeightsMissing: no student weights (says how to get them); WeightsError, ConfigError.
        """
        from lyra.teacher.pipeline import PIPELINE_PRESETS, TeacherPipeline, teacher_weights_dir
        from lyra.tokenizer import Tokenizer

        if preset not in PIPELINE_PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PIPELINE_PRESETS)}")
        t0 = time.perf_counter()
        dev = pick_device(device)
        if dtype is None:
            dtype = torch.bfloat16 if preset == "official" and dev.type == "cuda" else torch.float32
        if low_memory is None:
            low_memory = preset == "official" and dev.type == "cuda"
        home = torch.device("cpu") if low_memory else dev
        teacher_dir, tokenizer_dir, decoder_path = _resolve_weights(preset, weights, student)
        model, meta = load_decoder(decoder_path, home, dtype)
        teacher = TeacherPipeline.from_preset(preset, weights=teacher_dir, depth=depth, device=dev, dtype=dtype,
                                              tokenizer=tokenizer_dir, low_memory=low_memory)
        quant = None
        if quantize is not None:
            from lyra.teacher.quant import quantize_linears

            quant = quantize_linears(teacher.denoiser, quantize)
        tok_name = meta.get("tokenizer") or PIPELINE_PRESETS[preset].tokenizer
        if tok_name == PIPELINE_PRESETS[preset].tokenizer:
            encoder = teacher.tokenizer
        else:  # a student trained with another tokenizer's Plücker latents
            encoder = Tokenizer.from_preset(tok_name, device=home).eval().requires_grad_(False)
        import lyra.tokenizer.tokenizer as _tok

        tok_folder = tokenizer_dir if tokenizer_dir is not None else (
            _tok.weights_dir() / f"tokenizer_{PIPELINE_PRESETS[preset].tokenizer}" if preset == "tiny"
            else os.environ.get(_tok.OFFICIAL_ENV))
        depth_dir = None
        if depth == "tiny":
            depth_dir = _tok.weights_dir() / "depth_tiny"
        hashes = {
            "teacher": _hashes(teacher_dir if teacher_dir is not None else teacher_weights_dir(preset)),
            "tokenizer": _hashes(Path(tok_folder)) if tok_folder else None,
            "student": _hashes(decoder_path),
            "depth": _hashes(depth_dir) if depth_dir is not None else (depth if isinstance(depth, str) else None),
        }
        pipe = cls(teacher, model, encoder, preset=preset, single_view=bool(meta.get("single_view", False)),
                   weights=hashes)
        pipe.student_path = decoder_path
        pipe.quantized = quant
        if low_memory:
            pipe.enable_low_memory(dev)
        pipe.load_seconds = time.perf_counter() - t0
        return pipe

    @property
    def device(self) -> torch.device:
        """Where the models run (the execution device in low-memory mode, else the student's device)."""
        if self.low_memory and self.execution_device is not None:
            return self.execution_device
        return next(self.student.parameters()).device

    @property
    def working_size(self) -> tuple[int, int]:
        """``(H, W)`` the preset's weights were trained at (176 × 320 for ``tiny``)."""
        return self.teacher.working_size

    @torch.no_grad()
    def __call__(self, image: Any, seed: int = 0, steps: int | None = None, size: tuple[int, int] | None = None,
                 trajectory: str | os.PathLike | Cameras | None = None, depth_map: Tensor | None = None,
                 progress: bool | ProgressFn = True, decode_videos: bool = False,
                 prune_ratio: float | None = PRUNE_RATIO, num_frames: int | None = None,
                 camera: Cameras | None = None, replace_trajectories: bool = False,
                 camera_source: str | None = None, input_resolution: int | None = None) -> Scene:
        """One image → :class:`Scene` (arguments as :func:`generate`; ``camera`` is the input camera at the image's
        own size, ``camera_source`` a note of where its intrinsics came from)."""
        t_start = time.perf_counter()
        report = reporter(progress)
        timings: dict[str, float] = {}
        dev = self.device

        # ---- inputs (checked before any model runs)
        t0 = time.perf_counter()
        original, label = _as_image(image)
        from lyra.geometry.intrinsics import working_size_for

        height, width = _check_size(size) if size is not None else working_size_for(
            int(original.shape[1]), int(original.shape[2]), self.working_size)
        steps = 35 if steps is None else int(steps)
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        input_resolution = self.input_resolution if input_resolution is None else input_resolution
        if isinstance(input_resolution, bool) or not isinstance(input_resolution, int) or input_resolution < 0:
            raise ConfigError(f"input_resolution must be a non-negative integer (0: off), got {input_resolution!r}")
        frames = num_frames or self.teacher.num_frames
        self.teacher.check_size(height, width, frames)
        from lyra.inputs import fit_cameras_to_size, fit_depth_to_size, fit_to_size

        fitted, note = fit_to_size(original, height, width)
        if depth_map is not None:
            depth_map = fit_depth_to_size(torch.as_tensor(depth_map).float(), height, width)
        if camera is not None:
            if not isinstance(camera, Cameras) or camera.shape != ():
                raise ConfigError("camera must be one Cameras (batch shape []) of the input image")
            if (camera.width, camera.height) != (int(original.shape[2]), int(original.shape[1])):
                raise ConfigError(f"the input camera is {camera.width}x{camera.height} but the image is "
                                  f"{original.shape[2]}x{original.shape[1]}; give intrinsics of the image as it is")
            camera = fit_cameras_to_size(camera, height, width)
            camera_source = camera_source or "given"
        trajectories, names, extra, extra_names = None, None, None, None
        if isinstance(trajectory, Cameras):
            trajectories = trajectory if len(trajectory.shape) == 2 else trajectory.reshape(1, -1)
        elif trajectory is not None and replace_trajectories:
            trajectories, names = _load_trajectory(trajectory, height, width)
        elif trajectory is not None:  # added to GEN3C's six: same frame count, first camera = the input camera
            extra, extra_names = _load_trajectory(trajectory, height, width, frames)
            if camera is None:  # the path's own intrinsics for the input view
                camera = Cameras(extra.K[0, 0], torch.eye(4), width, height)
                camera_source = f"the first camera of {Path(trajectory).name}"
            extra = Cameras(extra.K, camera.c2w.to(extra.c2w) @ extra.c2w, width, height)
        if trajectories is not None and camera is None:
            camera_source = "the first camera of the trajectory"
        timings["inputs"] = time.perf_counter() - t0
        report("inputs", timings["inputs"])

        # ---- teacher: depth → trajectories → warp + encode → denoise
        out = self.teacher(fitted, depth=depth_map, camera=camera, trajectories=trajectories, names=names, seed=seed,
                           steps=steps, num_frames=None if trajectories is not None else frames,
                           progress=progress is True, extra_trajectories=extra, extra_names=extra_names)
        for key in ("depth", "trajectories", "warp_encode", "denoise"):
            timings[key] = out.timings[key]
            report(key, timings[key])

        # ---- student: Plücker latents (tokenizer encoder) → decoder → raw Gaussians
        from lyra.lowmem import StageMeter, resident
        from lyra.student import LatentDecoder
        from lyra.student.inference import decode, plucker_of

        cams = out.cameras
        meter = StageMeter(dev, memory=self.low_memory)
        on = dev if self.low_memory else None
        transfer = dict(out.profile.get("transfer_s", {}))
        with meter.stage("plucker"), resident(self.encoder, on) as moved:
            plucker = plucker_of(cams.to(dev), self.encoder)
        transfer["plucker"] = moved.seconds
        timings["plucker"] = meter.seconds["plucker"]
        report("plucker", timings["plucker"])

        with meter.stage("student"), resident(self.student, on) as moved:
            H, W = out.depth.shape[-2:]
            raw = decode(self.student, out.raw_latents, Cameras(cams.K.float(), cams.c2w.float(), W, H), plucker,
                         self.single_view)
            del plucker
        transfer["student"] = moved.seconds
        timings["student"] = meter.seconds["student"]
        report("student", timings["student"])

        with meter.stage("gaussians"):
            (g,) = LatentDecoder.to_gaussians(raw[None], prune_ratio)
            n_raw = int(raw.shape[0])
            del raw
            g = g.detach().to("cpu").float()
        timings["gaussians"] = meter.seconds["gaussians"]
        report("gaussians", timings["gaussians"])


        videos = None
        if decode_videos:
            videos = self.teacher.decode(out)
            timings["decode_videos"] = out.timings["decode"]
            report("decode_videos", timings["decode_videos"])
        timings["total"] = time.perf_counter() - t_start
        peaks = _merge_peaks(out.profile.get("peak_gib"), meter.peak_gib(), out.profile.get("decode_peak_gib"))

        meta = {
            "preset": self.preset, "seed": int(seed), "steps": steps, "size": [height, width],
            "input": label, "input_size": [int(original.shape[1]), int(original.shape[2])], "fit": note,
            "frames": int(cams.shape[1]), "trajectories": list(out.names),
            "camera": {"fx": float(out.input_camera.K[0, 0]), "fy": float(out.input_camera.K[1, 1]),
                       "cx": float(out.input_camera.K[0, 2]), "cy": float(out.input_camera.K[1, 2]),
                       "fov_y_deg": float(out.input_camera.fov_y_deg),
                       "source": camera_source or "default 50° vertical field of view"},
            "center_depth": None if math.isnan(out.center_depth) else float(out.center_depth),
            "prune_ratio": prune_ratio, "gaussians_before_prune": n_raw, "gaussians": len(g),
            "input_view": None,
            "latents": list(out.latents.shape), "single_view": self.single_view, "device": str(dev),
            "cpu_threads": torch.get_num_threads(),
            "student_path": getattr(self.student, "compute_paths", dict)() or None,
            "denoiser_weights": self.quantized.mode if self.quantized is not None
            else str(self.teacher.denoiser.dtype).removeprefix("torch."),
            "weights": self.weights, "load_s": round(self.load_seconds, 4),
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
            "low_memory": self.low_memory, "peak_gib": peaks,
            "transfer_s": {k: round(v, 4) for k, v in transfer.items()},
        }
        scene = Scene(gaussians=g, cameras=cams, names=tuple(out.names), metadata=meta, videos=videos,
                      image=out.image, depth=out.depth, input_camera=out.input_camera.to("cpu"))
        # ---- input-view Gaussians: one per pixel of the photo (up to input_resolution on the long side)
        if input_resolution:
            t0 = time.perf_counter()
            scene = with_input_view(scene, original, input_resolution)
            t = scene.metadata["timings_s"] = dict(scene.metadata["timings_s"])
            t["input_view"] = round(time.perf_counter() - t0, 4)
            report("input_view", t["input_view"])
            t["total"] = round(time.perf_counter() - t_start, 4)
        return scene


def with_input_view(scene: Scene, photo: Tensor, max_side: int = DEFAULT_MAX_SIDE) -> Scene:
    """``scene`` (the latent head's Gaussians alone) with the photo's pixel Gaussians added
    (:mod:`lyra.student.input_view`): the input-view Gaussians first, then the latent head's Gaussians that they do not
    duplicate or hide (:func:`~lyra.student.input_view.drop_redundant`).

    Args:
        scene: a :class:`Scene` with ``depth`` and ``input_camera`` (at the working size) and no input-view Gaussians
            yet (``latent_start == 0``).
        photo: the photo ``[3, H0, W0]`` in [0, 1] as given to the pipeline (before the working-size fit); its crop
            to the working aspect is used.
        max_side: long side (pixels) of the input-view Gaussians, at most the crop's own (never upsampled).

    Returns:
        a new :class:`Scene` (the same cameras, videos, image and depth); ``metadata["input_view"]`` holds the
        delivered ``size`` ``[H, W]``, the count of input-view ``gaussians``, ``latent_kept`` / ``latent_dropped``
        and the settings; ``metadata["gaussians"]`` the new total.
    """
    import dataclasses

    from lyra.inputs import fit_to_size, photo_crop
    from lyra.student.input_view import (
        InputViewSettings,
        delivery_size,
        drop_redundant,
        fit_colors,
        input_view_gaussians,
        upsample_depth,
    )

    if scene.depth is None or scene.input_camera is None:
        raise ValueError("with_input_view needs the scene's input depth and input camera")
    if scene.latent_start:
        raise ValueError("the scene already has input-view Gaussians")
    depth = scene.depth.float().cpu()
    h, w = depth.shape
    crop = photo_crop(photo.float().cpu(), h, w)
    Hd, Wd = delivery_size(int(crop.shape[1]), int(crop.shape[2]), max_side)
    image, _ = fit_to_size(crop, Hd, Wd)
    settings = InputViewSettings()
    cam = scene.input_camera.to("cpu")
    pixels = input_view_gaussians(image.float(), upsample_depth(depth, Hd, Wd, settings.edge_ratio),
                                  cam.resize(Wd, Hd), settings)
    latent = scene.gaussians
    kept = latent[drop_redundant(latent, depth, cam, settings.redundant_margin)]
    both = fit_colors(Gaussians.cat([pixels, kept]), len(pixels), cam.resize(Wd, Hd), image.float(),
                      settings.color_iterations, backend="torch" if latent.means.device.type == "cpu" else "auto")
    meta = dict(scene.metadata)
    meta["input_view"] = {"size": [Hd, Wd], "gaussians": len(pixels), "latent_kept": len(kept),
                          "latent_dropped": len(latent) - len(kept), "footprint_px": settings.footprint,
                          "opacity": settings.opacity, "redundant_margin": settings.redundant_margin,
                          "color_iterations": settings.color_iterations}
    meta["gaussians"] = len(pixels) + len(kept)
    return dataclasses.replace(scene, gaussians=both, metadata=meta,
                               latent_start=len(pixels))


def video_gaussians(scene: Scene) -> Gaussians:
    """The Gaussians to render ``scene``'s fly-through with at the working size: the input-view Gaussians rebuilt at
    the working size from ``scene.image`` when the delivered ones are finer (a splat scene seen at a fraction of its
    resolution aliases, and renders slower), followed by the latent head's; otherwise ``scene.gaussians``."""
    import dataclasses

    iv = scene.metadata.get("input_view")
    if not scene.latent_start or not iv or scene.image is None or scene.depth is None:
        return scene.gaussians
    h, w = scene.depth.shape
    if max(iv["size"]) <= max(h, w):
        return scene.gaussians
    latent = dataclasses.replace(scene, gaussians=scene.gaussians[scene.latent_start:], latent_start=0)
    return with_input_view(latent, scene.image, max(h, w)).gaussians


def _merge_peaks(teacher: dict[str, float] | None, student: dict[str, float] | None,
                 decode: float | None) -> dict[str, float] | None:
    """Per-stage peak GPU memory (GiB) of the teacher's and the student's stages; ``run`` is the largest of both
    runs (and of the video decode, ``decode_videos``). ``None`` on the CPU."""
    if teacher is None and student is None:
        return None
    out = {k: v for k, v in (teacher or {}).items() if k != "run"}
    out.update({k: v for k, v in (student or {}).items() if k != "run"})
    if decode is not None:
        out["decode_videos"] = decode
    out["run"] = max([(teacher or {}).get("run", 0.0), (student or {}).get("run", 0.0), decode or 0.0])
    return out


def _input_camera(image: Any, img: Tensor, camera: Cameras | None, fov: float | None, focal_px: float | None,
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


def generate(image: Any, preset: str = "tiny", weights: str | os.PathLike | None = None, seed: int = 0,
             steps: int | None = None, size: tuple[int, int] | None = None,
             trajectory: str | os.PathLike | Cameras | None = None, depth: Any = "tiny",
             device: str | torch.device = "auto", progress: bool | ProgressFn = True, decode_videos: bool = False,
             student: str | os.PathLike | None = None, prune_ratio: float | None = PRUNE_RATIO,
             num_frames: int | None = None, low_memory: bool | None = None, camera: Cameras | None = None,
             fov: float | None = None, focal_px: float | None = None,
             intrinsics: tuple[float, float, float, float] | str | None = None, exif: bool = True,
             replace_trajectories: bool = False, input_resolution: int | None = None,
             quantize: str | None = None) -> Scene:
    """One image → a 3D Gaussian Splatting :class:`Scene`.

    Args:
        image: an image file (anything :func:`lyra.inputs.load_image` reads), a PIL image, or a tensor
            ``[3, H, W]`` in [0, 1]. It is centre-cropped to the working aspect and resized (the note is in
            ``scene.metadata["fit"]``): by default to a working size that follows the image's aspect (portrait
            included; :func:`lyra.geometry.intrinsics.working_size_for`), so only a sliver is cropped.
        preset: ``tiny`` (shipped weights, CPU-friendly) or ``official`` (needs ``weights``).
        weights: weights folder (see the module doc); student: a student export folder or decoder file.
        seed: draws the trajectory distances and the sampler noise (same seed → same scene).
        steps: sampler steps (default 35, as GEN3C).
        size: working ``(H, W)``, multiples of 16 (default: the image's aspect at about the preset's pixel count,
            e.g. 176 × 320 for a 16:9 photo with ``tiny``, 320 × 176 for a 9:16 one).
        trajectory: a camera-path file (lyra JSON, nerfstudio ``transforms.json`` or Lyra-2 ``trajectory.npz``; its
            first camera is the input view; its units are the depth's) *added* to GEN3C's six trajectories
            (re-expressed relative to its first camera and resampled to the six's frame count), or ``Cameras``
            ``[V, T]`` used instead of the six. ``replace_trajectories=True``: the file replaces the six (it then
            needs ``1 + 8k`` cameras).
        camera: the input camera (``Cameras`` of batch shape ``[]`` at the image's own size); else from
            ``intrinsics`` (``(fx, fy, cx, cy)`` in pixels of the image, or a :func:`~lyra.geometry.intrinsics.
            parse_intrinsics` spec), ``focal_px``, ``fov`` (vertical, degrees), the photo's EXIF focal length
            (``exif``), a trajectory file's first camera, else a 50° vertical field of view.
        depth: depth spec (``"tiny"``, a ``.npy``/``.png`` depth file of the image, ``hf:DIR``) or an estimator.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        progress: ``True``: one line per stage (and the sampler's bar) on stderr; ``False``: silent; or a
            callable ``(stage, seconds)``.
        decode_videos: also decode the teacher's latents to RGB videos (``scene.videos``).
        prune_ratio: fraction of Gaussians dropped, least opaque first (Lyra: 0.8; ``None``: keep all).
        num_frames: frames per GEN3C trajectory (``1 + 8k``; default the preset's, 17 for ``tiny``).
        low_memory: each model on the GPU only for its stage (module doc); default: on for ``official`` on CUDA.
        input_resolution: long side (pixels) of the input-view Gaussians, one per pixel of the photo
            (:mod:`lyra.student.input_view`; never above the photo's own resolution); ``0``: none, the latent head's
            Gaussians alone; default ``1024`` for ``tiny``, ``0`` for ``official``.
        quantize: ``"fp8"`` / ``"int8"``: the denoiser's weights in 8 bits (:meth:`ScenePipeline.from_preset`).

    Returns:
        :class:`Scene`: the input-view Gaussians (``scene.metadata["input_view"]``) followed by the latent head's
        Gaussians that they do not duplicate; without input-view Gaussians,
        ``len(scene.gaussians) == int(V·T·(H/8)·(W/8) · (1 − prune_ratio))``.

    Raises:
        InputFileError: the image cannot be read; ConfigError: a bad option; StudentWeightsMissing / WeightsError.
    """
    from lyra.teacher.depth import read_depth_file

    t0 = time.perf_counter()
    img, label = _as_image(image)  # fail on a bad image before loading any model
    if size is not None:
        _check_size(size)
    camera, camera_source = _input_camera(image, img, camera, fov, focal_px, intrinsics,
                                          exif and not (trajectory is not None and not isinstance(trajectory, Cameras)))
    depth_map = None
    if isinstance(depth, str) and not depth.startswith("hf:") and Path(depth).suffix.lower() in (".npy", ".png"):
        depth_map = read_depth_file(depth)
        if tuple(depth_map.shape) != tuple(img.shape[-2:]) and isinstance(image, (str, os.PathLike)):
            from lyra.inputs import fit_depth_to_size, stored_image_size

            if stored_image_size(image) == tuple(depth_map.shape):  # a large image shrunk while decoding
                depth_map = fit_depth_to_size(depth_map, img.shape[1], img.shape[2])
        if tuple(depth_map.shape) != tuple(img.shape[-2:]):
            raise InputFileError(f"depth {depth}: the depth map is {depth_map.shape[1]}x{depth_map.shape[0]} but the "
                                 f"image is {img.shape[2]}x{img.shape[1]}; give one of the image's size")
        depth = None
    pipe = ScenePipeline.from_preset(preset, weights=weights, student=student, depth=depth, device=device,
                                     low_memory=low_memory, quantize=quantize)
    reporter(progress)("load", pipe.load_seconds)
    scene = pipe(img, seed=seed, steps=steps, size=size, trajectory=trajectory, depth_map=depth_map,
                 progress=progress, decode_videos=decode_videos, prune_ratio=prune_ratio, num_frames=num_frames,
                 camera=camera, replace_trajectories=replace_trajectories, camera_source=camera_source,
                 input_resolution=input_resolution)
    scene.metadata["input"] = label
    scene.metadata["timings_s"] = {"load": round(pipe.load_seconds, 4), **scene.metadata["timings_s"],
                                   "total": round(time.perf_counter() - t0, 4)}
    return scene


# ------------------------------------------------------------------------------------------------ video input
# A video gives 4D Gaussians (lyra.dynamic_scene.DynamicScene); the pipeline lives in its own module.
from lyra.pipeline_dynamic import DynamicWeightsMissing, generate_dynamic  # noqa: E402
