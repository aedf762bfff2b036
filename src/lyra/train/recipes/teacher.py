"""Train the teacher's denoiser on procedural worlds: ``python -m lyra.train.recipes.teacher``.

Data: procedural world examples of ``lyra.world``'s train split. For each example the ground-truth
trajectory videos ``[6, T, 3, H, W]`` go through the frozen tokenizer (normalised latents: the target
``x_0``), and the input view is lifted with its **augmented** ground-truth depth and warped along the
six trajectories (:func:`~lyra.teacher.conditioning.warp_conditions`): the conditions. Depth
augmentation, so that the teacher survives estimated depth at inference: ``z' = s · z · exp(σ·n)``
with one global scale ``s`` log-uniform in ``[0.8, 1.25]`` per example and a per-pixel standard
normal field ``n`` that is spatially smooth (``σ = --depth-noise``, default 0.05; see
:func:`augment_depth` for why not i.i.d.), all drawn from a generator seeded by the world seed. A wrong
scale misplaces the warped content the way a monocular estimate does; the teacher learns to trust
the warp where it agrees with what it sees and to repair it elsewhere.

Frames are centre-cropped to multiples of 16 pixels (the denoiser patches the 8×-compressed latents
2 × 2); a no-op for the ``tiny`` preset (176 × 320).

A pool of ``--pool-worlds`` prepared examples ``(target latents, condition latents, mask latents)``
lives on the training device and is refreshed round-robin (``--refresh-count`` examples every
``--refresh-every`` steps), prepared on the training device too; each batch draws random trajectories
of random pool examples. Everything follows from the batch index (exact resume).

Objective: rectified flow (:func:`~lyra.teacher.sampler.flow_matching_loss`; the sampler module
says why). Evaluation on held-out *test* worlds, with exact depth: :func:`~lyra.teacher.sampler.sample`
with ``--eval-steps`` Euler steps, tokenizer decode, PSNR against the ground-truth videos on frames
``1..T−1`` (frame 0 is the input) — overall and on the disoccluded pixels (warp mask 0) — next to a
warp-only baseline (the warped frames with their holes filled by :func:`lyra.eval.baselines.fill_holes`).

Each invocation trains until ``--steps`` (or ``--max-minutes``), checkpoints (``--resume`` continues),
and exports the denoiser (fp16, diffusers layout) + ``training_record.json`` to ``--export-to``
(default ``OUT/export``).

Dynamic fine-tune (``--dynamic --init-from DIR``, Lyra's dynamic teacher): the examples are *dynamic*
worlds; the input is the input camera's video over the frame times ``t_f = f / (T − 1)`` (exact per-frame
depth, augmented as above: one global scale per example, an independent smooth field per frame), the
conditions are the dynamic 3D cache (:func:`~lyra.teacher.conditioning.warp_conditions_dynamic`: frame
``f`` of each trajectory warps input frame ``f``), the targets the ground-truth trajectory videos, whose
frame ``f`` shows the world at ``t_f``. ``--init-from`` starts from a teacher export (e.g. the shipped
static ``src/lyra/weights/teacher_tiny``; same architecture); the test evaluation uses dynamic test worlds.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import ConfigError, OutputPathError
from lyra.fileio import atomic_path, make_temp_dir, replace_dir
from lyra.seeds import mix_seed
from lyra.teacher.conditioning import Conditions, warp_conditions, warp_conditions_dynamic
from lyra.teacher.denoiser import ANCHORS, TeacherDenoiser, preset_config
from lyra.teacher.sampler import flow_matching_loss, sample, secant_distillation_loss
from lyra.train import IndexedBatches, Trainer
from lyra.train.checkpoint import list_checkpoints
from lyra.train.recipe import export_and_test, export_due, final_weights, fit, start_run, training_record
from lyra.train.runtime import add_optimizer_arguments, add_run_arguments, training_main

__all__ = ["TeacherPool", "augment_depth", "evaluate_teacher"]

#: Seeds of the teacher's training worlds start here (inside lyra.world's train split).
TEACHER_SEED_BASE = 2_500_000
RECORD_NAME = "training_record.json"


# ---------------------------------------------------------------------------------------- data
def augment_depth(depth: Tensor, generator: torch.Generator, scale_range: tuple[float, float] = (0.8, 1.25),
                  noise: float = 0.05, pixel_noise: float = 0.0, cell: int = 8) -> Tensor:
    """``s · depth · exp(noise · n_smooth + pixel_noise · n_pixel)`` (``[H, W]``, or ``[N, H, W]`` — the frames
    of a video: one scale ``s`` for all, an independent smooth field per frame; ``inf`` = sky stays ``inf``).

    ``s`` is log-uniform in ``scale_range`` (one per call); ``n_smooth`` is a per-pixel standard normal
    field that is spatially smooth: i.i.d. normals on a grid of ``cell × cell`` pixel cells, upsampled
    bicubically; ``n_pixel`` is i.i.d. per pixel (default off: the point cache treats a relative jump of
    3 % between neighbours as a depth discontinuity and drops it, so i.i.d. noise of σ = 0.03 removed
    70 % of the warped pixels of a micro world, while smooth noise of σ = 0.1 removed none — and
    monocular estimates err smoothly). ``generator`` is a CPU generator.
    """
    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    s = math.exp(lo + (hi - lo) * float(torch.rand((), generator=generator)))
    H, W = depth.shape[-2:]
    n = math.prod(depth.shape[:-2])
    coarse = torch.randn(n, 1, H // cell + 2, W // cell + 2, generator=generator)
    field = F.interpolate(coarse, size=(H, W), mode="bicubic", align_corners=True)[:, 0].reshape(depth.shape)
    field = noise * field + pixel_noise * torch.randn(depth.shape, generator=generator)
    return depth * (s * torch.exp(field.to(depth.device, depth.dtype)))


def static_video_cameras(camera: Any, num_frames: int) -> Any:
    """``Cameras [T]``: one camera (batch shape ``[]``) at every frame of a video (a static input camera)."""
    from lyra.geometry.cameras import Cameras

    return Cameras(camera.K.expand(num_frames, 3, 3), camera.c2w.expand(num_frames, 4, 4), camera.width,
                   camera.height)


@torch.no_grad()
def prepare_example(ex: Any, tokenizer: Any, depth: Tensor | None = None,
                    fill: bool = False) -> tuple[Tensor, Conditions]:
    """Target latents ``[6, C, t, h, w]`` (normalised; ``C`` the tokenizer's channels) and the warp
    :class:`Conditions` of example ``ex`` (``fill``: encoded with the warp's holes filled, for a denoiser whose
    ``fills_holes`` is true).

    Static: the input image lifted with ``depth`` ``[H, W]`` (default: the exact input depth). Dynamic
    (``ex.input_video`` present): the dynamic cache of the input video, lifted with ``depth`` ``[T, H, W]``
    (default: the exact per-frame depth), from the static input camera.
    """
    target = tokenizer.normalize(tokenizer.encode(ex.videos.to(tokenizer.device)))
    if ex.input_video is not None:
        T = ex.input_video.shape[0]
        cams = static_video_cameras(ex.cameras[0, 0], T)
        cond = warp_conditions_dynamic(ex.input_video, ex.input_depths if depth is None else depth, cams, ex.cameras,
                                       tokenizer, fill=fill)
    else:
        cond = warp_conditions(ex.image, ex.depth if depth is None else depth, ex.cameras[0, 0], ex.cameras,
                               tokenizer, fill=fill)
    return target, cond


@dataclass
class TeacherPool:
    """``make_batch(index) -> {"latents", "cond", "mask", "noise_seed"}`` for :class:`~lyra.train.IndexedBatches`.

    ``latents``/``cond`` ``[B, C, t, h, w]``, ``mask`` ``[B, 1, t, h, w]`` (one random trajectory of a
    random pool example each); ``prep_s``: seconds this batch spent preparing pool examples (logged, to
    tune ``refresh_every`` so that preparation stays a small share of a step).
    Pool slot ``s`` holds generation ``g(s, index)``; refresh ``r`` re-prepares
    slots ``(r − 1)·c … r·c − 1`` (mod pool size). World seeds:
    ``TEACHER_SEED_BASE + seed·10_000_019 + generation·pool_worlds + slot``. ``dynamic``: dynamic worlds,
    conditioned on their input video (:func:`prepare_example`). ``fill``: the conditions are encoded from the warp
    with its holes filled (the trained denoiser's ``fills_holes``).
    """

    batch_size: int
    tokenizer: Any
    seed: int = 0
    device: str = "cpu"
    preset: str = "tiny"
    pool_worlds: int = 32
    refresh_every: int = 2
    refresh_count: int = 1
    depth_scale: tuple[float, float] = (0.8, 1.25)
    depth_noise: float = 0.05
    depth_pixel_noise: float = 0.0
    dynamic: bool = False
    fill: bool = False

    def __post_init__(self) -> None:
        if self.pool_worlds < 1 or self.refresh_every < 1 or self.refresh_count < 0 or self.batch_size < 1:
            raise ConfigError("batch_size, pool_worlds and refresh_every must be >= 1, refresh_count >= 0")
        self._pool: dict[int, tuple[int, Tensor, Tensor, Tensor]] = {}
        self._prep_s = 0.0

    def _generation(self, slot: int, index: int) -> int:
        touched = (index // self.refresh_every) * self.refresh_count
        full, rest = divmod(touched, self.pool_worlds)
        return full + (1 if slot < rest else 0)

    def world_seed(self, slot: int, generation: int) -> int:
        return TEACHER_SEED_BASE + self.seed * 10_000_019 + generation * self.pool_worlds + slot

    def _entry(self, slot: int, index: int) -> tuple[Tensor, Tensor, Tensor]:
        seed = self.world_seed(slot, self._generation(slot, index))
        held = self._pool.get(slot)
        if held is None or held[0] != seed:
            from lyra.world import load_example

            t0 = time.perf_counter()
            ex = load_example(seed, self.preset, self.device, self.dynamic)
            g = torch.Generator().manual_seed(mix_seed(self.seed, seed, 11))
            exact = ex.input_depths if self.dynamic else ex.depth
            depth = augment_depth(exact, g, self.depth_scale, self.depth_noise, self.depth_pixel_noise)
            target, cond = prepare_example(ex, self.tokenizer, depth, self.fill)
            held = (seed, target.to(self.device, torch.float16), cond.latents.to(self.device, torch.float16),
                    cond.mask_latents.to(self.device, torch.float16))
            self._pool[slot] = held
            self._prep_s += time.perf_counter() - t0
        return held[1], held[2], held[3]

    def prefill(self, index: int = 0) -> int:
        """Prepare every pool slot's example for batch ``index`` now; returns how many were prepared.

        Called before the trainer times its first steps for ``--time-budget``: filled lazily, the pool prepares its
        examples during the first batches, and the probe then fits too few steps into the budget (as
        :meth:`lyra.train.recipes.tokenizer_data.VideoBatches.prefill` does for the tokenizer)."""
        before = {slot: held[0] for slot, held in self._pool.items()}
        for slot in range(self.pool_worlds):
            self._entry(slot, index)
        return sum(1 for slot, held in self._pool.items() if before.get(slot) != held[0])

    def __call__(self, index: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(mix_seed(self.seed, index, 13))
        self._prep_s = 0.0
        lat, cond, mask = [], [], []
        for _ in range(self.batch_size):
            slot = int(torch.randint(self.pool_worlds, (1,), generator=g))
            target, c, m = self._entry(slot, index)
            v = int(torch.randint(target.shape[0], (1,), generator=g))
            lat.append(target[v].float())
            cond.append(c[v].float())
            mask.append(m[v].float())
        return {"latents": torch.stack(lat), "cond": torch.stack(cond), "mask": torch.stack(mask),
                "noise_seed": mix_seed(self.seed, index, 17), "prep_s": self._prep_s}


def teacher_loss(model: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
    """:func:`flow_matching_loss` on a :class:`TeacherPool` batch (noise and times from ``noise_seed``)."""
    lat = batch["latents"]
    g = torch.Generator(device=lat.device).manual_seed(int(batch["noise_seed"]))
    loss = flow_matching_loss(model, lat, Conditions(batch["cond"], batch["mask"]), generator=g)
    return loss, {"mse_v": loss.detach(), "prep_s": float(batch.get("prep_s", 0.0))}


# ---------------------------------------------------------------------------------------- metrics
@torch.no_grad()
def evaluate_teacher(model: TeacherDenoiser, tokenizer: Any, seeds: list[int], preset: str, steps: int = 8,
                     seed: int = 0, dynamic: bool = False) -> dict[str, float]:
    """Mean of :func:`lyra.eval.teacher_benchmark.teacher_metrics` over test worlds ``seeds`` (exact input depth,
    ``steps`` Euler steps; ``dynamic``: dynamic worlds from their input video)."""
    from lyra.eval.teacher_benchmark import teacher_metrics
    from lyra.world import load_example

    model.eval()
    sums: dict[str, float] = {}
    dev = str(model.device)
    for s in seeds:
        ex = load_example(s, preset, dev, dynamic)
        _, cond = prepare_example(ex, tokenizer, fill=model.fills_holes)
        g = torch.Generator(device=model.device).manual_seed(mix_seed(seed, s, 19))
        lat = sample(model, cond.to(model.device), steps=steps, generator=g, progress=False)
        video = tokenizer.decode(tokenizer.denormalize(lat))
        gt = ex.videos.to(video.device)
        video = video[..., :gt.shape[-2], :gt.shape[-1]]
        for k, v in teacher_metrics(video, cond.rgb.to(video.device), gt, cond.mask.to(video.device)).items():
            sums[k] = sums.get(k, 0.0) + v
    n = max(len(seeds), 1)
    return {k: v / n for k, v in sums.items()} | {"worlds": len(seeds), "sample_steps": steps}


# ---------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lyra.train.recipes.teacher", description=__doc__.split("\n")[0])
    add_run_arguments(p, export_reserve=1.5)
    p.add_argument("--preset", default="tiny", help="denoiser preset (lyra.teacher.denoiser)")
    p.add_argument("--heads", type=int, default=None,
                   help="attention heads of a fresh denoiser (width = heads x the preset's head size; default: the "
                   "preset's); with --init-from the architecture is the export's")
    p.add_argument("--layers", type=int, default=None, help="transformer blocks of a fresh denoiser (default: the "
                   "preset's)")
    p.add_argument("--prediction", choices=("velocity", "clean", "edm"), default=None,
                   help="what a fresh denoiser's transformer outputs (TeacherDenoiser.forward): velocity (default; "
                   "with --init-from the export's); clean: the clean latents; edm: Karras et al.'s preconditioning, "
                   "the noisy input carries the estimate at low noise and the output the clean latents at high "
                   "noise (for wide latents such as tiny_block's 96 channels)")
    p.add_argument("--generated-channels", type=int, default=None, metavar="K",
                   help="a fresh denoiser generates only the leading K latent channels; the others come from the warp "
                   "where it sees and stay at their mean in the holes (TeacherDenoiser.generated_channels; for a "
                   "block code, whose trailing channels are fine texture). Default: all")
    p.add_argument("--distill-from", default=None, metavar="DIR",
                   help="few-step distillation: a student initialised from the teacher export DIR learns to reach, "
                   "in --distill-steps Euler steps, what DIR reaches in --distill-teacher-steps "
                   "(lyra.teacher.sampler.secant_distillation_loss); the export records its step count, which "
                   "lyra generate then uses by default")
    p.add_argument("--distill-steps", type=int, default=4, help="the student's sampler steps (default 4)")
    p.add_argument("--distill-teacher-steps", type=int, default=32,
                   help="the teacher's Euler steps the student imitates (a multiple of --distill-steps; default 32)")
    p.add_argument("--anchor", choices=ANCHORS, default=None,
                   help="warp: a fresh denoiser models the residual from the warp latents of the fully seen cells "
                   "(TeacherDenoiser.forward); filled: from the latents of the warp with its holes filled, "
                   "everywhere (the conditions are then encoded from the filled warp); none: the latents themselves "
                   "(default for a fresh denoiser; with --init-from the export's)")
    p.add_argument("--tokenizer", default=None,
                   help="tokenizer preset (frozen; default: the one the --init-from or --distill-from export records, "
                   "else the --preset's tokenizer, its dynamic one with --dynamic; the denoiser is built for its "
                   "latent channels)")
    p.add_argument("--world-preset", default="tiny", help="lyra.world preset (sets the working resolution)")
    p.add_argument("--batch-size", type=int, default=None, help="trajectories per step (default 24 on CUDA, 2 on CPU)")
    add_optimizer_arguments(p, lr=3e-4, warmup=500)
    p.add_argument("--pool-worlds", type=int, default=None,
                   help="prepared examples in the pool (default 64 on CUDA, 2 on CPU)")
    p.add_argument("--refresh-every", type=int, default=2, help="steps between pool refreshes")
    p.add_argument("--refresh-count", type=int, default=1, help="examples re-prepared per refresh")
    p.add_argument("--depth-scale", type=float, nargs=2, default=(0.8, 1.25), metavar=("LO", "HI"),
                   help="range of the global depth scale augmentation (log-uniform)")
    p.add_argument("--depth-noise", type=float, default=0.05,
                   help="σ of the smooth per-pixel log-normal depth noise (8-pixel cells, bicubic)")
    p.add_argument("--depth-pixel-noise", type=float, default=0.0, help="σ of i.i.d. per-pixel log-normal depth noise")
    p.add_argument("--ckpt-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--test-worlds", type=int, default=8, help="held-out test worlds evaluated at export")
    p.add_argument("--eval-steps", type=int, default=8, help="Euler steps of the evaluation sampler")
    p.add_argument("--export-to", default=None, metavar="DIR", help="export folder (default OUT/export)")
    p.add_argument("--no-export", action="store_true", help="skip the export at the end of this invocation")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where CUDA is present")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic worlds: condition on the input camera's video (dynamic 3D cache); see the module doc")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="start from a teacher export folder (e.g. src/lyra/weights/teacher_tiny for a dynamic "
                   "fine-tune); its architecture must be --preset's")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point (``argv`` defaults to ``sys.argv[1:]``)."""
    return training_main(build_parser(), run, "python -m lyra.train.recipes.teacher", "lyra train_teacher", argv)


def _check_export_dir(export_dir: Path) -> None:
    """OutputPathError unless ``export_dir`` is absent, empty or an earlier teacher export."""
    if export_dir.exists() and (not export_dir.is_dir() or (any(export_dir.iterdir())
                                                            and not (export_dir / "teacher.json").is_file())):
        raise OutputPathError(f"{export_dir} exists and is not a teacher export; choose another --export-to")


def _export(model: TeacherDenoiser, export_dir: Path, tokenizer: str | None = None) -> None:
    """Write ``model`` (fp16) to ``export_dir``, replacing an earlier export of this script there; ``tokenizer``
    (the preset it reads) is recorded in ``teacher.json``."""
    _check_export_dir(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(export_dir)
    try:
        model.save_pretrained(tmp, torch.float16, tokenizer=tokenizer)
        replace_dir(tmp, export_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _default_tokenizer(preset: str, dynamic: bool) -> str:
    """The tokenizer preset of hub preset ``preset`` (its dynamic one for ``dynamic``; ``tiny`` for other names)."""
    from lyra.weights.hub import PRESETS

    return PRESETS[preset].tokenizer_for(dynamic) if preset in PRESETS else "tiny"


def architecture(preset: str, channels: int, heads: int | None = None, layers: int | None = None,
                 start: TeacherDenoiser | None = None, generated: int | None = None) -> dict[str, Any]:
    """The denoiser config to train: ``start``'s (an ``--init-from`` export) if given, else preset ``preset`` for
    ``channels`` latent channels with ``heads`` attention heads, ``layers`` blocks and ``generated`` generated
    channels (:attr:`TeacherDenoiser.generated_channels`) where given."""
    if start is not None:
        if heads is not None or layers is not None or generated is not None:
            raise ConfigError("--heads/--layers/--generated-channels shape a fresh denoiser; with --init-from the "
                              "export's architecture is trained")
        transformer = {k: v for k, v in dict(start.config).items() if not k.startswith("_")}
        return {"transformer": transformer, "context_tokens": int(start.null_context.shape[1])}
    cfg = preset_config(preset, channels, generated)
    for key, value in (("num_attention_heads", heads), ("num_layers", layers)):
        if value is not None:
            if value < 1:
                raise ConfigError(f"--{'heads' if key.endswith('heads') else 'layers'} must be at least 1")
            cfg["transformer"][key] = int(value)
    return cfg


def _trained_or_given(option: str, given: str | None, trained: str | None, default: str,
                      init_from: str | None) -> str:
    """``--anchor`` / ``--prediction``: with ``--init-from`` the export's value (``trained``; another given value is
    refused), else the given one or ``default``."""
    if trained is None:
        return given or default
    if given is not None and given != trained:
        raise ConfigError(f"--{option} {given}: --init-from {init_from} was trained with {option} {trained}")
    return trained


def run(args: argparse.Namespace, t_process: float | None = None, command: str | None = None) -> int:
    """Train, checkpoint and export with parsed options."""
    from lyra.tokenizer import Tokenizer
    from lyra.world import get_preset, split_seeds

    rr = start_run(args, t_process, command)
    device, export_dir = rr.device, rr.export_dir
    batch_size = args.batch_size or (24 if rr.cuda else 2)
    pool_worlds = args.pool_worlds or (64 if rr.cuda else 2)
    get_preset(args.world_preset)  # fail before training on a wrong name
    if not args.no_export:
        _check_export_dir(export_dir)
    frozen: TeacherDenoiser | None = None
    if args.distill_from:
        if args.distill_steps < 1 or args.distill_teacher_steps % args.distill_steps:
            raise ConfigError(f"--distill-teacher-steps {args.distill_teacher_steps} must be a multiple of "
                              f"--distill-steps {args.distill_steps}")
        if args.init_from and Path(args.init_from) != Path(args.distill_from):
            raise ConfigError("--distill-from starts the student from the teacher it distils: leave --init-from out")
        args.init_from = args.distill_from
        frozen = TeacherDenoiser.from_pretrained(args.distill_from, device=device, dtype=torch.float32)
        frozen.eval().requires_grad_(False)
        if args.tokenizer is None and frozen.tokenizer_name:
            args.tokenizer = frozen.tokenizer_name
    start: TeacherDenoiser | None = None
    if args.init_from:
        start = TeacherDenoiser.from_pretrained(Path(args.init_from), dtype=torch.float32)  # WeightsError if not one
        if args.tokenizer is None and start.tokenizer_name:  # a chunk resumes on the latents its start was made for
            args.tokenizer = start.tokenizer_name
    tok_name = args.tokenizer or _default_tokenizer(args.preset, args.dynamic)
    tokenizer = Tokenizer.from_preset(tok_name).to(device).eval().requires_grad_(False)
    channels = tokenizer.latent_channels
    init: dict[str, Any] | None = None
    start_steps: int | None = None
    if start is not None:  # --init-from (or --distill-from, which sets it)
        from lyra.weights.hub import weights_sha256

        init_dir = Path(args.init_from)
        start_steps = start.default_steps
        if start.latent_channels != channels:
            raise ConfigError(f"--init-from {args.init_from}: a teacher of {start.latent_channels}-channel latents, "
                              f"tokenizer {tok_name} makes {channels}")
        init = {"path": str(init_dir), "weights_sha256": weights_sha256(init_dir)}
    arch = architecture(args.preset, channels, args.heads, args.layers,
                        start if init is not None else None, args.generated_channels)
    model = TeacherDenoiser.from_config(arch, seed=args.seed)
    anchor = _trained_or_given("anchor", args.anchor, start.anchor_mode if init is not None else None, "none",
                               args.init_from)
    prediction = _trained_or_given("prediction", args.prediction, start.prediction if init is not None else None,
                                   "velocity", args.init_from)
    model.set_anchor(anchor).set_prediction(prediction)
    silent_start = init is None and anchor == "filled" and prediction == "clean"
    if silent_start:  # a fresh filled-anchor teacher starts as the filled warp itself (x̂_0 = the anchor)
        model.silence_output()
    if init is not None:
        model.load_state_dict(start.state_dict())
        del start
        print(f"initial weights: {args.init_from} (its architecture; a resumed checkpoint overrides them)",
              flush=True)
    data = TeacherPool(batch_size=batch_size, tokenizer=tokenizer, seed=args.seed, device=device,
                       preset=args.world_preset, pool_worlds=pool_worlds, refresh_every=args.refresh_every,
                       refresh_count=args.refresh_count, depth_scale=tuple(args.depth_scale),
                       depth_noise=args.depth_noise, depth_pixel_noise=args.depth_pixel_noise, dynamic=args.dynamic,
                       fill=model.fills_holes)
    cfg = rr.config(
        print_every=args.log_every if args.no_progress else None,
        extra={"preset": args.preset, "tokenizer": tok_name, "batch_size": batch_size, "anchor": anchor,
               "silent_start": silent_start,
               "prediction": prediction,
               "architecture": {k: arch["transformer"][k] for k in ("num_attention_heads", "attention_head_dim",
                                                                    "num_layers", "in_channels", "out_channels")},
               "data": {"world_preset": args.world_preset, "pool_worlds": pool_worlds,
                        "refresh_every": args.refresh_every, "refresh_count": args.refresh_count,
                        "depth_scale": list(args.depth_scale), "depth_noise": args.depth_noise,
                        "depth_pixel_noise": args.depth_pixel_noise, "dynamic": args.dynamic},
               "init_from": init},
    )
    loss_fn = teacher_loss
    if frozen is not None:
        steps, teacher_steps = args.distill_steps, args.distill_teacher_steps
        teacher_net = frozen

        def loss_fn(m: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
            lat = batch["latents"]
            g = torch.Generator(device=lat.device).manual_seed(int(batch["noise_seed"]))
            noise = torch.randn(lat.shape, generator=g, device=lat.device)
            loss = secant_distillation_loss(m, teacher_net, Conditions(batch["cond"], batch["mask"]), noise, steps,
                                            teacher_steps)
            return loss, {"mse_secant": loss.detach(), "prep_s": float(batch.get("prep_s", 0.0))}

    trainer = Trainer(model, loss_fn, IndexedBatches(data), cfg)
    if args.time_budget is not None and not (args.resume and list_checkpoints(rr.out / "checkpoints")):
        # a fresh run measures its speed for the budget over its first steps: prepare the pool before them
        t0 = time.perf_counter()
        prepared = data.prefill(0)
        print(f"pool prepared before the time-budget probe: {prepared} worlds in {time.perf_counter() - t0:.0f} s",
              flush=True)
    result = fit(rr, trainer)
    if not export_due(rr, trainer):
        return 0

    final = final_weights(trainer, TeacherDenoiser.from_config(arch, seed=args.seed).set_anchor(anchor)
                          .set_prediction(prediction))
    final.default_steps = args.distill_steps if frozen is not None else (None if init is None else start_steps)
    record = training_record(
        rr, trainer, result,
        f"lyra TeacherDenoiser ({args.preset}; diffusers CosmosTransformer3DModel, rectified flow)",
        final.num_parameters(), {
            "batch_size": batch_size,
            "objective": ("rectified flow (velocity MSE, logit-normal t)" if frozen is None else
                          f"few-step distillation: the student's velocity at the {args.distill_teacher_steps}-step "
                          f"Euler path of {args.distill_from} at t = 1 - k/{args.distill_steps} regressed onto the "
                          "path's secant to the next of those times (lyra.teacher.sampler.secant_distillation_loss)"),
            "prediction": prediction, "anchor": anchor, "default_steps": final.default_steps,
            "architecture": {k: arch["transformer"][k] for k in ("num_attention_heads", "attention_head_dim",
                                                                 "num_layers", "in_channels", "out_channels")},
            "dynamic": args.dynamic,
            "init_from": init,
            "data": {
                "world_preset": args.world_preset, "tokenizer": tok_name, "latent_channels": channels,
                "seed": args.seed,
                "train_world_seeds": f"{data.world_seed(0, 0)} + generation*{pool_worlds} + slot; pool "
                                     f"{pool_worlds}, {args.refresh_count} re-prepared every {args.refresh_every} "
                                     "steps",
                "worlds": "dynamic (input: the input camera's video, dynamic 3D cache)" if args.dynamic else "static",
                "depth_augmentation": {"global_scale_log_uniform": list(args.depth_scale),
                                       "smooth_log_normal_sigma": args.depth_noise, "smooth_cell_px": 8,
                                       "iid_log_normal_sigma": args.depth_pixel_noise},
            },
        }, versions=("accelerate", "diffusers"))
    test_seeds = [int(s) for s in split_seeds("test")[:args.test_worlds]]

    def save(rec: dict[str, Any]) -> None:
        _export(final, export_dir, tok_name)
        with atomic_path(export_dir / RECORD_NAME) as tmp:
            Path(tmp).write_text(json.dumps(rec, indent=2, default=str) + "\n")

    eval_steps = args.distill_steps if frozen is not None else args.eval_steps

    def test_teacher(reloaded: TeacherDenoiser) -> dict[str, Any]:
        test = evaluate_teacher(reloaded, tokenizer, test_seeds, args.world_preset, eval_steps, args.seed,
                                args.dynamic)
        out = {"test": {"split": "test", "dynamic": args.dynamic, "world_seeds": test_seeds, "depth": "exact",
                        "frames": "1..T-1 of all six trajectories",
                        "warp_only_baseline": "fill_holes (nearest-valid diffusion)", "sample_steps": eval_steps,
                        **test, "precision": "fp16 weights, fp32 compute"}}
        if frozen is not None:  # the distilled-from teacher at 35 steps, the reference the few-step one must keep
            ref = evaluate_teacher(frozen, tokenizer, test_seeds, args.world_preset, 35, args.seed, args.dynamic)
            out["test_distilled_from_35_steps"] = {**ref, "sample_steps": 35}
        elif args.dynamic and init is not None:  # the weights it was fine-tuned from, on the same dynamic worlds
            initial = TeacherDenoiser.from_pretrained(args.init_from, device=device, dtype=torch.float32)
            ref = evaluate_teacher(initial, tokenizer, test_seeds, args.world_preset, eval_steps, args.seed, True)
            out["test_init"] = {"path": str(args.init_from), **ref}
        return out

    export_and_test(record, save, lambda: TeacherDenoiser.from_pretrained(export_dir, device=device,
                                                                          dtype=torch.float32), test_teacher)
    test = record["test"]
    print(f"exported {export_dir}: test PSNR teacher {test['psnr_teacher']:.2f} dB vs warp-only "
          f"{test['psnr_warp']:.2f} dB; disoccluded {test['psnr_teacher_disoccluded']:.2f} vs "
          f"{test['psnr_warp_disoccluded']:.2f} dB ({len(test_seeds)} worlds, {eval_steps} steps)", flush=True)
    if "test_init" in record:
        ref = record["test_init"]
        print(f"  its initial weights on the same worlds: {ref['psnr_teacher']:.2f} dB; disoccluded "
              f"{ref['psnr_teacher_disoccluded']:.2f} dB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
