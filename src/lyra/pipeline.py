"""The product: one image → a 3D Gaussian Splatting :class:`Scene`, one video → 4D Gaussians, a
:class:`DynamicScene` (``lyra generate``). One :class:`ScenePipeline` runs both; a static scene is the one-time
case of a dynamic one (:mod:`lyra.scene`).

Image flow (each stage timed, one progress line per stage)::

    image ──► lyra.inputs (load, centre-crop + resize to the working size)
          ──► TeacherPipeline (depth → six trajectories → warp + encode → sampler): raw latents [V, C, t, h, w]
          ──► the student as the one-time case of the video flow's DynamicStudent (StaticStudent): Plücker latents
              of the trajectory cameras (frozen tokenizer encoder) ──► LatentDecoder ──► Gaussians [V·T·h·w]
          ──► pruned to the most opaque 1 − prune_ratio (0.8: 20 %; pruned_on_cpu, shared with the video flow)
          ──► input-view Gaussians (tiny preset: one per pixel of the photo, lyra.student.input_view) ──► Scene

The tokenizer's RGB decoder is not run unless ``decode_videos=True`` (then ``Scene.videos`` holds the
teacher's decoded videos ``[V, T, 3, H, W]``).

Low memory (``low_memory=True``, the default for ``official`` on CUDA; :meth:`ScenePipeline.enable_low_memory`):
every model is parked on the CPU and put on the GPU only for its stage — depth net → tokenizer (warp + encode,
one trajectory at a time) → denoiser (one trajectory at a time) → tokenizer (Plücker latents) → student — with
the tokenizer's layers run in chunks (:mod:`lyra.tokenizer.chunked`) and the CUDA cache emptied between stages.
Same results as the plain mode up to float rounding. ``scene.metadata["peak_gib"]`` holds the peak GPU memory of
every stage (low-memory mode on CUDA; measuring it resets CUDA's peak counter at every stage boundary).

Video flow (LYRA_FACTS "Dynamic"; :meth:`ScenePipeline.video`, :func:`generate_dynamic`)::

    video ──► lyra.inputs.load_video: frames [T, 3, H, W] in [0, 1] (working size), times [T] in [0, 1]
          ──► input cameras, one per frame: Cameras [T] (OpenCV, c2w 4×4). Default: the static-camera assumption
              (every frame at the identity pose, lyra.inputs.default_camera's intrinsics); or given poses (the
              release uses ViPE's).
          ──► depth per frame [T, H, W] (z-depth; the depth estimator run on every frame; with a static camera each
              frame's scale is aligned to frame 0's by the median depth ratio)
          ──► dynamic teacher: frames + depth + cameras + times → raw latents of the six GEN3C trajectories
              [V=6, C, t, h, w], their cameras Cameras [V, T], and the time of each trajectory frame [T]
              (frame f of every trajectory shows the scene at times[f]: the camera moves while time advances)
          ──► time-conditioned student at every output time τ_k (time encoded as [t, cos t, sin t], source- and
              target-time embeddings): Gaussians(τ_k), pruned to the most opaque 1 − prune_ratio (Lyra: 20 %)
          ──► DynamicScene(times=τ [K], gaussians [K], cameras [V, T], camera_times [T], metadata)

The video models are *injected* as any objects following :class:`DynamicTeacher` and :class:`DynamicStudent`
(:mod:`lyra.pipeline_parts`; so the pipeline runs with fakes in tests). Without them :func:`load_dynamic_models`
finds the preset's dynamic weights (:func:`resolve_dynamic_weights`) and raises :class:`DynamicWeightsMissing`
("dynamic weights not found") when they are absent. The inputs of both flows are checked before any model runs
(:mod:`lyra.pipeline_inputs`).

Use :func:`generate` for one image and :func:`generate_dynamic` for one video; :class:`ScenePipeline` keeps the
models loaded between runs::

    from lyra.pipeline import generate, generate_dynamic
    scene = generate("photo.jpg", seed=3)
    scene.save("scene.ply")          # or .splat / .spz

    from lyra.inputs import load_video
    frames, times, info = load_video("clip.mp4", num_frames=17, size=(176, 320))
    scene4d = generate_dynamic(frames, times, output_times=9)
    scene4d.save("scene4d/")         # t000.ply … t008.ply + index.json + cameras.json

Weights
-------
Every shipped folder is found through the preset hub (:mod:`lyra.weights.hub`). ``preset="tiny"`` (default): the
shipped teacher, tokenizer and depth net under ``src/lyra/weights/`` and the student export
``src/lyra/weights/student_tiny/`` (``model.safetensors`` + ``student.json`` + ``training_record.json``, written by
:meth:`lyra.student.LatentDecoder.save_pretrained`). Another student export: ``student=DIR``. Videos use the
preset's dynamic folders (``teacher_tiny_dynamic/`` or else ``teacher_tiny/``, and ``student_tiny_dynamic/``;
:func:`resolve_dynamic_weights`).

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError, InputFileError, WeightsError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras
from lyra.pipeline_inputs import (
    DEFAULT_NUM_TIMES,
    VideoInputs,
    align_depth_scales,
    as_image,
    check_run_options,
    check_size,
    check_video_inputs,
    depth_estimator,
    estimate_depths,
    input_camera,
    load_trajectory,
    output_time_grid,
    static_cameras,
)
from lyra.pipeline_parts import (
    DynamicStudent,
    DynamicTeacher,
    DynamicTeacherOutput,
    DynamicWeightsMissing,
    ProgressFn,
    StaticStudent,
    StudentWeightsMissing,
    TimeStudent,
    VideoTeacher,
    check_teacher_output,
    kept_fraction,
    load_decoder,
    pruned_on_cpu,
    reporter,
    student_paths,
)
from lyra.scene import DynamicScene, Scene
from lyra.student.inference import PRUNE_RATIO  # the fraction of Gaussians dropped: Lyra keeps 20 %
from lyra.student.input_view import DEFAULT_MAX_SIDE
from lyra.teacher.attention import denoiser_attention_kernel
from lyra.weights.hub import get_preset, pick_device, preset_weights_dir, weights_hashes, weights_root

__all__ = ["DEFAULT_NUM_TIMES", "DYNAMIC_DECODER_NAMES", "OFFICIAL_LAYOUT", "PRUNE_RATIO", "DynamicScene",
           "DynamicStudent", "DynamicTeacher", "DynamicTeacherOutput", "DynamicWeights", "DynamicWeightsMissing",
           "Scene", "ScenePipeline", "StudentWeightsMissing", "align_depth_scales", "estimate_depths", "generate",
           "generate_dynamic", "load_dynamic_models", "output_time_grid", "resolve_dynamic_weights",
           "static_cameras", "student_weights_dir"]

#: Names tried, in order, for the decoder in an official ``weights`` folder.
OFFICIAL_DECODER_NAMES = ("decoder.safetensors", "decoder.pt", "lyra_static.safetensors", "lyra_static.pt")
OFFICIAL_LAYOUT = ("teacher/", "tokenizer/", "student/ or " + " | ".join(OFFICIAL_DECODER_NAMES))
#: Names tried, in order, for the dynamic 3DGS decoder in a ``weights`` folder (the release ships lyra_dynamic.pt).
DYNAMIC_DECODER_NAMES = ("lyra_dynamic.safetensors", "lyra_dynamic.pt", "dynamic_decoder.safetensors")


def student_weights_dir(preset: str = "tiny") -> Path:
    """Folder of the shipped student export of ``preset`` (the hub's :attr:`~lyra.weights.hub.Preset.student`,
    ``src/lyra/weights/student_tiny`` for ``tiny``). StudentWeightsMissing when the preset ships none."""
    folder = preset_weights_dir(preset, "student")
    if folder is None:
        raise StudentWeightsMissing(f"the '{preset}' preset ships no student; pass --student DIR (student=DIR)")
    return folder


# ------------------------------------------------------------------------------------------------ weights
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


@dataclass(frozen=True)
class DynamicWeights:
    """Where the dynamic models' weights are: ``teacher`` (a denoiser folder), ``tokenizer`` (a folder, or ``None``
    for the preset's), ``student`` (a student export folder or a released decoder file); ``static_teacher``: the
    teacher is the preset's shipped *static* denoiser standing in for a dynamic one (it reads the static
    tokenizer, :attr:`lyra.weights.hub.Preset.tokenizer`, not ``tokenizer_dynamic``)."""

    preset: str
    teacher: Path
    tokenizer: Path | None
    student: Path
    static_teacher: bool = False


def _weights_root() -> Path:
    """The shipped weights folder (:func:`lyra.weights.hub.weights_root`; a seam for tests)."""
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
    p = get_preset(preset)
    tokenizer = None
    static_teacher = False
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
        # The preset's shipped folders (lyra.weights.hub); GEN3C's one denoiser serves images and videos: without
        # a dynamic fine-tune the static teacher runs on the dynamic 3D cache (that is also what made the shipped
        # dynamic student's SDG data).
        if not (p.teacher_dynamic and p.teacher and p.student_dynamic):
            raise DynamicWeightsMissing(f"dynamic weights not found: the {preset} preset ships none; pass "
                                        "--weights DIR / --student PATH")
        t_dir, static_dir, s_dir = root / p.teacher_dynamic, root / p.teacher, root / p.student_dynamic
        teacher = next((d for d in (t_dir, static_dir) if (d / "config.json").is_file()), None)
        static_teacher = teacher == static_dir
        decoder = s_dir if (s_dir / "student.json").is_file() else None
        where = f"(looked for {t_dir} or {static_dir}, and {s_dir}; train them, or pass " \
                "--weights DIR / --student PATH)"
    if student is not None:
        decoder = Path(student).expanduser()
        if not decoder.exists():
            raise DynamicWeightsMissing(f"dynamic weights not found: student {decoder} does not exist")
    missing = [name for name, p in (("dynamic teacher", teacher), ("dynamic student", decoder)) if p is None]
    if missing:
        raise DynamicWeightsMissing(f"dynamic weights not found: no {' and no '.join(missing)} {where}")
    assert teacher is not None and decoder is not None
    return DynamicWeights(preset, teacher, tokenizer, decoder, static_teacher)


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
    from lyra.teacher.pipeline import TeacherPipeline

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
                                       dtype=dtype, tokenizer=found.tokenizer, dynamic=not found.static_teacher)
    model.check_tokenizer(pipe.tokenizer, f"the dynamic teacher's tokenizer ({found.student})")
    return VideoTeacher(pipe), TimeStudent(model, pipe.tokenizer)


# ------------------------------------------------------------------------------------------------ the pipeline
class ScenePipeline:
    """Loaded models of one preset: an image → :class:`Scene` (``pipe(image)``), or a video → :class:`DynamicScene`
    (``pipe.video(frames, times)``); see the module doc.

    A static scene is the one-time case of a dynamic one: both runs go inputs → teacher → student → pruned
    Gaussians → scene, with the same option checks, stage reporter and provenance; the image run decodes one
    Gaussian set (no time conditioning), the video run one per output time. Both read the student through the
    :class:`DynamicStudent` protocol (the image run through :class:`~lyra.pipeline_parts.StaticStudent`, time not
    read) and deliver its pruned Gaussians with the same :func:`~lyra.pipeline_parts.pruned_on_cpu` and input-view
    layer (:func:`input_view_layer`). The image run's teacher is the :class:`~lyra.teacher.pipeline.TeacherPipeline`
    itself (its own options: trajectory, input camera, decoded videos), reported stage by stage.

    Build with :meth:`from_preset` (``dynamic=True`` for videos) or, with injected models, :meth:`for_video`.
    Attributes: ``teacher`` (:class:`~lyra.teacher.pipeline.TeacherPipeline`; a :class:`DynamicTeacher` for videos),
    ``student`` (:class:`~lyra.student.LatentDecoder`; a :class:`DynamicStudent` for videos), ``encoder`` (the
    tokenizer used for the Plücker latents; ``None`` for videos, whose student keeps its own), ``single_view`` (the
    student was trained on one trajectory at a time), ``dynamic`` (the models take videos), ``weights`` (hashes),
    ``load_seconds``.
    """

    def __init__(self, teacher: Any, student: Any, encoder: Any, preset: str = "tiny", single_view: bool = False,
                 weights: dict[str, Any] | None = None, *, dynamic: bool = False) -> None:
        self.teacher = teacher
        self.student = student.eval().requires_grad_(False) if isinstance(student, torch.nn.Module) else student
        self.encoder = encoder
        self.preset = preset
        self.single_view = single_view
        self.dynamic = dynamic
        self.weights = weights or {}
        self.load_seconds = 0.0
        self.low_memory = False
        #: What ``quantize`` did to the denoiser (:class:`lyra.teacher.quant.QuantStats`), else ``None``.
        self.quantized: Any = None
        self.execution_device: torch.device | None = None
        #: long side (pixels) of the input-view Gaussians by default (0: the latent head's Gaussians alone); the
        #: tiny preset delivers the photo's detail, the official one stays as released unless asked
        self.input_resolution = DEFAULT_MAX_SIDE if preset == "tiny" else 0

    @classmethod
    def for_video(cls, teacher: DynamicTeacher, student: DynamicStudent, preset: str = "tiny",
                  device: str | torch.device = "auto") -> ScenePipeline:
        """A video pipeline over given models (any objects following :class:`DynamicTeacher` and
        :class:`DynamicStudent`); ``device`` is where the depth estimator runs and what the metadata records."""
        pipe = cls(teacher, student, None, preset=preset, dynamic=True)
        pipe.execution_device = pick_device(device)
        return pipe

    def enable_low_memory(self, device: str | torch.device | None = None, trajectory_batch: int = 1) -> ScenePipeline:
        """Park every model on the CPU; run each on ``device`` (default: where the student is now) only during its
        stage, ``trajectory_batch`` trajectories at a time (see the module doc). Returns ``self``."""
        from lyra.lowmem import park

        if self.dynamic:
            raise TypeError("low-memory mode is for the image models (the video models stay where they were loaded)")
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
                    low_memory: bool | None = None, quantize: str | None = None,
                    dynamic: bool = False) -> ScenePipeline:
        """Load the teacher (depth net, tokenizer, denoiser) and the student of ``preset``.

        ``dynamic=True`` loads the video models instead (:func:`load_dynamic_models`: the dynamic teacher and the
        time-conditioned student; ``weights`` / ``student`` as :func:`resolve_dynamic_weights` reads them; the
        depth estimator is chosen per video, :meth:`video`'s ``depth``); ``dtype`` and ``low_memory`` then do not
        apply.

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
        from lyra.teacher.pipeline import TeacherPipeline, teacher_weights_dir
        from lyra.tokenizer import Tokenizer
        from lyra.tokenizer.tokenizer import preset_weights_path
        from lyra.weights.hub import DEPTH_NETS, depth_net_dir

        p = get_preset(preset)
        t0 = time.perf_counter()
        dev = pick_device(device)
        if dynamic:
            video_teacher, video_student = load_dynamic_models(preset, weights, student, depth, dev)
            pipe = cls.for_video(video_teacher, video_student, preset=preset, device=dev)
            pipe.load_seconds = time.perf_counter() - t0
            return pipe
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

            # weight-only: the product stays bf16. FP8 products (compute="fp8", lyra.teacher.attention) were measured
            # slower or barely faster and to need more memory at full shape (docs/benchmarks.md, "Fast paths")
            quant = quantize_linears(teacher.denoiser, quantize)
        model.check_tokenizer(teacher.tokenizer, f"the '{preset}' teacher's tokenizer ({decoder_path})")
        tok_name = meta.get("tokenizer") or p.tokenizer
        if tok_name == p.tokenizer:
            encoder = teacher.tokenizer
        else:  # a student trained with another tokenizer's Plücker latents
            encoder = Tokenizer.from_preset(tok_name, device=home).eval().requires_grad_(False)
            model.check_tokenizer(encoder, f"its Plücker tokenizer {tok_name}")
        tok_folder = tokenizer_dir if tokenizer_dir is not None else preset_weights_path(p.tokenizer)
        depth_dir = depth_net_dir(depth) if isinstance(depth, str) and depth in DEPTH_NETS else None
        hashes = {
            "teacher": weights_hashes(teacher_dir if teacher_dir is not None else teacher_weights_dir(preset)),
            "tokenizer": weights_hashes(tok_folder),
            "student": weights_hashes(decoder_path),
            "depth": weights_hashes(depth_dir) if depth_dir is not None else (
                depth if isinstance(depth, str) else None),
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
        """Where the models run (the execution device in low-memory mode or for videos, else the student's)."""
        if (self.low_memory or self.dynamic) and self.execution_device is not None:
            return self.execution_device
        return next(self.student.parameters()).device

    @property
    def working_size(self) -> tuple[int, int]:
        """``(H, W)`` the preset's weights were trained at (176 × 320 for ``tiny``)."""
        return self.teacher.working_size

    def video(self, frames: Tensor, times: Tensor, *, depth: Any = "tiny", depth_maps: Tensor | None = None,
              input_cameras: Cameras | None = None, output_times: int | Sequence[float] | Tensor | None = None,
              seed: int = 0, steps: int | None = None, prune_ratio: float | None = None,
              progress: bool | ProgressFn = True, metadata: dict[str, Any] | None = None,
              input_view: bool | None = None) -> DynamicScene:
        """One video → :class:`DynamicScene` (arguments as :func:`generate_dynamic`; needs a pipeline of the video
        models, ``from_preset(..., dynamic=True)`` or :meth:`for_video`)."""
        t_start = time.perf_counter()
        inputs = check_video_inputs(frames, times, depth_maps, input_cameras, output_times, seed, steps, prune_ratio)
        timings = {"inputs": time.perf_counter() - t_start}
        reporter(progress)("inputs", timings["inputs"])
        return self._video(inputs, depth, progress, metadata, timings, t_start, input_view)

    @torch.no_grad()
    def _video(self, inputs: VideoInputs, depth: Any, progress: bool | ProgressFn, metadata: dict[str, Any] | None,
               timings: dict[str, float], t_start: float, input_view: bool | None = None) -> DynamicScene:
        """The video stages on checked inputs: depth of every frame → dynamic teacher → the time-conditioned
        student at every output time → pruned Gaussians → per-time input-view Gaussians (``input_view``; default:
        when ``self.input_resolution`` is on, as for the tiny preset) → :class:`DynamicScene`. ``timings`` holds
        the stages already run (``inputs``, ``load``), ``t_start`` when the run began."""
        if not self.dynamic:
            raise TypeError("this pipeline holds the image models: load the video ones with "
                            "ScenePipeline.from_preset(..., dynamic=True)")
        report = reporter(progress)
        dev = self.device
        frames, T = inputs.frames, len(inputs.frames)
        H, W = frames.shape[-2:]

        # ---- depth of every frame
        t0 = time.perf_counter()
        depth_source, depth_scales, depth_maps = "given", None, inputs.depth_maps
        if depth_maps is None:
            estimator = depth
            if estimator is None:
                raise ConfigError("no depth: give depth (an estimator or spec such as 'tiny') or depth_maps")
            if isinstance(estimator, str):
                estimator = depth_estimator(estimator, dev)
            depth_maps = estimate_depths(frames, estimator, device=dev)
            depth_source = depth if isinstance(depth, str) else type(depth).__name__
            if inputs.static_camera:
                depth_maps, depth_scales = align_depth_scales(depth_maps)
        timings["depth"] = time.perf_counter() - t0
        report("depth", timings["depth"])

        # ---- dynamic teacher: latents of the six trajectories
        t0 = time.perf_counter()
        out = check_teacher_output(self.teacher(frames, depth_maps, inputs.cameras, inputs.times, seed=inputs.seed,
                                                steps=inputs.steps), T)
        timings["teacher"] = time.perf_counter() - t0
        report("teacher", timings["teacher"])

        # ---- time-conditioned student at every output time (a static scene is the case of one time)
        t0 = time.perf_counter()
        sets: list[Gaussians] = []
        before: list[int] = []
        from tqdm import tqdm

        for tau in tqdm(inputs.output_times.tolist(), desc="student", unit="time", disable=progress is not True):
            g = self.student(out, float(tau))
            if not isinstance(g, Gaussians):
                raise TypeError(f"the student must return Gaussians, got {type(g).__name__}")
            before.append(len(g))
            sets.append(pruned_on_cpu(g, inputs.prune_ratio))
        timings["student"] = time.perf_counter() - t0
        report("student", timings["student"])

        # ---- per-time input-view Gaussians: each output time shows its nearest input frame at pixel resolution
        use_input_view = self.input_resolution > 0 if input_view is None else bool(input_view)
        input_view_info: dict[str, Any] | None = None
        if use_input_view:
            t0 = time.perf_counter()
            nearest = [int((inputs.times - tau).abs().argmin()) for tau in inputs.output_times.tolist()]
            counts = []
            for k, i in enumerate(nearest):
                sets[k], count, info = input_view_layer(sets[k], frames[i].float().cpu(), depth_maps[i],
                                                        inputs.cameras[i])
                counts.append(count)
            per_time = ("latent_kept", "latent_dropped", "latent_shrunk")  # of the last time only: left out
            input_view_info = {**{k: v for k, v in info.items() if k not in per_time}, "frames": nearest,
                               "gaussians": counts}
            timings["input_view"] = time.perf_counter() - t0
            report("input_view", timings["input_view"])
        timings["total"] = time.perf_counter() - t_start

        meta: dict[str, Any] = {
            "kind": "dynamic", "preset": self.preset, "seed": int(inputs.seed), "steps": inputs.steps,
            "size": [int(H), int(W)], "frames": T,
            "input_times": [round(float(v), 6) for v in inputs.times],
            "output_times": [round(float(v), 6) for v in inputs.output_times],
            "input_cameras": "static (identity pose, 50° FoV)" if inputs.static_camera else "given",
            "depth": depth_source,
            "depth_scales": None if depth_scales is None else [round(float(v), 6) for v in depth_scales],
            "trajectories": list(out.names), "latents": list(out.raw_latents.shape),
            "center_depth": None if math.isnan(out.center_depth) else float(out.center_depth),
            "prune_ratio": inputs.prune_ratio, "gaussians_before_prune": before, "gaussians": [len(g) for g in sets],
            "device": str(dev), "weights": dict(out.weights), "student_path": student_paths(self.student),
            "input_view": input_view_info,
            "timings_s": {k: round(v, 4) for k, v in {**out.timings, **timings}.items()},
        }
        meta.update(metadata or {})
        return DynamicScene(times=inputs.output_times, gaussians=sets, cameras=out.cameras.to("cpu"),
                            names=tuple(out.names), camera_times=out.frame_times.detach().float().cpu(),
                            metadata=meta)

    @property
    def default_steps(self) -> int | None:
        """The sampler steps the teacher's denoiser records (a few-step distillation's count), else ``None``: the
        35 of :data:`lyra.pipeline_inputs.DEFAULT_STEPS`. ``steps=`` overrides it."""
        steps = getattr(getattr(self.teacher, "denoiser", None), "default_steps", None)
        return int(steps) if isinstance(steps, int) else None

    @torch.no_grad()
    def __call__(self, image: Any, seed: int = 0, steps: int | None = None, size: tuple[int, int] | None = None,
                 trajectory: str | os.PathLike | Cameras | None = None, depth_map: Tensor | None = None,
                 progress: bool | ProgressFn = True, decode_videos: bool = False,
                 prune_ratio: float | None = PRUNE_RATIO, num_frames: int | None = None,
                 camera: Cameras | None = None, replace_trajectories: bool = False,
                 camera_source: str | None = None, input_resolution: int | None = None) -> Scene:
        """One image → :class:`Scene` (arguments as :func:`generate`; ``camera`` is the input camera at the image's
        own size, ``camera_source`` a note of where its intrinsics came from)."""
        if self.dynamic:
            raise TypeError("this pipeline holds the video models: call pipe.video(frames, times)")
        t_start = time.perf_counter()
        report = reporter(progress)
        timings: dict[str, float] = {}
        dev = self.device

        # ---- inputs (checked before any model runs)
        t0 = time.perf_counter()
        original, label = as_image(image)
        from lyra.geometry.intrinsics import working_size_for

        height, width = check_size(size) if size is not None else working_size_for(
            int(original.shape[1]), int(original.shape[2]), self.working_size)
        steps = check_run_options(seed, steps if steps is not None else self.default_steps)
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
            trajectories, names = load_trajectory(trajectory, height, width)
        elif trajectory is not None:  # added to GEN3C's six: same frame count, first camera = the input camera
            extra, extra_names = load_trajectory(trajectory, height, width, frames)
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

        # ---- student: the one-time case of the video run's DynamicStudent (Plücker latents → decoder → Gaussians)
        from lyra.lowmem import StageMeter

        cams = out.cameras
        meter = StageMeter(dev, memory=self.low_memory)
        transfer = dict(out.profile.get("transfer_s", {}))
        one_time = DynamicTeacherOutput(raw_latents=out.raw_latents, cameras=cams, names=tuple(out.names),
                                        frame_times=torch.zeros(cams.shape[1]), center_depth=out.center_depth)
        student = StaticStudent(self.student, self.encoder, self.single_view, meter,
                                on=dev if self.low_memory else None)
        g = student(one_time, 0.0)
        transfer.update(student.transfer)
        for key in ("plucker", "student"):
            timings[key] = meter.seconds[key]
            report(key, timings[key])

        with meter.stage("gaussians"):
            n_raw = len(g)
            at_cap = kept_fraction(g, student.at_scale_cap, prune_ratio)
            g = pruned_on_cpu(g, prune_ratio)
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
            "latent_at_scale_cap": None if at_cap is None else round(at_cap, 6),
            "input_view": None,
            "latents": list(out.latents.shape), "single_view": self.single_view, "device": str(dev),
            "cpu_threads": torch.get_num_threads(),
            "student_path": student_paths(student) or None,
            "denoiser_weights": self.quantized.mode if self.quantized is not None
            else str(self.teacher.denoiser.dtype).removeprefix("torch."),
            "denoiser_attention": denoiser_attention_kernel(self.teacher.denoiser),
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


def input_view_layer(latent: Gaussians, image: Tensor, depth: Tensor, camera: Cameras,
                     settings: Any = None) -> tuple[Gaussians, int, dict[str, Any]]:
    """The input-view Gaussians of one view in front of the latent Gaussians they do not duplicate or hide
    (:mod:`lyra.student.input_view`).

    Args:
        latent: the latent head's Gaussians (of one time).
        image: the view ``[3, Hd, Wd]`` in [0, 1] at the delivery size (its own aspect = the working one).
        depth: its z-depth ``[h, w]`` at the working size; camera: its camera at the working size (batch ``[]``).
        settings: :class:`~lyra.student.input_view.InputViewSettings` (``None``: the defaults). With
            ``sharpen_radius > 0`` the depth's edges are first sharpened against the view's colours
            (:func:`~lyra.student.input_view.sharpen_depth_edges`; off by default, see that setting).

    Returns:
        ``(gaussians, count, info)``: the input-view Gaussians first (``count`` of them, one per pixel with depth,
        colours refitted at the camera), then the kept latent ones (shrunk where their footprint would spill over
        the view, :func:`~lyra.student.input_view.hide_behind_surface`); ``info`` the sizes, counts and settings.
    """
    from lyra.student.input_view import (
        InputViewSettings,
        fit_colors,
        hide_behind_surface,
        input_view_gaussians,
        sharpen_depth_edges,
        upsample_depth,
    )

    sharpened = 0.0
    Hd, Wd = image.shape[-2:]
    settings = InputViewSettings() if settings is None else settings
    cam = camera.to("cpu")
    depth = depth.float().cpu()
    if settings.sharpen_radius > 0:  # the estimate's ramps across object edges pulled to the colour edge's sides
        small = torch.nn.functional.interpolate(image.float().cpu()[None], size=tuple(depth.shape), mode="area")[0]
        sharp = sharpen_depth_edges(depth, small, settings.sharpen_radius, settings.sharpen_sigma,
                                    settings.sharpen_iterations, settings.sharpen_plane_tol)
        sharpened = float(((sharp - depth).abs() > 1e-6 * depth.abs()).float().mean())
        depth = sharp
    pixels = input_view_gaussians(image.float(), upsample_depth(depth, Hd, Wd, settings.edge_ratio),
                                  cam.resize(Wd, Hd), settings)
    keep, shrink = hide_behind_surface(latent, depth, cam, settings.redundant_margin, settings.footprint_reach)
    kept = latent[keep]
    shrink = shrink[keep].to(kept.scales)
    kept = Gaussians(kept.means, kept.quats, kept.scales * shrink[:, None], kept.opacities, kept.colors, kept.sh_rest)
    both = fit_colors(Gaussians.cat([pixels, kept]), len(pixels), cam.resize(Wd, Hd), image.float(),
                      settings.color_iterations, backend="torch" if latent.means.device.type == "cpu" else "auto")
    info = {"size": [int(Hd), int(Wd)], "gaussians": len(pixels), "latent_kept": len(kept),
            "latent_dropped": len(latent) - len(kept), "latent_shrunk": int((shrink < 1).sum()),
            "depth_sharpened": round(sharpened, 4), "footprint_px": settings.footprint, "opacity": settings.opacity,
            "redundant_margin": settings.redundant_margin, "footprint_reach": settings.footprint_reach,
            "color_iterations": settings.color_iterations}
    return both, len(pixels), info


def with_input_view(scene: Scene, photo: Tensor, max_side: int = DEFAULT_MAX_SIDE) -> Scene:
    """``scene`` (the latent head's Gaussians alone) with the photo's pixel Gaussians added
    (:func:`input_view_layer`): the input-view Gaussians first, then the latent head's Gaussians that they do not
    duplicate or hide, shrunk where their footprint would spill over the photo at its camera.

    Args:
        scene: a :class:`Scene` with ``depth`` and ``input_camera`` (at the working size) and no input-view Gaussians
            yet (``latent_start == 0``).
        photo: the photo ``[3, H0, W0]`` in [0, 1] as given to the pipeline (before the working-size fit); its crop
            to the working aspect is used.
        max_side: long side (pixels) of the input-view Gaussians, at most the crop's own (never upsampled).

    Returns:
        a new :class:`Scene` (the same cameras, videos, image and depth); ``metadata["input_view"]`` holds the
        delivered ``size`` ``[H, W]``, the count of input-view ``gaussians``, ``latent_kept`` / ``latent_dropped``,
        ``latent_shrunk`` and the settings; ``metadata["gaussians"]`` the new total.
    """
    import dataclasses

    from lyra.inputs import fit_to_size, photo_crop
    from lyra.student.input_view import delivery_size

    if scene.depth is None or scene.input_camera is None:
        raise ValueError("with_input_view needs the scene's input depth and input camera")
    if scene.latent_start:
        raise ValueError("the scene already has input-view Gaussians")
    h, w = scene.depth.shape
    crop = photo_crop(photo.float().cpu(), h, w)
    Hd, Wd = delivery_size(int(crop.shape[1]), int(crop.shape[2]), max_side)
    image, _ = fit_to_size(crop, Hd, Wd)
    both, count, info = input_view_layer(scene.gaussians, image, scene.depth, scene.input_camera)
    meta = dict(scene.metadata)
    meta["input_view"] = info
    meta["gaussians"] = len(both)
    return dataclasses.replace(scene, gaussians=both, metadata=meta, latent_start=count)


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
        steps: sampler steps (default: the count a few-step teacher records, 4 for the shipped ``tiny`` one; else
            35, as GEN3C).
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
    img, label = as_image(image)  # fail on a bad image before loading any model
    if size is not None:
        check_size(size)
    camera, camera_source = input_camera(image, img, camera, fov, focal_px, intrinsics,
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


# ------------------------------------------------------------------------------------------------ a video
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
    input_view: bool | None = None,
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
        input_view: put in front of each time's Gaussians one Gaussian per pixel of the input frame nearest that
            time (:func:`input_view_layer`, at the working size), so the 4D scene shows the video's own motion;
            default: on for the tiny preset, off for the official one (its decoder's output as released).

    Returns:
        :class:`DynamicScene` with ``K`` output times; ``gaussians[k]`` = the pruned student output at ``times[k]``
        (after the input-view Gaussians of its nearest frame when ``input_view``);
        ``cameras`` the teacher's trajectories ``[V, T]`` and ``camera_times`` their frame times.

    Raises:
        ConfigError: bad frames, times, cameras, depth or options (checked before any model runs);
        DynamicWeightsMissing: no models given and no dynamic weights found.
    """
    t_start = time.perf_counter()
    report = reporter(progress)
    # ---- inputs, all checked before any model is loaded or run
    inputs = check_video_inputs(frames, times, depth_maps, input_cameras, output_times, seed, steps, prune_ratio)
    dev = pick_device(device)
    timings = {"inputs": time.perf_counter() - t_start}
    report("inputs", timings["inputs"])

    # ---- models (the weights are checked before the depth net is loaded)
    if teacher is None or student is None:
        t0 = time.perf_counter()
        loaded_teacher, loaded_student = load_dynamic_models(preset, weights, student_weights, depth, dev)
        teacher, student = teacher or loaded_teacher, student or loaded_student
        timings["load"] = time.perf_counter() - t0
        report("load", timings["load"])
    pipe = ScenePipeline.for_video(teacher, student, preset=preset, device=dev)
    return pipe._video(inputs, depth, progress, metadata, timings, t_start, input_view)
