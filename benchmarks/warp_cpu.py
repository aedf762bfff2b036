"""CPU benchmark of the teacher's forward warp: one 176×320 view into 6 × 17 GEN3C cameras (target ≤ 2 s).

Scene (seeded, analytic, no world rendering needed): a textured room seen by a 50° camera — a floor
plane, a back wall, and boxes in front of it at several depths, so the cache has occlusion edges,
discontinuity occluders, slanted surfaces and a border ring. The six GEN3C trajectories (17 frames,
distances drawn with the seed) are warped with :func:`lyra.teacher.cache3d.warp` at its defaults.

Prints, per thread count, the median wall seconds and process-CPU seconds (all threads) of ``warp``
over ``--repeats`` runs, plus the cache build time and the mean valid fraction; ``--json`` writes them.
On a shared machine the wall time with 2 threads suffers when the other core is busy; the CPU time
shows the work done.

    python benchmarks/warp_cpu.py [--threads 1 2] [--repeats 5] [--visibility] [--device cuda] [--json out.json]

``--visibility`` adds ``warp(..., visibility_check=True)``; ``--device cuda`` times the same on a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import time

import torch

from lyra.geometry.cameras import Cameras
from lyra.geometry.trajectories import sample_gen3c_trajectories
from lyra.teacher.cache3d import PointCache, warp

H, W, T = 176, 320, 17
FOV_Y = 50.0


def room(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Cameras]:
    """An image ``[3, H, W]``, its z-depth ``[H, W]`` and camera: floor, back wall, boxes; textured."""
    g = torch.Generator().manual_seed(seed)
    cam = Cameras.from_fov(FOV_Y, W, H)
    o, d = cam.rays(normalize=False)  # d has z = 1
    depth = torch.full((H, W), math.inf)
    pos = torch.zeros(H, W, 3)
    # back wall z = 8, floor y = 1.2 (y down)
    t_wall = torch.full((H, W), 8.0)
    t_floor = torch.where(d[..., 1] > 1e-6, 1.2 / d[..., 1].clamp_min(1e-6), torch.full((H, W), math.inf))
    for t in (t_wall, t_floor):
        closer = t < depth
        depth = torch.where(closer, t, depth)
    # boxes: fronto-parallel faces at depths 2.5..6
    for _ in range(5):
        z = 2.5 + 3.5 * torch.rand((), generator=g)
        cx, cy = (torch.rand(2, generator=g) - 0.5) * torch.tensor([4.0, 1.5])
        sx, sy = 0.3 + 0.8 * torch.rand(2, generator=g)
        x, y = d[..., 0] * z, d[..., 1] * z
        hit = ((x - cx).abs() < sx / 2) & ((y - cy).abs() < sy / 2) & (z < depth)
        depth = torch.where(hit, z.expand(H, W), depth)
    pos = o + d * depth[..., None]
    f = torch.tensor([3.0, 5.0, 7.0])
    image = 0.5 + 0.4 * torch.sin(f[:, None, None] * pos[..., 0] + 1.3 * f[:, None, None] * pos[..., 2]) \
        * torch.cos(0.7 * f[:, None, None] * pos[..., 1])
    return image.clamp(0, 1), depth, cam


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--visibility", action="store_true", help="warp with visibility_check=True")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    dev = torch.device(args.device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    image, depth, cam = room(args.seed)
    t0 = time.perf_counter()
    cache = PointCache.from_depth(image.to(dev), depth.to(dev), cam.to(dev))
    sync()
    build = time.perf_counter() - t0
    center = float(depth[H // 2 - 20:H // 2 + 20, W // 2 - 40:W // 2 + 40].median())
    cams = sample_gen3c_trajectories(cam, center, T, generator=torch.Generator().manual_seed(args.seed)).to(dev)
    results: dict = {"targets": int(cams.shape.numel()), "size": [H, W], "points": len(cache),
                     "device": str(dev), "visibility_check": args.visibility,
                     "occluders": 0 if cache.occluders is None else int(cache.occluders.shape[0]),
                     "cache_build_s": round(build, 4), "torch": torch.__version__,
                     "machine": platform.processor() or platform.machine(), "runs": {}}
    for n in args.threads:
        torch.set_num_threads(n)
        warp(cache, cams[:, :2], visibility_check=args.visibility)  # warm-up
        sync()
        walls, cpus = [], []
        valid = 0.0
        for _ in range(args.repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            out = warp(cache, cams, visibility_check=args.visibility)
            sync()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            valid = float(out.mask.float().mean())
        results["runs"][str(n)] = {"wall_s": round(statistics.median(walls), 3),
                                   "cpu_s": round(statistics.median(cpus), 3), "valid_fraction": round(valid, 4)}
        print(f"threads {n}: warp of {results['targets']} targets {statistics.median(walls):.3f} s wall "
              f"(median of {args.repeats}), {statistics.median(cpus):.3f} s CPU; valid {valid:.3f}", flush=True)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"cache: {len(cache)} points, {results['occluders']} occluders, built in {build:.3f} s; "
          f"peak RSS {results['peak_rss_mb']} MB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
