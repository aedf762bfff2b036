"""GPU benchmark of lyra's own fast paths (issue 22, items 2 and 3): the Triton attention kernel (bf16 and FP8)
and FP8 linear layers, alone and inside the two models that need them.

``--part attention``: the attention product at the two shapes that matter —
  the student decoder's Transformer blocks (1 × 8 heads × 337,920 tokens × 64) and the teacher denoiser's
  self-attention at full shape (1 × 32 heads × 56,320 tokens × 128) — through SDPA's cuDNN and flash kernels and
  lyra's Triton kernel in bf16 and in FP8: median time (CUDA events), TFLOP/s (4·L²·D·heads), and the relative L2
  error of the first 512 query rows against float32 attention.
``--part denoiser``: the official denoiser (7.24 B parameters, random weights of the real shapes) on one trajectory
  at full shape (16 × 88 × 160 latents): bf16 with SDPA (the reference), then the Triton attention in bf16 and FP8,
  FP8 linear layers (``quantize_linears(compute="fp8")``), both, and both with ``torch.compile``; per variant the
  median forward, the peak memory, the relative L2 error of the output against the reference, and the minutes
  per image at 35 and at 4 steps × 6 trajectories.
``--part decoder``: the official student decoder at paper scale (6 × 16 × 88 × 160 latents, 337,920 tokens) as
  the product runs it (bf16, SSD backend ``auto``) with the attention through cuDNN (today's default), the Triton
  bf16 kernel and the Triton FP8 kernel; median forward and the relative L2 error against the fp32 torch oracle.

    PYTHONPATH=src python3 benchmarks/gpu/fast_paths.py --part attention,denoiser,decoder [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decoder_auto import rel_l2, sync  # noqa: E402 - the benchmarks' shared helpers, found through the path above
from decoder_auto import timed_calls as timed  # noqa: E402 - first call, then ``repeats`` synchronised calls

CUDA = torch.cuda.is_available()


# ------------------------------------------------------------------------------------------------ attention
def sdpa_with(backend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel(backend):
        return F.scaled_dot_product_attention(q, k, v)


def part_attention(repeats: int, smoke: bool) -> dict:
    from torch.nn.attention import SDPBackend

    from lyra.kernels.attention import attention_reference, attention_triton

    shapes = {"decoder": (1, 8, 337_920, 64), "denoiser": (1, 32, 56_320, 128)}
    if smoke:
        shapes = {"decoder": (1, 2, 300, 64), "denoiser": (1, 2, 200, 128)}
    dev = torch.device("cuda" if CUDA else "cpu")
    res: dict = {}
    for name, (B, H, L, D) in shapes.items():
        g = torch.Generator(device=dev).manual_seed(0)
        q, k, v = (torch.randn(B, H, L, D, device=dev, generator=g, dtype=torch.bfloat16) for _ in range(3))
        rows = min(512, L)
        exact = attention_reference(q[:, :, :rows], k, v, fp8=False)
        flops = 4 * B * H * L * L * D
        kernels = {"triton_bf16": partial(attention_triton, fp8=False),
                   "triton_fp8": partial(attention_triton, fp8=True)}
        if CUDA:
            kernels = {"sdpa_cudnn": partial(sdpa_with, SDPBackend.CUDNN_ATTENTION),
                       "sdpa_flash": partial(sdpa_with, SDPBackend.FLASH_ATTENTION), **kernels}
        res[name] = {"shape": [B, H, L, D]}
        for kname, fn in kernels.items():
            try:
                first, runs, out = timed(partial(fn, q, k, v), repeats)
            except Exception as e:  # noqa: BLE001 - a kernel that does not run here is a result, not a crash
                res[name][kname] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
                print(f"{name} {kname}: {res[name][kname]['error']}", flush=True)
                continue
            med = statistics.median(runs)
            res[name][kname] = {"first_call_s": round(first, 3), "median_ms": round(med * 1e3, 2),
                                "runs_ms": [round(r * 1e3, 2) for r in runs],
                                "tflops": round(flops / med / 1e12, 1),
                                "rel_l2_vs_fp32": rel_l2(out[:, :, :rows].float(), exact)}
            print(f"{name} {kname}: {res[name][kname]}", flush=True)
            del out
        del q, k, v, exact
        if CUDA:
            torch.cuda.empty_cache()
    return res


# ------------------------------------------------------------------------------------------------ denoiser
def kernel_profile(fn, top: int = 12) -> dict:
    """One call of ``fn`` under the profiler: GPU milliseconds by kernel family and the ``top`` kernels."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        sync()
    rows = [(e.key, e.device_time_total / 1e3) for e in prof.key_averages() if e.device_time_total > 0]
    families = {"attention": ("attn", "fmha", "flash", "sdpa", "_attn_fwd"), "gemm": ("gemm", "sm90_xmma", "cutlass",
                "nvjet", "matmul", "_scaled_mm", "cublas")}
    by: dict[str, float] = {}
    for key, ms in rows:
        fam = next((f for f, pats in families.items() if any(p in key.lower() for p in pats)), "other")
        by[fam] = by.get(fam, 0.0) + ms
    rows.sort(key=lambda r: -r[1])
    return {"ms_by_family": {k: round(v, 1) for k, v in by.items()},
            "top": [[k[:120], round(ms, 1)] for k, ms in rows[:top]]}


