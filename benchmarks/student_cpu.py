"""CPU benchmark of the ``tiny`` student: one forward over 6 views × 3 × 22 × 40 latents (target ≤ 1 s on
2 cores) → 6 × 17 × 22 × 40 = 89,760 Gaussians.

Prints the median wall seconds and the median process CPU seconds (all threads; less sensitive to other load)
over ``--repeats`` runs after one warm-up, the peak RSS of the process and its growth during the forwards,
and writes JSON with ``--json``. The weights are a seeded random initialisation (timing does not depend on
them).

    python benchmarks/student_cpu.py [--threads 2] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time

import torch

from lyra.geometry import Cameras, look_at
from lyra.student import LatentDecoder


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--views", type=int, default=6)
    ap.add_argument("--latents", default="3x22x40", help="t x h x w")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t, h, w = (int(s) for s in args.latents.split("x"))
    V, T = args.views, 1 + 8 * (t - 1)

    model = LatentDecoder(args.preset).eval()
    g = torch.Generator().manual_seed(0)
    C = model.config.latent_channels  # the tokenizer's latent channels (16: Cosmos)
    latents = torch.randn(1, V, C, t, h, w, generator=g)
    plucker = torch.randn(1, V, 2 * C, t, h, w, generator=g)
    eye = torch.zeros(1, V, T, 3)
    eye[..., 0] = torch.linspace(-0.5, 0.5, V)[:, None]
    eye[..., 2] = -torch.linspace(0, 1, T)
    cams = Cameras.from_fov(50.0, 8 * w, 8 * h, look_at(eye, eye + torch.tensor([0.0, 0.0, 1.0])))

    rss_before = rss_mib()
    wall, cpu = [], []
    with torch.no_grad():
        raw = model(latents, cams, plucker)  # warm-up
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            raw = model(latents, cams, plucker)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    res = {
        "preset": args.preset, "parameters": model.num_parameters(), "views": V, "latents": [t, h, w],
        "gaussians": int(raw.shape[1]), "threads": args.threads, "median_wall_s": statistics.median(wall),
        "median_cpu_s": statistics.median(cpu), "runs_wall_s": wall, "peak_rss_mib": peak,
        "rss_growth_mib": peak - rss_before, "machine": platform.machine(), "torch": torch.__version__,
    }
    print(f"student {args.preset} ({res['parameters'] / 1e6:.2f} M params), {V} views × {t}×{h}×{w} latents → "
          f"{res['gaussians']:,} Gaussians: median {res['median_wall_s']:.3f} s wall, {res['median_cpu_s']:.3f} s CPU "
          f"({args.threads} threads); peak RSS {peak:.0f} MiB (+{res['rss_growth_mib']:.0f} MiB in the forwards)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
