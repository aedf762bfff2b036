"""GPU benchmark of the student's self-chosen compute path (issue 22, item 1): the ``official`` decoder at paper scale
as the product runs it (bf16 weights, ``lyra.student.inference.decode``, SSD backend ``auto``).

Reports, for one forward over 6 views × 16 × 88 × 160 latents (337,920 tokens → 10.2 M Gaussians):
  * the path ``auto`` picked (``LatentDecoder.compute_paths()``: SSD and SDPA kernel), its first call in this
    process (``torch.compile`` on the inductor cache as found) and the median of ``--repeats`` later calls;
  * the same for the plain-torch path (``ssd_backend="torch"``, SDPA's own kernel choice);
  * the relative L2 error of both bf16 outputs against the fp32 torch path (the oracle);
  * ``--second-process``: the first call again in a fresh process, so with the compile cache that the first
    process left (what a second ``lyra generate`` on the same machine pays).

    python3 benchmarks/gpu/decoder_auto.py [--repeats 3] [--second-process] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build(dev: torch.device, V: int, t: int, h: int, w: int):
    from lyra.geometry import Cameras, look_at
    from lyra.student import LatentDecoder

    torch.manual_seed(0)
    model = LatentDecoder("official").to(dev).eval().requires_grad_(False)
    g = torch.Generator(device=dev).manual_seed(0)
    latents = torch.randn(V, 16, t, h, w, device=dev, generator=g)
    plucker = torch.randn(V, 32, t, h, w, device=dev, generator=g)
    T = 1 + 8 * (t - 1)
    eye = torch.zeros(V, T, 3)
    eye[..., 0] = torch.linspace(-0.5, 0.5, V)[:, None]
    eye[..., 2] = -torch.linspace(0, 1, T)
    c2w = look_at(eye, eye + torch.tensor([0.0, 0.0, 1.0]))
    cams = Cameras.from_fov(60.0, 8 * w, 8 * h, c2w).to(dev)
    return model, latents, plucker, cams


def timed_calls(fn, repeats: int) -> tuple[float, list[float], torch.Tensor]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        runs.append(time.perf_counter() - t0)
    return first, runs, out


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=6)
    ap.add_argument("--latent-frames", type=int, default=16)
    ap.add_argument("--latent-height", type=int, default=88)
    ap.add_argument("--latent-width", type=int, default=160)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--second-process", action="store_true", help="also time a first call in a fresh process")
    ap.add_argument("--first-call-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU (tests this script)")
    args = ap.parse_args()
    if args.cpu_smoke:
        args.views, args.latent_frames, args.latent_height, args.latent_width = 2, 2, 4, 6
    elif not torch.cuda.is_available():
        print("decoder_auto: no CUDA device; run this on the GPU machine", file=sys.stderr)
        return 0
    import lyra.student.decoder as dec
    from lyra.student.inference import decode
    from lyra.student.mamba2 import compile_available, mamba_ssm_available

    dev = torch.device("cpu" if args.cpu_smoke else "cuda")
    V, t, h, w = args.views, args.latent_frames, args.latent_height, args.latent_width
    model, latents, plucker, cams = build(dev, V, t, h, w)
    model = model.to(torch.bfloat16 if dev.type == "cuda" else torch.float32)  # as the product loads it

    def run():
        return decode(held["model"], latents, cams, plucker)

    held = {"model": model}

    if args.first_call_only:
        first, _, _ = timed_calls(run, 0)
        print(json.dumps({"first_call_s": round(first, 3), "paths": model.compute_paths()}))
        return 0

    res: dict = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                 "torch_version": torch.__version__,
                 "tokens": V * t * (h // 2) * (w // 2), "gaussians": V * (1 + 8 * (t - 1)) * h * w,
                 "compile_available": compile_available(), "mamba_ssm_available": mamba_ssm_available(),
                 "command": "python3 " + " ".join(sys.argv)}
    print(f"{res['device']}, torch {torch.__version__}; {res['tokens']:,} tokens; compile available "
          f"{res['compile_available']}, mamba_ssm {res['mamba_ssm_available']}", flush=True)
    outs = {}
    for name, backend in (("auto", "auto"), ("torch", "torch")):
        model.set_ssd_backend(backend)
        if backend == "torch":
            order, dec.ATTENTION_ORDER = dec.ATTENTION_ORDER, ()  # "sdpa": no kernel forced, as before issue 22
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        first, runs, out = timed_calls(run, args.repeats)
        if backend == "torch":
            dec.ATTENTION_ORDER = order
        outs[name] = out.float().cpu()
        res[name] = {"paths": model.compute_paths(), "first_call_s": round(first, 3),
                     "median_s": round(statistics.median(runs), 4), "runs_s": [round(r, 4) for r in runs],
                     "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev.type == "cuda" else None}
        print(f"{name:>5}: paths {res[name]['paths']}, first call {first:.2f} s, median {res[name]['median_s']:.3f}"
              f" s ({', '.join(f'{r:.3f}' for r in runs)}), peak {res[name]['peak_gib']} GiB", flush=True)
    # the oracle: fp32 weights and activations on the torch path
    model = held["model"] = model.float().set_ssd_backend("torch")
    with torch.no_grad():
        ref = decode(model, latents, cams, plucker).cpu()
    res["oracle"] = {"paths": model.compute_paths(), "what": "fp32 weights, torch SSD"}
    for name in ("auto", "torch"):
        res[name]["rel_l2_vs_fp32"] = rel_l2(outs[name], ref)
        res[name]["rel_l2_vs_fp32_by_field"] = {
            f: rel_l2(outs[name][:, a:b], ref[:, a:b])
            for f, (a, b) in {"xyz": (0, 3), "opacity": (3, 4), "scale": (4, 7), "rotation": (7, 11),
                              "rgb": (11, 14)}.items()}
        print(f"{name:>5}: rel L2 vs fp32 torch {res[name]['rel_l2_vs_fp32']:.2e} "
              f"{ {k: f'{v:.1e}' for k, v in res[name]['rel_l2_vs_fp32_by_field'].items()} }", flush=True)
    del model, outs, ref, held["model"]
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    if args.second_process:
        smoke = ["--cpu-smoke"] if args.cpu_smoke else []
        argv = [sys.executable, __file__, "--first-call-only", *smoke, "--views", str(V), "--latent-frames", str(t),
                "--latent-height", str(h), "--latent-width", str(w)]
        p = subprocess.run(argv, capture_output=True, text=True, check=False)
        try:
            res["second_process"] = json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            res["second_process"] = {"error": (p.stderr or p.stdout)[-1500:]}
        print(f"second process: {res['second_process']}", flush=True)
    res["speedup_auto_vs_torch"] = round(res["torch"]["median_s"] / res["auto"]["median_s"], 3)
    print(f"auto {res['auto']['median_s']:.3f} s vs torch {res['torch']['median_s']:.3f} s per forward "
          f"({res['speedup_auto_vs_torch']:.2f}×)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
