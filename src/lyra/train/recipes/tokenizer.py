"""Train the video tokenizer (``python -m lyra.train.recipes.tokenizer``), resumable in time-limited chunks.

Data: procedural world videos (``--data world``, rendered on the training device) or synthetic moving
shapes (``--data synthetic``), ``--frames`` × ``--size`` (default 17 × 176 × 320, the ``tiny`` preset),
random trajectories of a refreshed pool of worlds, random flips / time reversal.
Loss: L1 on [-1, 1] pixels + ``--grad-weight`` × L1 of the spatial image gradients.
Optimiser: AdamW, warm-up then cosine decay; bf16 autocast on CUDA; EMA of the weights (exported).

Every invocation trains until ``--steps`` (or ``--max-minutes`` of wall time, counted from the start of
the process, with ``--export-reserve`` minutes kept for the export), checkpoints, and exports:

* ``<export>/config.json`` + ``diffusion_pytorch_model.safetensors`` (fp16, diffusers format) with
  latent statistics (per channel and latent frame) measured on training videos;
* ``<export>/training_record.json``: command, data seeds, steps, time, and reconstruction PSNR / SSIM
  per frame position on held-out test worlds (world source) or held-out synthetic videos.

``--time-budget M`` fits the whole run into M minutes of training (the step count is set from the
speed measured early in the first chunk and kept by the resumed chunks; the LR schedule spans it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lyra.errors import ConfigError
from lyra.eval.metrics import delta_e2000, psnr, ssim
from lyra.tokenizer.presets import PRESETS, STAT_FRAMES
from lyra.tokenizer.tokenizer import WEIGHTS_NAME, Tokenizer, stats_to_frames
from lyra.train import IndexedBatches, Trainer
from lyra.train.checkpoint import list_checkpoints
from lyra.train.recipe import (
    RecipeRun,
    export_and_test,
    export_due,
    final_weights,
    fit,
    provenance,
    start_run,
    training_record,
)
from lyra.train.recipes.tokenizer_data import (
    VideoBatches,
    colour_patch_videos,
    sample_world_cpu,
    synthetic_videos,
    test_world_seeds,
)
from lyra.train.runtime import add_optimizer_arguments, add_run_arguments, training_main
from lyra.weights.hub import sha256_file

RECORD_NAME = "training_record.json"
#: Seeds of the held-out synthetic evaluation videos (never drawn by training: those use mixed seeds).
_EVAL_SYNTH_SEED = 987_654_321


# ---------------------------------------------------------------------------------------- loss
def reconstruction_loss(model: nn.Module, videos: Tensor, grad_weight: float = 0.5) -> tuple[Tensor, dict[str, Tensor]]:
    """L1 + ``grad_weight`` · gradient-L1 of ``decode(encode(x))`` vs ``x`` (model range [-1, 1]).

    ``videos``: ``[B, T, 3, H, W]`` in [0, 1]; ``model``: an ``AutoencoderKLCosmos`` (or its DDP wrapper),
    whose ``forward`` encodes and decodes. Also reports the PSNR on [0, 1] of the batch.
    """
    x = videos.permute(0, 2, 1, 3, 4) * 2.0 - 1.0  # [B, 3, T, H, W]
    y = model(x).sample.float()
    diff = y - x
    l1 = diff.abs().mean()
    loss = l1
    parts: dict[str, Tensor] = {"l1": l1.detach()}
    if grad_weight > 0:
        gx = (diff[..., :, 1:] - diff[..., :, :-1]).abs().mean()
        gy = (diff[..., 1:, :] - diff[..., :-1, :]).abs().mean()
        grad = 0.5 * (gx + gy)
        loss = loss + grad_weight * grad
        parts["grad_l1"] = grad.detach()
    mse01 = (diff.detach() * 0.5).square().mean()
    parts["psnr"] = -10.0 * torch.log10(mse01.clamp_min(1e-12))
    return loss, parts


# ---------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_reconstruction(tokenizer: Tokenizer, videos: Iterable[Tensor],
                            masks: Iterable[Tensor | None] | None = None) -> dict[str, Any]:
    """PSNR / SSIM / CIEDE2000 ΔE of ``tokenizer.roundtrip`` per frame position over batches ``[B, T, 3, H, W]``.

    ``masks`` (one per batch, ``[B, 1, 1, H, W]`` or ``None``): pixels the mean ΔE covers (all by default;
    PSNR and SSIM always cover whole frames). Returns means over all frames, per frame position (averaged
    over videos), and counts.
    """
    psnr_sum: Tensor | None = None
    ssim_sum: Tensor | None = None
    de_sum: Tensor | None = None
    n = 0
    mask_iter = iter(masks) if masks is not None else None
    for batch in videos:
        mask = next(mask_iter) if mask_iter is not None else None
        rec = tokenizer.roundtrip(batch.to(tokenizer.device, torch.float32)).float()
        ref = batch.to(rec.device, torch.float32)
        p = psnr(rec, ref).clamp(max=100.0).sum(0).cpu()  # [T]
        s = ssim(rec, ref).sum(0).cpu()
        m = None if mask is None else mask.to(rec.device)[:, :, 0]  # [B, 1, H, W] → broadcast over T
        d = delta_e2000(rec, ref, m).sum(0).cpu()
        psnr_sum = p if psnr_sum is None else psnr_sum + p
        ssim_sum = s if ssim_sum is None else ssim_sum + s
        de_sum = d if de_sum is None else de_sum + d
        n += batch.shape[0]
    if psnr_sum is None or ssim_sum is None or de_sum is None:
        raise ConfigError("no evaluation videos")
    per_p, per_s, per_d = (psnr_sum / n).tolist(), (ssim_sum / n).tolist(), (de_sum / n).tolist()
    return {
        "videos": n,
        "psnr": sum(per_p) / len(per_p),
        "ssim": sum(per_s) / len(per_s),
        "delta_e2000": sum(per_d) / len(per_d),
        "psnr_first_frame": per_p[0],
        "psnr_other_frames": sum(per_p[1:]) / max(1, len(per_p) - 1),
        "psnr_per_frame": [round(v, 3) for v in per_p],
        "ssim_per_frame": [round(v, 4) for v in per_s],
        "delta_e2000_per_frame": [round(v, 3) for v in per_d],
    }


def evaluate_colour_patches(tokenizer: Tokenizer, frames: int = 17, height: int = 176,
                            width: int = 320) -> dict[str, Any]:
    """Round trip of the saturated colour patches (:func:`lyra.train.recipes.tokenizer_data.colour_patch_videos`): mean
    CIEDE2000 ΔE inside the patches, PSNR / SSIM of whole frames, and ΔE per patch colour (first video)."""
    vids, masks = colour_patch_videos(frames, height, width, device=tokenizer.device)
    if not bool(masks.any()):
        raise ConfigError(f"colour patches of {frames}×{height}×{width}: too small to leave patch interiors "
                          "(use at least 96×192)")
    out = evaluate_reconstruction(tokenizer, [vids], [masks])
    return {"source": "colour_patches", "videos": out["videos"], "delta_e2000": out["delta_e2000"],
            "psnr": out["psnr"], "ssim": out["ssim"], "delta_e2000_per_frame": out["delta_e2000_per_frame"]}


def eval_videos(source: str, count: int, frames: int, height: int, width: int, device: str,
                preset: str = "tiny", batch: int = 6, workers: int = 0) -> tuple[list[Tensor], dict[str, Any]]:
    """Held-out videos (test worlds, or synthetic videos of reserved seeds) and a description of them."""
    if source == "world":
        import lyra.world as world

        seeds = test_world_seeds(count)
        if workers > 0:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
                samples = list(ex.map(sample_world_cpu, seeds, [preset] * len(seeds), [False] * len(seeds)))
        else:
            samples = [world.sample_world(s, preset) for s in seeds]
        vids = []  # six trajectories per world, rendered a few worlds at a time
        for i in range(0, len(samples), 4):
            vids += [ex.videos[:, :frames].float() for ex in world.render_samples(samples[i:i + 4], device)]
        return vids, {"source": "world", "split": "test", "preset": preset, "world_seeds": seeds,
                      "videos": 6 * len(seeds)}
    vids = [synthetic_videos(_EVAL_SYNTH_SEED + i, min(batch, count - i), frames, height, width, device=device)
            for i in range(0, count, batch)]
    return vids, {"source": "synthetic", "seeds": [_EVAL_SYNTH_SEED + i for i in range(0, count, batch)],
                  "videos": count}


# ---------------------------------------------------------------------------------------- statistics
@torch.no_grad()
def latent_statistics(tokenizer: Tokenizer, batches: Iterable[Tensor]) -> tuple[Tensor, Tensor]:
    """Mean and std ``[16, t]`` of raw latents per channel and latent frame over ``batches``."""
    s1: Tensor | None = None
    s2: Tensor | None = None
    count = 0
    for videos in batches:
        z = tokenizer.encode(videos.to(tokenizer.device)).double()  # [B,16,t,h,w]
        a, b = z.sum(dim=(0, 3, 4)), z.square().sum(dim=(0, 3, 4))
        s1 = a if s1 is None else s1 + a
        s2 = b if s2 is None else s2 + b
        count += z.shape[0] * z.shape[3] * z.shape[4]
    assert s1 is not None and s2 is not None
    mean = s1 / count
    std = (s2 / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float().cpu(), std.float().cpu()


# ---------------------------------------------------------------------------------------- export
def export(tokenizer: Tokenizer, out: Path, record: dict[str, Any]) -> Path:
    """Write the fp16 diffusers folder + training record atomically; returns the folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out, dtype=torch.float16, extra_json={RECORD_NAME: record})
    weights = out / WEIGHTS_NAME
    record["weights"] = {"file": WEIGHTS_NAME, "bytes": weights.stat().st_size,
                         "sha256": sha256_file(weights)}
    tmp = out / f".{RECORD_NAME}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out / RECORD_NAME)
    return out