def part_denoiser(repeats: int, smoke: bool, seed: int = 1, want: tuple[str, ...] = ()) -> dict:
    from denoiser_8bit import build

    from lyra.teacher.attention import use_attention_kernel
    from lyra.teacher.conditioning import Conditions
    from lyra.teacher.quant import quantize_linears

    dev = torch.device("cuda" if CUDA and not smoke else "cpu")
    t, h, w = (2, 4, 6) if smoke else (16, 88, 160)
    g = torch.Generator(device=dev).manual_seed(0)
    noisy = torch.randn(1, 16, t, h, w, device=dev, generator=g)
    cond = Conditions(torch.randn(1, 16, t, h, w, device=dev, generator=g),
                      (torch.rand(1, 1, t, h, w, device=dev, generator=g) > 0.3).float())
    tt = torch.tensor([0.7], device=dev)
    res: dict = {"latents": [16, t, h, w]}
    model = build(dev, seed, smoke)

    def fwd():
        with torch.no_grad():
            return held["m"](noisy, tt, cond)

    held = {"m": model}
    ref = None
    variants = [("bf16_sdpa", "sdpa", False, False), ("bf16_triton", "triton", False, False),
                ("bf16_triton_fp8", "triton_fp8", False, False), ("fp8lin_sdpa", "sdpa", True, False),
                ("fp8lin_triton_fp8", "triton_fp8", True, False),
                ("fp8lin_triton_fp8_compiled", "triton_fp8", True, True)]
    quantized = False
    only = [v for v in variants if v[0] in ("bf16_sdpa", *want)] if want else variants  # the reference first
    for name, kernel, fp8lin, compiled in only:
        if fp8lin and not quantized:
            stats = quantize_linears(model, "fp8", compute="fp8")
            quantized = True
            res["fp8_linear_layers"] = stats.layers
        use_attention_kernel(model, kernel)
        held["m"] = torch.compile(model) if compiled else model
        if CUDA:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            first, runs, out = timed(fwd, repeats)
        except Exception as e:  # noqa: BLE001
            res[name] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
            print(f"denoiser {name}: {res[name]['error']}", flush=True)
            continue
        out = out.float().cpu()
        ref = out if ref is None else ref
        if name in ("bf16_sdpa", "fp8lin_triton_fp8") and CUDA:
            res[f"profile_{name}"] = kernel_profile(fwd)
        med = statistics.median(runs)
        res[name] = {"first_call_s": round(first, 2), "median_s": round(med, 3), "runs_s": [round(r, 3) for r in runs],
                     "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if CUDA else None,
                     "rel_l2_vs_bf16_sdpa": rel_l2(out, ref),
                     "per_image_min_35x6": round(med * 35 * 6 / 60, 2), "per_image_min_4x6": round(med * 4 * 6 / 60, 2)}
        print(f"denoiser {name}: {res[name]}", flush=True)
    return res


