"""GPU benchmark: gsplat ``RGB+ED`` for 2 M Gaussians at 704×1280, one camera (target ≤ 5 ms/frame).

Times ``lyra.render.render(..., backend="gsplat")`` (what users get: gsplat plus background
compositing) and the bare ``gsplat.rasterization`` call, as the median over ``--runs`` frames after
``--warmup`` frames, each timed with CUDA events. Scenes (seeded, built on the CPU, see
``benchmarks/render_cpu.py``): ``random`` (uniform in the frustum, 0.5-4 px) and ``student``
(surface-aligned, pixel-aligned to jittered source views). For interest, it also times the torch
reference on the GPU for 90,000 Gaussians at 176×320.

    python benchmarks/gpu/render_gsplat.py [--n 2000000] [--runs 100] [--json out.json]

Needs CUDA and gsplat (the first call JIT-builds gsplat's extension, about a minute).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def _load_scenes():
    path = Path(__file__).resolve().parents[1] / "render_cpu.py"
    spec = importlib.util.spec_from_file_location("render_cpu", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cuda_median_ms(fn: Callable[[], object], runs: int, warmup: int) -> tuple[float, list[float]]:
    """Median wall time of ``fn`` on the GPU in milliseconds (CUDA events, one pair per run)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2_000_000, help="Gaussians for the gsplat benchmark")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=704)
    p.add_argument("--runs", type=int, default=100, help="timed frames (median reported)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--scenes", default="random,student", help="comma-separated: random, student")
    p.add_argument("--ref-n", type=int, default=90_000, help="Gaussians for the torch reference (0: skip)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("render_gsplat: needs CUDA (run it on the GPU machine)", file=sys.stderr)
        return 2
    from lyra.render import gsplat_available, render

    if not gsplat_available():
        print("render_gsplat: needs the gsplat package (pip install gsplat)", file=sys.stderr)
        return 2
    from gsplat import rasterization

    scenes = _load_scenes()
    dev = torch.device("cuda")
    cam = scenes.render_camera(args.width, args.height).to(dev)
    makers = {"random": scenes.random_scene, "student": scenes.student_scene}
    results: dict[str, dict] = {}
    for name in args.scenes.split(","):
        g = makers[name](args.n, args.width, args.height).to(dev)
        t0 = time.perf_counter()
        render(g, cam, backend="gsplat")
        torch.cuda.synchronize()
        first_s = time.perf_counter() - t0
        with torch.inference_mode():
            med, times = cuda_median_ms(lambda g=g: render(g, cam, backend="gsplat"), args.runs, args.warmup)

            def bare(g=g):
                return rasterization(g.means, g.quats, g.scales, g.opacities, g.colors, cam.w2c[None],
                                     cam.K[None], args.width, args.height, near_plane=0.1, far_plane=500.0,
                                     packed=False, render_mode="RGB+ED", rasterize_mode="classic")

            med_bare, _ = cuda_median_ms(bare, args.runs, args.warmup)
        results[f"gsplat_{name}"] = {"n": len(g), "width": args.width, "height": args.height,
                                     "median_ms": med, "bare_rasterization_median_ms": med_bare,
                                     "min_ms": min(times), "first_call_s": first_s}
        del g
    if args.ref_n:
        cam_s = scenes.render_camera(320, 176).to(dev)
        for name in args.scenes.split(","):
            g = makers[name](args.ref_n, 320, 176).to(dev)
            with torch.inference_mode():
                med, _ = cuda_median_ms(lambda g=g: render(g, cam_s, backend="torch"), 20, 3)
                med_gs, _ = cuda_median_ms(lambda g=g: render(g, cam_s, backend="gsplat"), 100, 10)
            results[f"torch_ref_{name}"] = {"n": len(g), "width": 320, "height": 176, "median_ms": med,
                                            "gsplat_median_ms": med_gs}
    parts = [f"gsplat {k[7:]} {v['n']}@{v['width']}x{v['height']}: {v['median_ms']:.2f} ms "
             f"(bare {v['bare_rasterization_median_ms']:.2f})" for k, v in results.items() if k.startswith("gsplat")]
    parts += [f"torch-ref {k[10:]} {v['n']}@320x176: {v['median_ms']:.1f} ms (gsplat {v['gsplat_median_ms']:.2f})"
              for k, v in results.items() if k.startswith("torch_ref")]
    print(f"{torch.cuda.get_device_name()} — " + "; ".join(parts))
    if args.json:
        from lyra.fileio import atomic_path

        payload = {"benchmark": "render_gsplat", "device": torch.cuda.get_device_name(),
                   "torch": torch.__version__, "gsplat": _gsplat_version(), "runs": args.runs,
                   "warmup": args.warmup, "results": results}
        with atomic_path(args.json) as tmp:
            with open(tmp, "w") as fh:
                json.dump(payload, fh, indent=2)
    return 0


def _gsplat_version() -> str:
    try:
        import gsplat

        return str(getattr(gsplat, "__version__", "unknown"))
    except ImportError:
        return "missing"


if __name__ == "__main__":
    sys.exit(main())