# ---------------------------------------------------------------------------------------- CLI
DESCRIPTION = ("Train the lyra video tokenizer (Cosmos CV8x8x8 design) on procedural worlds, in resumable "
               "chunks; export fp16 weights + latent statistics + a training record.")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lyra.train.recipes.tokenizer", description=DESCRIPTION)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the training options to ``p`` (shared by ``python -m lyra.train.recipes.tokenizer`` and the CLI)."""
    add_run_arguments(p, export_reserve=1.5)
    p.add_argument("--config", default="tiny",
                   help=f"tokenizer preset ({', '.join(PRESETS)}) or a JSON file of AutoencoderKLCosmos kwargs")
    p.add_argument("--data", choices=("world", "synthetic", "auto"), default="auto",
                   help="training videos: procedural worlds, synthetic shapes, or auto (worlds when lyra.world "
                   "is installed)")
    p.add_argument("--world-preset", default="tiny", help="lyra.world preset of the training/test worlds")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="start from exported weights (a diffusers folder) with a fresh optimiser")
    p.add_argument("--batch-size", type=int, default=None, help="videos per step (default 16 on CUDA, 2 on CPU)")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--size", default="176x320", help="HxW of the training videos (default 176x320)")
    p.add_argument("--crop", default=None, metavar="HxW",
                   help="train on random HxW crops of the videos (multiples of 8; cheaper steps, e.g. a CPU fine-tune)")
    add_optimizer_arguments(p, lr=4e-4, warmup=200)
    p.add_argument("--grad-weight", type=float, default=0.5, help="weight of the image-gradient L1 term")
    p.add_argument("--pool-worlds", type=int, default=32, help="worlds held in the training pool")
    p.add_argument("--refresh-every", type=int, default=8, help="steps between pool refreshes")
    p.add_argument("--refresh-count", type=int, default=1, help="worlds re-rendered per refresh")
    p.add_argument("--dynamic-fraction", type=float, default=0.25, help="share of training worlds that move")
    p.add_argument("--colour-aug", type=float, default=0.0, metavar="SHARE",
                   help="share of training videos given a random hue rotation and saturation gain (the worlds' "
                   "palettes are muted: without it saturated reds come back brown); 0: off")
    p.add_argument("--world-workers", type=int, default=None,
                   help="processes preparing worlds ahead of the GPU (default: 6 on CUDA, 0 on CPU)")
    p.add_argument("--ckpt-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--eval-every", type=int, default=0, help="steps between quick evaluations (0: none)")
    p.add_argument("--test-worlds", type=int, default=16, help="held-out test worlds (6 videos each) for the record")
    p.add_argument("--stats-batches", type=int, default=8,
                   help="training batches for the latent statistics (Cosmos network; the block code keeps the "
                   "statistics of its fit)")
    p.add_argument("--fit-only", action="store_true",
                   help="block code from scratch: fit the PCA encoder, export it with the exact linear decoder and "
                   "its held-out test, and stop (no training; a later run trains the decoder with --init-from)")
    p.add_argument("--fit-batches", type=int, default=24,
                   help="block code from scratch: training batches whose blocks the PCA encoder is fitted on "
                   "before the decoder trains")
    p.add_argument("--export-to", default=None, metavar="DIR", help="export folder (default OUT/export)")
    p.add_argument("--no-export", action="store_true", help="skip the export at the end of this invocation")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where CUDA is present")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-every", type=int, default=0, metavar="N",
                   help="print a plain metrics line every N steps (for logs; 0: never)")