# ------------------------------------------------------------------------------------------------ decoder
def part_decoder(repeats: int, smoke: bool) -> dict:
    from decoder_auto import build

    import lyra.student.decoder as dec
    from lyra.student.inference import decode

    dev = torch.device("cuda" if CUDA and not smoke else "cpu")
    V, t, h, w = (2, 2, 4, 6) if smoke else (6, 16, 88, 160)
    model, latents, plucker, cams = build(dev, V, t, h, w)
    model = model.to(torch.bfloat16 if dev.type == "cuda" else torch.float32)
    model.set_ssd_backend("auto")
    held = {"m": model}

    def run():
        return decode(held["m"], latents, cams, plucker)

    res: dict = {"tokens": V * t * (h // 2) * (w // 2)}
    outs = {}
    default = dec.ATTENTION_ORDER
    for name, order in (("cudnn", default), ("triton_bf16", ("triton",) + default),
                        ("triton_fp8", ("triton_fp8",) + default)):
        dec.ATTENTION_ORDER = order
        if CUDA:
            torch.cuda.reset_peak_memory_stats()
        first, runs, out = timed(run, repeats)
        outs[name] = out.float().cpu()
        res[name] = {"paths": model.compute_paths(), "first_call_s": round(first, 2),
                     "median_s": round(statistics.median(runs), 4), "runs_s": [round(r, 4) for r in runs],
                     "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if CUDA else None}
        print(f"decoder {name}: {res[name]}", flush=True)
    dec.ATTENTION_ORDER = default
    model = held["m"] = model.float().set_ssd_backend("torch")
    with torch.no_grad():
        ref = decode(model, latents, cams, plucker).cpu()
    fields = {"xyz": (0, 3), "opacity": (3, 4), "scale": (4, 7), "rotation": (7, 11), "rgb": (11, 14)}
    for name, out in outs.items():
        res[name]["rel_l2_vs_fp32"] = rel_l2(out, ref)
        res[name]["rel_l2_vs_fp32_by_field"] = {f: rel_l2(out[:, a:b], ref[:, a:b]) for f, (a, b) in fields.items()}
        print(f"decoder {name}: rel L2 vs fp32 {res[name]['rel_l2_vs_fp32']:.2e} "
              f"{ {k: f'{v:.1e}' for k, v in res[name]['rel_l2_vs_fp32_by_field'].items()} }", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="attention,denoiser,decoder")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--denoiser-variants", default="", help="comma-separated subset of the denoiser's variants "
                    "(bf16_sdpa, the reference, always runs)")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU (tests this script's plumbing)")
    args = ap.parse_args()
    if not CUDA and not args.cpu_smoke:
        print("fast_paths: no CUDA device; run this on the GPU machine (or --cpu-smoke)", file=sys.stderr)
        return 0
    res: dict = {"device": torch.cuda.get_device_name() if CUDA else "cpu", "torch": torch.__version__,
                 "command": "python3 " + " ".join(sys.argv)}
    try:
        import triton

        res["triton"] = triton.__version__
    except ImportError:
        res["triton"] = None
    parts = {"attention": part_attention, "denoiser": part_denoiser, "decoder": part_decoder}
    for part in args.part.split(","):
        t0 = time.perf_counter()
        extra = {"want": tuple(v for v in args.denoiser_variants.split(",") if v)} if part == "denoiser" else {}
        res[part] = parts[part](args.repeats, args.cpu_smoke, **extra)
        res[part]["part_s"] = round(time.perf_counter() - t0, 1)
        if args.json:  # after every part: a later part that dies keeps the earlier results
            Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
