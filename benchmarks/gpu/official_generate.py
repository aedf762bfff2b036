"""GPU benchmark of the official preset in 24 GB: one image → Gaussians at 6 × 121 × 704×1280 with random weights.

The paper-scale modules — the Cosmos CV8x8x8 tokenizer (105.7 M parameters), the GEN3C-size teacher denoiser
(diffusers ``CosmosTransformer3DModel``, 7.24 B) and the official student (32.75 M) — are built with random
weights directly on the GPU in bf16 (parameters created on the meta device, then materialised on the GPU with a
seeded normal init of std 0.5/√fan_in, unit norms, zero biases: cheap, deterministic, finite activations; nothing
is written to disk); the depth net is the shipped tiny one. Then the pipeline runs in its low-memory order
(:meth:`lyra.pipeline.ScenePipeline.enable_low_memory`): every model parked on the CPU and put on the GPU only for
its stage — depth → tokenizer (warp + encode, one trajectory at a time, chunked layers) → denoiser (one trajectory
at a time) → tokenizer (Plücker latents) → student → pruning — with the CUDA cache emptied between stages.

Reported per stage: seconds (CUDA-synchronised; including the copy of the stage's model to the GPU, also shown
apart) and peak GPU memory (``torch.cuda.max_memory_allocated`` after a reset at the stage start), the whole run's
peak, and the denoiser: ``--denoise-steps`` Euler steps (default 1) for each of ``--trajectories`` trajectories
(default 6) are timed, and 35 steps × 6 trajectories are EXTRAPOLATED from the median forward. ``--max-gib``
(default 24) makes the run fail (exit 1) when any stage's peak exceeds it, naming the stage and what fills it.

Usage on the GPU machine (repository root; about 2 minutes on one H200):
    PYTHONPATH=src python3 benchmarks/gpu/official_generate.py --max-gib 24 --json $OUT/official_generate.json
Smoke test on the CPU (micro shapes, seconds): ``--cpu-smoke``. Without CUDA and without --cpu-smoke it refuses
(exit 2).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[2]
GIB = float(1 << 30)
#: GEN3C's sampler: 35 Euler steps per trajectory, six trajectories.
PAPER_STEPS, PAPER_TRAJECTORIES = 35, 6
#: What fills the GPU in each stage (printed for a stage over the budget).
WHY = {
    "depth": "the depth net at the working size (small); the image and depth map",
    "trajectories": "camera sampling (CPU work)",
    "warp_encode": "one trajectory's forward warp (121 × 704×1280 RGB, mask, depth, weight: ~2.3 GiB, plus the "
                   "splatting pairs of 8 cameras at a time) and its tokenizer encode (chunked: ~4 GiB in bf16)",
    "denoise": "the denoiser's bf16 weights (13.5 GiB, 7.24 B parameters) plus one trajectory's activations "
               "(56,320 tokens × 4096: ~6 GiB estimated); these cannot shrink by sequencing — only by offloading "
               "transformer blocks one by one, quantising the weights (FP8: 6.7 GiB) or sequence-chunked MLPs",
    "plucker": "one trajectory's Plücker ray video (121 × 6 × 704×1280 float32: 2.6 GiB) and its two chunked encodes",
    "student": "the 3DGS decoder over all six trajectories at once (337,920 tokens; multi-view fusion needs them "
               "together): Mamba-2 scan states and the two full-attention blocks",
    "gaussians": "10.2 M raw Gaussians (14 floats) and the pruning sort",
}


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------------------------ models
def _init_(t: Tensor, name: str, gen: torch.Generator, gain: float) -> None:
    """Cheap deterministic init: biases 0, other vectors (norm scales) 1, matrices N(0, (gain/√fan_in)²)."""
    if t.dim() <= 1:
        t.zero_() if name.endswith("bias") else t.fill_(1.0)
    else:
        fan_in = max(1, t[0].numel())
        t.normal_(0.0, gain / math.sqrt(fan_in), generator=gen)


def materialize(module: nn.Module, device: torch.device, dtype: torch.dtype, seed: int, gain: float = 0.5) -> nn.Module:
    """Give every meta parameter of ``module`` real memory on ``device`` in ``dtype`` (seeded init, no gradients);
    move the real buffers (e.g. Haar wavelets) there too. Returns ``module`` in eval mode."""
    gen = torch.Generator(device=device).manual_seed(seed)
    for mod_name, m in module.named_modules():
        for name, p in list(m._parameters.items()):
            if p is None:
                continue
            if p.device.type == "meta":
                t = torch.empty(p.shape, device=device, dtype=dtype if p.is_floating_point() else p.dtype)
                _init_(t, name, gen, gain)
            else:
                t = p.detach().to(device, dtype if p.is_floating_point() else p.dtype)
            m._parameters[name] = nn.Parameter(t, requires_grad=False)
        for name, b in list(m._buffers.items()):
            if b is None:
                continue
            if b.device.type == "meta":
                raise RuntimeError(f"buffer {mod_name}.{name} was built on the meta device and has no value")
            m._buffers[name] = b.to(device, dtype if b.is_floating_point() else b.dtype)
    return module.eval()


def build_models(smoke: bool, device: torch.device, seed: int, tokenizer_dtype: torch.dtype) -> dict[str, Any]:
    """The tokenizer, denoiser and student (random weights on ``device``) and the shipped tiny depth net."""
    from accelerate import init_empty_weights
    from diffusers import CosmosTransformer3DModel

    from lyra.student import LatentDecoder, decoder_config
    from lyra.teacher.denoiser import TeacherDenoiser, preset_config
    from lyra.teacher.depth_net import TinyDepthNet
    from lyra.tokenizer import Tokenizer

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tok_kw: dict[str, Any] = {}
    den_cfg = preset_config("official")
    student_cfg = decoder_config("official")
    if smoke:  # the same designs at micro widths
        tok_kw = {"encoder_block_out_channels": (16, 32, 32, 32), "decode_block_out_channels": (16, 32, 32, 32),
                  "num_layers": 1}
        den_cfg = preset_config("tiny")
        den_cfg["transformer"].update(num_layers=2, concat_padding_mask=True)  # the official padding channel
        student_cfg = decoder_config("tiny")
    with init_empty_weights(include_buffers=False):  # parameters on meta, buffers (wavelets) real
        tok = Tokenizer.from_config("official", **tok_kw)
        den = TeacherDenoiser(CosmosTransformer3DModel(**den_cfg["transformer"]), den_cfg["context_tokens"])
        student = LatentDecoder(student_cfg)
    materialize(tok.vae, device, tokenizer_dtype if device.type == "cuda" else torch.float32, seed)
    materialize(den, device, dtype, seed + 1)
    materialize(student, device, dtype, seed + 2)
    depth = TinyDepthNet.from_preset("tiny", device=device).eval().requires_grad_(False)
    return {"tokenizer": tok.eval().requires_grad_(False), "denoiser": den, "student": student, "depth": depth}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------------ budget
def over_budget(peaks: dict[str, float] | None, max_gib: float | None) -> list[str]:
    """Stages (not ``run``) whose peak GiB exceeds ``max_gib`` (none without peaks or a budget)."""
    if not peaks or not max_gib:
        return []
    return [k for k, v in peaks.items() if k != "run" and v > max_gib]


def extrapolate(forward_s: list[float], stage_s: dict[str, float], transfer_denoise: float) -> dict[str, float]:
    """35 steps × 6 trajectories from the median denoiser forward; the other stages as measured."""
    med = statistics.median(forward_s)
    denoise = med * PAPER_STEPS * PAPER_TRAJECTORIES + transfer_denoise
    others = sum(v for k, v in stage_s.items() if k not in ("denoise", "total"))
    return {"median_forward_s": med, "min_forward_s": min(forward_s), "denoise_35x6_s": denoise,
            "run_35x6_s": others + denoise}


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoise-steps", type=int, default=1, help="Euler steps per trajectory (timed; default 1)")
    ap.add_argument("--trajectories", type=int, default=6, help="GEN3C trajectories to run, 1..6 (default 6)")
    ap.add_argument("--max-gib", type=float, default=24.0,
                    help="fail (exit 1) if any stage peaks above this many GiB (default 24; 0: no check)")
    ap.add_argument("--tokenizer-dtype", choices=("bfloat16", "float32"), default="bfloat16",
                    help="tokenizer precision on CUDA (default bfloat16; lyra generate loads it in float32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image", default=str(ROOT / "examples" / "room.png"),
                    help="input image (default examples/room.png)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="micro shapes on the CPU (9 frames of 48×80, micro-width models): a smoke test of this script")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("official_generate: no CUDA device here; run it on the GPU machine (or pass --cpu-smoke for a micro "
              "smoke test on the CPU)", file=sys.stderr, flush=True)
        return 2
    if not 1 <= args.trajectories <= PAPER_TRAJECTORIES or args.denoise_steps < 1:
        print("official_generate: --trajectories must be 1..6 and --denoise-steps >= 1", file=sys.stderr, flush=True)
        return 2
    smoke = args.cpu_smoke
    device = torch.device("cpu" if smoke else "cuda")
    frames, (height, width) = (9, (48, 80)) if smoke else (121, (704, 1280))
    t_start = time.perf_counter()

    from lyra.geometry.trajectories import sample_gen3c_trajectories
    from lyra.inputs import default_camera, fit_to_size, load_image
    from lyra.pipeline import ScenePipeline
    from lyra.teacher.pipeline import TeacherPipeline, center_depth
    from lyra.weights.hub import PRESETS

    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu ({platform.processor() or '?'})",
        "torch": torch.__version__, "mode": "cpu-smoke" if smoke else "cuda", "seed": args.seed,
        "frames": frames, "size": [height, width], "trajectories": args.trajectories,
        "denoise_steps": args.denoise_steps, "max_gib": args.max_gib or None,
    }
    log(f"official_generate on {result['device']} (torch {torch.__version__}): {args.trajectories} trajectories × "
        f"{frames} frames × {height}×{width}, {args.denoise_steps} denoise step(s), budget "
        f"{args.max_gib or '-'} GiB")

    # ---- build on the device, then park everything on the CPU
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    tok_dtype = getattr(torch, args.tokenizer_dtype)
    models = build_models(smoke, device, args.seed, tok_dtype)
    if device.type == "cuda":
        torch.cuda.synchronize()
    build_s = time.perf_counter() - t0
    build_peak = torch.cuda.max_memory_allocated() / GIB if device.type == "cuda" else None
    params = {k: count(m) for k, m in models.items()}
    result["parameters"] = params
    log(f"built with random weights on {device} in {build_s:.1f} s: tokenizer {params['tokenizer'] / 1e6:.1f} M "
        f"({args.tokenizer_dtype if not smoke else 'float32'}), denoiser {params['denoiser'] / 1e9:.3f} B, student "
        f"{params['student'] / 1e6:.2f} M, depth net {params['depth'] / 1e6:.2f} M"
        + (f"; peak {build_peak:.2f} GiB" if build_peak is not None else ""))

    teacher = TeacherPipeline(models["denoiser"], models["tokenizer"], models["depth"], num_frames=frames,
                              preset="official", working_size=PRESETS["official"].size[1:])
    pipe = ScenePipeline(teacher, models["student"], models["tokenizer"], preset="official")
    t0 = time.perf_counter()
    pipe.enable_low_memory(device, trajectory_batch=1)
    park_s = time.perf_counter() - t0
    resident_gib = torch.cuda.memory_allocated() / GIB if device.type == "cuda" else None
    log(f"parked every model on the CPU in {park_s:.1f} s"
        + (f" (GPU memory still allocated: {resident_gib:.3f} GiB)" if resident_gib is not None else ""))
    result["setup"] = {"build_s": build_s, "build_peak_gib": build_peak, "park_s": park_s,
                       "allocated_after_park_gib": resident_gib}

    # ---- input image and (for fewer than six) the first GEN3C trajectories
    image, note = fit_to_size(load_image(args.image), height, width)
    trajectory = None
    if args.trajectories < PAPER_TRAJECTORIES:
        with torch.no_grad():
            d = models["depth"].to("cpu")(image[None]).depth[0]
        g = torch.Generator().manual_seed(args.seed)
        cams = sample_gen3c_trajectories(default_camera(height, width), center_depth(d), frames, 1.0, g)
        trajectory = cams[:args.trajectories]
    log(f"input {args.image} → {height}×{width} ({note or 'as is'})")

    # ---- time every denoiser forward (a forward = one Euler step of one trajectory)
    forward_s: list[float] = []
    calls = {"t0": 0.0}
    total_forwards = args.trajectories * args.denoise_steps

    def pre(_m: nn.Module, _a: Any) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        calls["t0"] = time.perf_counter()

    def post(_m: nn.Module, _a: Any, _o: Any) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        forward_s.append(time.perf_counter() - calls["t0"])
        n = len(forward_s)
        log(f"    denoiser forward {n}/{total_forwards} (trajectory {(n - 1) // args.denoise_steps + 1}, step "
            f"{(n - 1) % args.denoise_steps + 1}): {forward_s[-1]:.2f} s"
            + (f", {torch.cuda.memory_allocated() / GIB:.2f} GiB allocated" if device.type == "cuda" else ""))

    hooks = [teacher.denoiser.register_forward_pre_hook(pre), teacher.denoiser.register_forward_hook(post)]
    tok = models["tokenizer"]
    encode_raw = tok.encode_raw
    encodes: list[float] = []

    def logged_encode(x: Tensor) -> Tensor:  # warped videos (6) and Plücker ray videos (2 per trajectory)
        t = time.perf_counter()
        z = encode_raw(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        encodes.append(time.perf_counter() - t)
        log(f"    tokenizer encode {len(encodes)} {tuple(x.shape)}: {encodes[-1]:.2f} s"
            + (f", {torch.cuda.max_memory_allocated() / GIB:.2f} GiB peak so far in this stage"
               if device.type == "cuda" else ""))
        return z

    tok.encode_raw = logged_encode  # an instance attribute: Tokenizer.encode and the Plücker encoder call it

    def stage_line(stage: str, seconds: float) -> None:
        log(f"  stage {stage:<12} done in {seconds:8.2f} s")

    log("running image → Gaussians (low-memory order) ...")
    try:
        scene = pipe(image, seed=args.seed, steps=args.denoise_steps, size=(height, width), trajectory=trajectory,
                     progress=stage_line, num_frames=None if trajectory is not None else frames)
    except torch.cuda.OutOfMemoryError as e:
        log(f"FAIL: CUDA out of memory ({str(e).splitlines()[0][:200]})")
        return 1
    finally:
        for h in hooks:
            h.remove()
        del tok.encode_raw
    meta = scene.metadata
    timings = {k: float(v) for k, v in meta["timings_s"].items()}
    peaks = meta["peak_gib"]
    transfer = {k: float(v) for k, v in meta["transfer_s"].items()}

    # ---- report
    stages = [k for k in timings if k != "total"]
    rows = []
    log("")
    log(f"{'stage':<14}{'seconds':>10}{'peak GiB':>11}{'model→GPU s':>13}")
    for k in stages:
        peak = peaks.get(k) if peaks else None
        rows.append({"stage": k, "seconds": timings[k], "peak_gib": peak, "transfer_s": transfer.get(k)})
        log(f"{k:<14}{timings[k]:>10.2f}{(f'{peak:.2f}' if peak is not None else '-'):>11}"
            f"{(f'{transfer[k]:.2f}' if k in transfer else ''):>13}")
    run_peak = peaks.get("run") if peaks else None
    log(f"{'run':<14}{timings['total']:>10.2f}{(f'{run_peak:.2f}' if run_peak is not None else '-'):>11}")
    result["stages"] = rows
    result["run_s"] = timings["total"]
    result["run_peak_gib"] = run_peak
    result["gaussians"] = {"before_prune": meta["gaussians_before_prune"], "after_prune": meta["gaussians"]}
    log(f"Gaussians: {meta['gaussians_before_prune']:,} → {meta['gaussians']:,} after pruning; "
        f"finite means: {bool(torch.isfinite(scene.gaussians.means).all())}")

    ex = extrapolate(forward_s, timings, transfer.get("denoise", 0.0))
    result["tokenizer_encode_s"] = encodes
    result["denoise"] = {"forward_s": forward_s, **ex,
                         "extrapolation": f"median forward × {PAPER_STEPS} steps × {PAPER_TRAJECTORIES} trajectories "
                                          "+ the denoiser's copy to the GPU"}
    log(f"denoiser: {len(forward_s)} forwards timed, median {ex['median_forward_s']:.2f} s (min "
        f"{ex['min_forward_s']:.2f} s) per Euler step of one trajectory")
    log(f"EXTRAPOLATED (not measured): {PAPER_STEPS} steps × {PAPER_TRAJECTORIES} trajectories → denoise "
        f"{ex['denoise_35x6_s'] / 60:.1f} min, whole image → Gaussians {ex['run_35x6_s'] / 60:.1f} min "
        "(paper, release on an A100: 1.2 h, ~43 GB)")

    over = over_budget(peaks, args.max_gib)
    result["over_budget"] = over
    result["ok"] = not over
    result["wall_s"] = time.perf_counter() - t_start
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.json}")
    if peaks is None:
        log("(CPU smoke run: no GPU memory to check)")
        return 0
    if over:
        for k in over:
            log(f"FAIL: stage {k} peaked at {peaks[k]:.2f} GiB > {args.max_gib:g} GiB: {WHY.get(k, '?')}")
        return 1
    largest = max((k for k in peaks if k != "run"), key=lambda k: peaks[k])
    budget = f"≤ {args.max_gib:g} GiB" if args.max_gib else "(no budget check)"
    log(f"PASS: every stage {budget}; largest {largest} at {peaks[largest]:.2f} GiB, whole run {run_peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
