"""Seconds per ``tiny`` world example on the CPU (6 trajectories × 17 frames × 176×320, anti-aliased).

    python benchmarks/world_cpu.py [--seeds 1000 1001 1002] [--threads 2] [--dynamic] [--preset tiny] [--compile]
                                   [--style classic|photo]

Prints, per seed, the time to generate the world and place its cameras (``sample``) and to render all
frames (``render``), then the median total. Target (issue 4): ≤ 5 s per tiny example on 2 CPU cores.
``--compile`` uses the torch.compile kernels (LYRA_WORLD_COMPILE=cpu); their one-off compilation is
done in an untimed warm-up example first. ``--style photo`` times the photo-style worlds (lyra.world.photo: the
render plus the camera model's development, which ``render`` includes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1000, 1001, 1002, 1003, 1004])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--dynamic", action="store_true")
    ap.add_argument("--compile", action="store_true", help="use the torch.compile kernels")
    ap.add_argument("--style", default="classic", choices=("classic", "photo"), help="world style")
    args = ap.parse_args()
    if args.compile:
        os.environ["LYRA_WORLD_COMPILE"] = "cpu"
    import torch

    from lyra.world.sample import render_samples, sample_world

    torch.set_num_threads(args.threads)
    warm = sample_world(args.seeds[0], args.preset if args.compile else "micro", args.dynamic, style=args.style)
    t0 = time.perf_counter()
    render_samples([warm])  # warm-up (imports, allocator; compilation with --compile)
    if args.compile:
        print(f"warm-up (compilation) {time.perf_counter() - t0:.1f} s")
    totals = []
    for s in args.seeds:
        t0 = time.perf_counter()
        ws = sample_world(s, args.preset, args.dynamic, style=args.style)
        t1 = time.perf_counter()
        ex = render_samples([ws])[0]
        t2 = time.perf_counter()
        totals.append(t2 - t0)
        frames = ex.videos.shape[0] * ex.videos.shape[1]
        print(f"seed {s:>5} {ex.family:<8} prims {ws.scene.n_prims:>3}  sample {t1 - t0:5.2f} s  "
              f"render {t2 - t1:5.2f} s  ({frames} frames {ex.videos.shape[-2]}x{ex.videos.shape[-1]})")
    print(f"median {statistics.median(totals):.2f} s per {args.preset} example "
          f"({args.style}, {'dynamic' if args.dynamic else 'static'}, {args.threads} threads"
          f"{', compiled' if args.compile else ''})")


if __name__ == "__main__":
    main()
