"""GPU benchmark of the 8-bit memory mode (issue 22, item 4): the official teacher denoiser (7.24 B parameters,
random weights of the real shapes) at full shape — one trajectory, 121 frames at 704 × 1280 = 16 × 88 × 160
latents — in bf16, then with its large linear weights in fp8 (``lyra.teacher.quant``, weight-only).

Reports per mode: the median forward (CUDA-synchronised wall clock, after one untimed call), the peak of
``torch.cuda.max_memory_allocated`` over a forward with the model resident (what the low-memory staging's denoise
stage holds: the model plus one trajectory's activations), the weights' GiB, and for fp8 the relative L2 error of
the output against bf16 on the same inputs, plus the seconds quantising took on the GPU. ``--int8`` repeats the
8-bit run in int8 (rebuilding the same seeded weights).

    PYTHONPATH=src python3 benchmarks/gpu/denoiser_8bit.py [--repeats 2] [--int8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
CUDA = torch.cuda.is_available()


def _sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def _peak_reset() -> None:
    if CUDA:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if CUDA else float("nan")


def build(dev: torch.device, seed: int, smoke: bool = False):
    from accelerate import init_empty_weights
    from diffusers import CosmosTransformer3DModel
    from official_generate import materialize

    from lyra.teacher.denoiser import TeacherDenoiser, preset_config

    cfg = preset_config("official")
    if smoke:
        cfg = preset_config("tiny")
        cfg["transformer"].update(num_layers=2, concat_padding_mask=True)
    with init_empty_weights(include_buffers=False):
        den = TeacherDenoiser(CosmosTransformer3DModel(**cfg["transformer"]), cfg["context_tokens"])
    return materialize(den, dev, torch.bfloat16 if dev.type == "cuda" else torch.float32, seed).requires_grad_(False)


def weights_gib(model: torch.nn.Module) -> float:
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    n += sum(b.numel() * b.element_size() for b in model.buffers())
    return n / 2**30


def run_mode(model, inputs, repeats: int) -> tuple[dict, torch.Tensor]:
    def fwd():
        with torch.no_grad():
            return model(*inputs)

    _sync()
    t0 = time.perf_counter()
    out = fwd()
    _sync()
    first = time.perf_counter() - t0
    _peak_reset()
    runs = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        out = fwd()
        _sync()
        runs.append(time.perf_counter() - t0)
    peak = _peak()
    return {"first_call_s": round(first, 3), "median_s": round(statistics.median(runs), 3),
            "runs_s": [round(r, 3) for r in runs], "peak_gib": round(peak, 2),
            "weights_gib": round(weights_gib(model), 2)}, out.float().cpu()


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--latents", default="16x88x160", help="t x h x w latents of one trajectory")
    ap.add_argument("--int8", action="store_true", help="also the int8 mode")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--cpu-smoke", action="store_true", help="the tiny denoiser on the CPU (tests this script)")
    args = ap.parse_args()
    if args.cpu_smoke:
        args.latents = "2x4x6"
    elif not CUDA:
        print("denoiser_8bit: no CUDA device; run this on the GPU machine", file=sys.stderr)
        return 0
    from lyra.teacher.conditioning import Conditions
    from lyra.teacher.quant import quantize_linears

    dev = torch.device("cuda" if CUDA and not args.cpu_smoke else "cpu")
    t, h, w = (int(v) for v in args.latents.lower().split("x"))
    g = torch.Generator(device=dev).manual_seed(0)
    noisy = torch.randn(1, 16, t, h, w, device=dev, generator=g)
    cond = Conditions(torch.randn(1, 16, t, h, w, device=dev, generator=g),
                      (torch.rand(1, 1, t, h, w, device=dev, generator=g) > 0.3).float())
    inputs = (noisy, torch.tensor([0.7], device=dev), cond)
    res: dict = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "torch": torch.__version__,
                 "latents": [16, t, h, w],
                 "command": "python3 " + " ".join(sys.argv)}
    t0 = time.perf_counter()
    model = build(dev, args.seed, args.cpu_smoke)
    _sync()
    res["build_s"] = round(time.perf_counter() - t0, 1)
    res["parameters"] = sum(p.numel() for p in model.parameters())
    print(f"{res['device']}; denoiser {res['parameters'] / 1e9:.3f} B parameters built in {res['build_s']} s; "
          f"one trajectory of {t}x{h}x{w} latents", flush=True)
    res["bf16"], ref = run_mode(model, inputs, args.repeats)
    print(f"bf16: {res['bf16']}", flush=True)
    for mode in ("fp8", "int8") if args.int8 else ("fp8",):
        if mode == "int8":
            del model
            _peak_reset()
            model = build(dev, args.seed, args.cpu_smoke)
        _sync()
        t0 = time.perf_counter()
        stats = quantize_linears(model, mode)
        _sync()
        q_s = time.perf_counter() - t0
        _peak_reset()
        res[mode], out = run_mode(model, inputs, args.repeats)
        res[mode].update({"quantize_s": round(q_s, 2), "layers": stats.layers,
                          "linear_weights_gib": [round(stats.bytes_before / 2**30, 2),
                                                 round(stats.bytes_after / 2**30, 2)],
                          "rel_l2_vs_bf16": rel_l2(out, ref)})
        res[mode]["per_image_35x6_min"] = round(res[mode]["median_s"] * 35 * 6 / 60, 2)
        print(f"{mode}: {res[mode]}", flush=True)
    res["bf16"]["per_image_35x6_min"] = round(res["bf16"]["median_s"] * 35 * 6 / 60, 2)
    print(f"peak at full shape: bf16 {res['bf16']['peak_gib']:.2f} GiB, fp8 {res['fp8']['peak_gib']:.2f} GiB "
          f"(target <= 16 GB = 14.9 GiB); fp8 vs bf16 rel L2 {res['fp8']['rel_l2_vs_bf16']:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