def _model_config(spec: str) -> dict[str, Any]:
    if spec in PRESETS:
        from lyra.tokenizer.presets import preset_config

        return preset_config(spec)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--config {spec}: neither a preset ({', '.join(PRESETS)}) nor a JSON file")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e})") from e
    return {k: v for k, v in cfg.items() if not k.startswith("_") or k == "_class_name"}


def _resolve_source(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        import lyra.world  # noqa: F401
    except ImportError:
        return "synthetic"
    return "world"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m lyra.train.recipes.tokenizer`` (``argv`` defaults to ``sys.argv[1:]``)."""
    return training_main(build_parser(), run, "python -m lyra.train.recipes.tokenizer", "lyra tokenizer train", argv)


def run(args: argparse.Namespace, t_process: float | None = None, command: str | None = None) -> int:
    """Train (and export) with parsed options; ``t_process`` is when the process started (for --max-minutes)."""
    from lyra.inputs import parse_size

    height, width = parse_size(args.size, 8)
    if (args.frames - 1) % 8:
        raise ConfigError(f"--frames {args.frames}: must be 1 + 8k (e.g. 17)")
    rr = start_run(args, t_process, command)
    device, cuda, export_dir = rr.device, rr.cuda, rr.export_dir
    batch_size = args.batch_size or (16 if cuda else 2)
    source = _resolve_source(args.data)

    torch.manual_seed(args.seed)
    if args.init_from:  # the architecture is the exported one (--config is not read)
        tokenizer = Tokenizer.from_pretrained(args.init_from)
        tokenizer.requires_grad_(True).train()
        model_cfg = {k: v for k, v in dict(tokenizer.vae.config).items()
                     if (not k.startswith("_") or k == "_class_name") and k not in ("latents_mean", "latents_std")}
        print(f"initial weights: {args.init_from} ({tokenizer.num_parameters() / 1e6:.2f} M parameters; "
              "--config is not read)", flush=True)
    else:
        model_cfg = _model_config(args.config)
        tokenizer = Tokenizer.from_config(model_cfg)
    vae = tokenizer.vae

    workers = args.world_workers if args.world_workers is not None else (6 if cuda else 0)
    data = VideoBatches(source=source, batch_size=batch_size, frames=args.frames, height=height, width=width,
                        seed=args.seed, device=device, pool_worlds=args.pool_worlds,
                        refresh_every=args.refresh_every, refresh_count=args.refresh_count,
                        preset=args.world_preset, dynamic_fraction=args.dynamic_fraction, workers=workers,
                        colour_aug=args.colour_aug,
                        crop=parse_size(args.crop, 8, option="--crop") if args.crop else None)
    cfg = rr.config(
        grad_accum=args.grad_accum, print_every=args.print_every or None,
        extra={"model_config": model_cfg, "data": dataclasses.asdict(data) | {"render": None},
               "grad_weight": args.grad_weight, "batch_size": batch_size},
    )
    eval_fn = None
    if args.eval_every:
        quick, _ = eval_videos(source, 2 if source == "world" else 12, args.frames, height, width, device,
                               args.world_preset, workers=min(workers, 2))

        def eval_fn(m: nn.Module, step: int) -> dict[str, float]:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                r = evaluate_reconstruction(Tokenizer(m), quick)
            return {"psnr": r["psnr"], "ssim": r["ssim"], "psnr_first_frame": r["psnr_first_frame"]}

    grad_weight = args.grad_weight

    def loss_fn(m: nn.Module, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return reconstruction_loss(m, batch, grad_weight)

    fit_report = None
    resuming = bool(args.resume and list_checkpoints(rr.out / "checkpoints"))
    if not tokenizer.is_cosmos and not args.init_from and not resuming:
        # the block code's encoder: PCA of the blocks of the first training batches, then frozen
        from lyra.tokenizer.block_code import fit_block_code

        tokenizer.to(device)
        fit_report = fit_block_code(vae, (data(k) for k in range(args.fit_batches)))
        print(f"block code fitted on {args.fit_batches} batches: {fit_report}", flush=True)

    def test(reloaded: Tokenizer) -> dict[str, Any]:
        vids, desc = eval_videos(source, args.test_worlds if source == "world" else 6 * args.test_worlds,
                                 args.frames, height, width, device, args.world_preset, workers=workers)
        measured = {**desc, **evaluate_reconstruction(reloaded, vids), "precision": "fp16 weights, fp32 compute"}
        measured.pop("videos", None)
        measured["videos"] = desc["videos"]
        patches_ok = height >= 96 and width >= 192  # smaller frames leave no patch interiors
        return {"test": measured,
                "test_colour_patches": (evaluate_colour_patches(reloaded, args.frames, height, width) if patches_ok
                                        else {"skipped": f"frames of {height}x{width} are below 96x192"})}

    if args.fit_only:
        return _export_fit_only(args, rr, tokenizer, fit_report, source, test)
    model: nn.Module = torch.compile(vae) if (args.compile and cuda) else vae
    batches = IndexedBatches(data)
    trainer = Trainer(model, loss_fn, batches, cfg, eval_fn=eval_fn, eval_every=args.eval_every or None)
    if args.time_budget is not None and (args.resume is None or not list_checkpoints(rr.out / "checkpoints")):
        # a fresh run measures its speed for the budget over its first steps: render the pool before them
        rendered = data.prefill(0)
        if rendered:
            print(f"world pool filled before the time-budget probe: {rendered} worlds", flush=True)
    result = fit(rr, trainer, cleanup=data.close)
    if not export_due(rr, trainer):
        return 0

    # ---- export: EMA weights (if any), latent statistics from training videos, test metrics
    final = Tokenizer(vae)
    if trainer.ema is not None:
        final = Tokenizer(type(vae).from_config(vae.config))  # the same class and architecture
        final_weights(trainer, final.vae, vae.state_dict())  # the uncompiled module's weights, the EMA copied in
    final.to(device).eval().requires_grad_(False)
    first = batches.counter
    if final.is_cosmos:  # statistics from the next training batches (the worlds of the current pool, rendered)
        data.workers = 0  # a refresh or two at most: prepare those worlds inline
        mean, std = latent_statistics(final, (data(first + k) for k in range(args.stats_batches)))
        mean16, std16 = stats_to_frames(mean, std, STAT_FRAMES)
        final.set_latent_stats(mean16, std16)
        stats_note = (f"latents_mean/std: {final.latent_channels} channels x 16 latent frames, channel-major; frames "
                      f"measured: {mean.shape[1]}, later frames = average of measured frames 1..; from training "
                      f"batches {first}..{first + args.stats_batches - 1} ({batch_size} videos each)")
    else:  # the block code's encoder is frozen: its statistics are those of its fit (teachers trained on them)
        if final.config.latents_std is None:  # a resumed fresh fit: the statistics of its (saved) fit
            final.set_latent_stats(*final.vae.code_statistics(STAT_FRAMES))
        stats_note = ("latents_mean/std: those of the block code's PCA fit (mean 0, each channel's std per "
                      "latent-frame kind), unchanged by training: the encoder is frozen")
    kind = ("diffusers AutoencoderKLCosmos, Cosmos design" if final.is_cosmos
            else "lyra BlockCodeAutoencoder: PCA block encoder (frozen) + learned decoder")
    record = training_record(
        rr, trainer, result,
        f"lyra tokenizer ({kind}, {final.latent_channels} channels, {final.temporal_compression}x"
        f"{final.spatial_compression}x{final.spatial_compression})", final.num_parameters(), {
            "config": f"the architecture of {args.init_from}" if args.init_from else args.config,
            "model_config": model_cfg,
            "batch_size": batch_size,
            "grad_accum": args.grad_accum,
            "frames": args.frames,
            "size": [height, width],
            "crop": args.crop,
            "loss": {"l1": 1.0, "gradient_l1": args.grad_weight},
            "init_from": args.init_from,
            "data": {
                "source": source,
                "world_preset": args.world_preset if source == "world" else None,
                "seed": args.seed,
                "train_world_seeds": (
                    f"world_seed(slot, generation) = {data.world_seed(0, 0)} + generation*{args.pool_worlds} + "
                    f"slot; pool {args.pool_worlds}, {args.refresh_count} re-rendered every {args.refresh_every} "
                    "steps"
                ) if source == "world" else "synthetic_videos(mix_seed(seed, batch_index, 2), ...)",
                "dynamic_fraction": args.dynamic_fraction if source == "world" else None,
                "colour_aug": args.colour_aug,
            },
            "block_code_fit": fit_report,
            "latent_stats_note": stats_note,
        }, versions=("diffusers", "accelerate"))

    # the weights first: the evaluation reads them back as users do
    export_and_test(record, lambda rec: export(final, export_dir, rec),
                    lambda: Tokenizer.from_pretrained(export_dir, device=device, max_batch=6), test)
    t = record["test"]
    patch_de = record["test_colour_patches"].get("delta_e2000", math.nan)
    print(f"exported {export_dir}: {record['parameters'] / 1e6:.2f} M parameters, "
          f"{record['weights']['bytes'] / 1e6:.2f} MB; test PSNR {t['psnr']:.2f} dB "
          f"(first frame {t['psnr_first_frame']:.2f}, others {t['psnr_other_frames']:.2f}), SSIM {t['ssim']:.4f}, "
          f"ΔE00 {t['delta_e2000']:.2f}; colour patches ΔE00 {patch_de:.2f}",
          flush=True)
    return 0


def _export_fit_only(args: argparse.Namespace, rr: RecipeRun, tokenizer: Tokenizer, fit_report: dict[str, float] | None,
                     source: str, test: Any) -> int:
    """``--fit-only``: export the fitted block code (linear decoder = the encoder's inverse, refinement zero) with
    its held-out test, and no training."""
    if tokenizer.is_cosmos or fit_report is None:
        raise ConfigError("--fit-only fits a block code from scratch: use a block-code --config (e.g. tiny) "
                          "without --init-from or --resume")
    tokenizer.eval().requires_grad_(False)
    record: dict[str, Any] = {
        "model": (f"lyra tokenizer (lyra BlockCodeAutoencoder: PCA block encoder, exact linear decoder, no training; "
                  f"{tokenizer.latent_channels} channels, {tokenizer.temporal_compression}x"
                  f"{tokenizer.spatial_compression}x{tokenizer.spatial_compression})"),
        "parameters": tokenizer.num_parameters(), "steps": 0, "complete": True, "fit_only": True,
        "model_config": {k: v for k, v in dict(tokenizer.vae.config).items()
                         if not k.startswith("_") and k not in ("latents_mean", "latents_std")},
        "block_code_fit": fit_report,
        "data": {"source": source, "world_preset": args.world_preset if source == "world" else None,
                 "seed": args.seed, "fit_batches": args.fit_batches, "batch_size": args.batch_size,
                 "pool_worlds": args.pool_worlds, "colour_aug": args.colour_aug,
                 "fit_batch_indices": f"0..{args.fit_batches - 1}"},
        "latent_stats_note": ("latents_mean/std: those of the PCA fit (mean 0, each channel's std per "
                              "latent-frame kind)"),
        **provenance(rr),
    }
    export_and_test(record, lambda rec: export(tokenizer, rr.export_dir, rec),
                    lambda: Tokenizer.from_pretrained(rr.export_dir, device=rr.device, max_batch=6), test)
    t = record["test"]
    print(f"exported {rr.export_dir} (fit only): test PSNR {t['psnr']:.2f} dB, SSIM {t['ssim']:.4f}, "
          f"ΔE00 {t['delta_e2000']:.2f}", flush=True)
    return 0


if __name__ == "__main__":  # ``python -m lyra.train.recipes.tokenizer`` (scripts/tokenizer_gpu.sh)
    sys.exit(main())
