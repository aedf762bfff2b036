"""GPU benchmark of student training steps: the real objective of ``lyra.train.recipes.student`` (decoder forward →
Gaussians → gsplat render of the target frames → MSE + perceptual + depth (+ opacity) → backward → AdamW).

One batch of synthetic SDG samples (random latents and targets, GEN3C trajectory cameras) stays on the GPU, so
the figure is the training step itself; the Plücker latents are cached as in training (random here, their one-off
cost per sample with the tiny tokenizer is measured separately). Reports steps/s, samples/s and the peak GPU
memory of every process.

Usage on the GPU machine (from the repository root):
    # tiny preset, one GPU: steps/s (issue 8)
    python3 benchmarks/gpu/student_train.py --json $OUT/student_train_tiny.json
    # official decoder at 704x1280 under ZeRO-2 / FSDP, N GPUs: memory per GPU (issue 11)
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml --num_processes N \\
        benchmarks/gpu/student_train.py --preset official --gradient-checkpointing --json $OUT/official_zero2.json
Without CUDA it exits (``--cpu-smoke`` runs a micro configuration on the CPU to test this script).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

CUDA = torch.cuda.is_available()


def log(msg: str, main: bool = True) -> None:
    if main:
        print(msg, flush=True)


def fake_sample(sid: str, views: int, frames: int, height: int, width: int, seed: int,
                channels: int = 16) -> dict[str, Any]:
    """One SDG-shaped sample (stored layout): random latents ``[V, channels, t, h, w]`` and targets, GEN3C cameras
    around a 3 m centre."""
    from lyra.geometry import Cameras
    from lyra.geometry.trajectories import sample_gen3c_trajectories

    g = torch.Generator().manual_seed(seed)
    t, h, w = 1 + (frames - 1) // 8, height // 8, width // 8
    cams = sample_gen3c_trajectories(Cameras.from_fov(50.0, width, height), 3.0, frames, generator=g)[:views]
    return {"latents": torch.randn(views, channels, t, h, w, generator=g).half(),
            "rgb": torch.randint(0, 256, (views, frames, height, width, 3), generator=g, dtype=torch.uint8),
            "K": cams.K, "c2w": cams.c2w,
            "depth": (2.0 + torch.rand(views, frames, height, width, generator=g)).half(), "sample_id": sid}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny", help="decoder preset: tiny or official")
    ap.add_argument("--frames", type=int, default=None, help="frames per trajectory (default 17 tiny, 121 official)")
    ap.add_argument("--size", default=None, help="HxW (default 176x320 tiny, 704x1280 official)")
    ap.add_argument("--views", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=None, help="samples per GPU (default 4 tiny, 1 official)")
    ap.add_argument("--target-frames", type=int, default=4, help="rendered frames per trajectory per step")
    ap.add_argument("--prune", action="store_true", help="the pruning stage (opacity term, 80 %% pruned)")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--ssd-backend", default="auto", help="Mamba SSD path (lyra.student.mamba2.BACKENDS)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--backend", default="auto", help="render backend")
    ap.add_argument("--json", default=None)
    ap.add_argument("--cpu-smoke", action="store_true", help="micro sizes on the CPU (tests this script)")
    args = ap.parse_args()
    if not CUDA and not args.cpu_smoke:
        print("student_train: no CUDA device; run this on the GPU machine", file=sys.stderr)
        return 0

    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from torch.utils.data import default_collate

    from lyra.distill.losses import PerceptualLoss
    from lyra.distill.stages import Stage, StagePlan, sample_frames
    from lyra.student import LatentDecoder, decoder_config
    from lyra.train.recipes.student import StudentModel, StudentObjective

    official = args.preset == "official"
    frames = args.frames or (9 if args.cpu_smoke else 121 if official else 17)
    H, W = (int(v) for v in (args.size or ("48x80" if args.cpu_smoke else
                                            "704x1280" if official else "176x320")).split("x"))
    b = args.batch_size or (1 if official or args.cpu_smoke else 4)
    acc = Accelerator(mixed_precision="bf16" if CUDA else "no", cpu=not CUDA)
    plugin = getattr(acc.state, "deepspeed_plugin", None)
    if plugin is not None and plugin.is_auto("train_micro_batch_size_per_gpu"):
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = b
    main_proc = acc.is_main_process
    dev = acc.device
    torch.manual_seed(0)
    cfg = decoder_config(args.preset).with_(gradient_checkpointing=args.gradient_checkpointing,
                                            ssd_backend=args.ssd_backend)
    decoder = LatentDecoder(cfg)
    model = StudentModel(decoder)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    model, opt = acc.prepare(model, opt)
    losses = ("mse", "perceptual", "depth") + (("opacity",) if args.prune else ())
    stage = Stage("bench", 1.0, frames=frames, views=args.views, losses=losses, target_frames=args.target_frames,
                  prune_ratio=0.8 if args.prune else None, end_weight=2.0)
    objective = StudentObjective(StagePlan([stage]), encoder=None, perceptual=PerceptualLoss().to(dev),
                                 backend=args.backend)
    t, h, w = 1 + (frames - 1) // 8, H // 8, W // 8
    C = cfg.latent_channels
    samples = [fake_sample(f"bench:{acc.process_index}:{i}", args.views, frames, H, W, seed=i, channels=C)
               for i in range(b)]
    for s in samples:  # as after the first epoch: Plücker latents cached
        objective.plucker._store[("plucker", s["sample_id"])] = torch.randn(args.views, 2 * C, t, h, w).half()
    batch = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in default_collate(samples).items()}
    batch.update(stage=0, views=torch.arange(args.views, device=dev),
                 frames=sample_frames(stage, frames, args.views, torch.Generator().manual_seed(0)).to(dev))
    gaussians = args.views * frames * h * w
    log(f"{args.preset} decoder ({decoder.num_parameters():,} parameters), {acc.num_processes} process(es), "
        f"{acc.distributed_type}; per GPU {b} × {args.views} views × {frames} × {H}x{W}; {gaussians:,} Gaussians "
        f"per sample, {args.target_frames} target frames per view; checkpointing {args.gradient_checkpointing}",
        main_proc)

    def step() -> float:
        with acc.autocast():
            loss, _ = objective(model, batch)
        acc.backward(loss)
        acc.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(args.warmup + args.steps):
        if CUDA:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step()
        if CUDA:
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**30 if CUDA else float("nan")
    peaks = gather_object([round(peak, 3)])
    res: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if CUDA else "cpu", "torch": torch.__version__,
        "preset": args.preset, "parameters": decoder.num_parameters(), "processes": acc.num_processes,
        "distributed": str(acc.distributed_type), "batch_per_gpu": b, "views": args.views, "frames": frames,
        "size": [H, W], "target_frames": args.target_frames, "prune": args.prune,
        "gradient_checkpointing": args.gradient_checkpointing, "render_backend": args.backend,
        "median_step_s": med, "steps_per_s": 1.0 / med, "samples_per_s": acc.num_processes * b / med,
        "step_times_s": [round(x, 4) for x in times], "peak_gib_per_gpu": peaks, "last_loss": loss,
    }
    if not official and main_proc:  # one-off cost of the Plücker latents with the tiny tokenizer
        from lyra.geometry import Cameras
        from lyra.student.latents import LatentCache
        from lyra.tokenizer import Tokenizer

        tok = Tokenizer.from_preset("tiny", device=dev)
        cache = LatentCache(tok, max_entries=0)
        cams = Cameras(samples[0]["K"], samples[0]["c2w"], W, H)
        cache.plucker("warm", cams)
        if CUDA:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        cache.plucker("timed", cams)
        if CUDA:
            torch.cuda.synchronize()
        res["plucker_s_per_sample"] = time.perf_counter() - t0
    log(f"step median {med * 1000:.1f} ms → {res['steps_per_s']:.2f} steps/s, {res['samples_per_s']:.1f} samples/s; "
        f"peak memory per GPU {peaks} GiB" + (f"; Plücker latents {res['plucker_s_per_sample'] * 1000:.0f} ms "
                                             f"per new sample" if "plucker_s_per_sample" in res else ""), main_proc)
    if args.json and main_proc:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
