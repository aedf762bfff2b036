"""CPU benchmark of the torch reference rasterizer: 90,000 Gaussians at 176×320 (target ≤ 2 s/frame).

Two scenes, both seeded:

* ``student``: what the tiny student produces — Gaussians "pixel-aligned" to ~6 × 17 source views of an
  analytic room (back wall, floor, three spheres): for each source camera (jittered around the render
  camera, looking at the scene centre) a 22 × 40 grid of jittered pixels is cast onto the scene; each
  hit gets a surface-aligned Gaussian of 1-3 px standard deviation at its depth (flat along the
  normal), opacity mostly high, colour from the surface.
* ``random``: centres uniform in the view frustum (z in [2, 10]), random rotations, projected standard
  deviations log-uniform in 0.5-4 px, opacities and colours uniform.

Prints one line: per scene the median wall seconds per frame and the median process CPU seconds per frame
(all threads; less sensitive to other load on the machine), and the peak RSS and writes JSON with ``--json``.

    python benchmarks/render_cpu.py [--n 90000] [--width 320] [--height 176] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from lyra.gaussians import Gaussians, rotmat_to_quat
from lyra.geometry import Cameras, look_at
from lyra.render import render

FOV_Y = 50.0


def _room_hits(o: torch.Tensor, d: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Ray-cast rays (``o``, unit ``d`` [R, 3], OpenCV world: y down) onto an analytic room.

    Returns hit points [R, 3], unit normals [R, 3], base colours [R, 3] and a hit mask [R].
    """
    R = d.shape[0]
    t_best = torch.full((R,), float("inf"))
    n_best = torch.zeros(R, 3)
    c_best = torch.zeros(R, 3)
    # back wall z = 9, floor y = 1.5 (below the camera), left/right walls x = ±5
    planes = [((0.0, 0.0, -1.0), 9.0, (0.75, 0.7, 0.6)), ((0.0, -1.0, 0.0), 1.5, (0.45, 0.35, 0.25)),
              ((1.0, 0.0, 0.0), 5.0, (0.55, 0.65, 0.75)), ((-1.0, 0.0, 0.0), 5.0, (0.6, 0.75, 0.55))]
    for normal, dist, col in planes:
        n = torch.tensor(normal)
        denom = d @ n
        t = -(o @ n + dist) / denom.where(denom.abs() > 1e-9, torch.full_like(denom, 1e-9))
        hit = (t > 1e-3) & (t < t_best) & (denom < 0)
        t_best = torch.where(hit, t, t_best)
        n_best[hit] = n
        c_best[hit] = torch.tensor(col)
    spheres = [((-1.5, 0.7, 5.5), 0.8, (0.9, 0.2, 0.2)), ((1.2, 0.9, 4.0), 0.6, (0.2, 0.7, 0.3)),
               ((0.3, -0.3, 7.0), 1.2, (0.2, 0.3, 0.9))]
    for centre, radius, col in spheres:
        cen = torch.tensor(centre)
        oc = o - cen
        b = (oc * d).sum(-1)
        disc = b * b - ((oc * oc).sum(-1) - radius * radius)
        t = -b - torch.sqrt(disc.clamp_min(0))
        hit = (disc > 0) & (t > 1e-3) & (t < t_best)
        t_best = torch.where(hit, t, t_best)
        p = o + t[:, None] * d
        n_best = torch.where(hit[:, None], F.normalize(p - cen, dim=-1), n_best)
        c_best = torch.where(hit[:, None], torch.tensor(col).expand(R, 3), c_best)
    ok = torch.isfinite(t_best)
    pts = o + t_best.where(ok, torch.zeros_like(t_best))[:, None] * d
    # a little texture: colour noise
    c_best = (c_best + 0.08 * torch.randn(R, 3, generator=g)).clamp(0, 1)
    return pts, n_best, c_best, ok


def render_camera(width: int, height: int) -> Cameras:
    """The benchmark's render camera: at the origin, looking down +z into the room."""
    return Cameras.from_fov(FOV_Y, width, height)


def student_scene(n: int, width: int, height: int, seed: int = 0) -> Gaussians:
    """``n`` surface-aligned Gaussians from jittered source views (see the module doc).

    Each source view contributes a ``height/8 x width/8`` grid (the latent grid); there are as many views
    as needed for ``n`` (103 for 90,000 at 176×320, about 6 × 17).
    """
    g = torch.Generator().manual_seed(seed)
    grid_h, grid_w = max(1, height // 8), max(1, width // 8)
    views = math.ceil(n / (grid_h * grid_w))
    eye = 0.3 * torch.randn(views, 3, generator=g)
    c2w = look_at(eye, torch.tensor([0.0, 0.3, 6.0]).expand(views, 3))
    cams = Cameras.from_fov(FOV_Y, width, height, c2w)
    ys = (torch.arange(grid_h) + 0.5) * height / grid_h
    xs = (torch.arange(grid_w) + 0.5) * width / grid_w
    v, u = torch.meshgrid(ys, xs, indexing="ij")
    uv = torch.stack([u, v], -1).expand(views, grid_h, grid_w, 2)
    uv = uv + (torch.rand(views, grid_h, grid_w, 2, generator=g) - 0.5) * torch.tensor(
        [width / grid_w, height / grid_h])
    K = cams.K[:, None, None]
    d_cam = torch.stack([(uv[..., 0] - K[..., 0, 2]) / K[..., 0, 0], (uv[..., 1] - K[..., 1, 2]) / K[..., 1, 1],
                         torch.ones(uv.shape[:-1])], -1)
    d = F.normalize((cams.c2w[:, None, None, :3, :3] @ d_cam[..., None])[..., 0], dim=-1).reshape(-1, 3)
    o = cams.centers[:, None, None].expand(views, grid_h, grid_w, 3).reshape(-1, 3)
    pts, normals, cols, ok = _room_hits(o, d, g)
    depth = ((pts - o) * cams.c2w[:, None, None, :3, 2].expand(views, grid_h, grid_w, 3).reshape(-1, 3)).sum(-1)
    pts, normals, cols, depth = pts[ok][:n], normals[ok][:n], cols[ok][:n], depth[ok][:n]
    m = len(pts)
    # surface frame: two tangents and the normal; scales 1-3 px at the depth, flat along the normal
    a = F.normalize(torch.linalg.cross(normals, torch.randn(m, 3, generator=g), dim=-1), dim=-1)
    b = torch.linalg.cross(normals, a, dim=-1)
    R = torch.stack([a, b, normals], -1)
    R = torch.where(torch.linalg.det(R)[:, None, None] < 0, R * torch.tensor([1.0, 1.0, -1.0]), R)
    px = depth / cams.K[0, 0, 0]
    s = px[:, None] * (1 + 2 * torch.rand(m, 2, generator=g))
    scales = torch.cat([s, 0.2 * s.min(-1, keepdim=True).values], -1)
    opac = torch.where(torch.rand(m, generator=g) < 0.8, 0.7 + 0.3 * torch.rand(m, generator=g),
                       torch.rand(m, generator=g)).clamp(0.01, 0.99)
    return Gaussians(pts, rotmat_to_quat(R), scales, opac, cols).validate("student scene")


def random_scene(n: int, width: int, height: int, seed: int = 0) -> Gaussians:
    """``n`` random Gaussians in the frustum of :func:`render_camera` (see the module doc)."""
    g = torch.Generator().manual_seed(seed)
    cam = render_camera(width, height)
    f = float(cam.K[0, 0])
    z = 2 + 8 * torch.rand(n, generator=g)
    u = torch.rand(n, generator=g) * width
    v = torch.rand(n, generator=g) * height
    x = (u - width / 2) / f * z
    y = (v - height / 2) / f * z
    sigma_px = torch.exp(math.log(0.5) + math.log(8.0) * torch.rand(n, 3, generator=g))
    scales = sigma_px * (z / f)[:, None]
    quats = F.normalize(torch.randn(n, 4, generator=g), dim=-1)
    return Gaussians(torch.stack([x, y, z], -1), quats, scales, torch.rand(n, generator=g).clamp(0.01, 0.99),
                     torch.rand(n, 3, generator=g)).validate("random scene")


def time_render(gaussians: Gaussians, cam: Cameras, repeats: int) -> tuple[list[float], list[float]]:
    """Wall seconds and process CPU seconds (all threads) of each of ``repeats`` frames."""
    wall, cpu = [], []
    with torch.inference_mode():
        render(gaussians, cam, backend="torch")  # warm-up
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            render(gaussians, cam, backend="torch")
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return wall, cpu


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if platform.system() != "Darwin" else kib / 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=90_000, help="number of Gaussians (default 90000)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=176)
    p.add_argument("--repeats", type=int, default=5, help="timed frames per scene (median reported)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--scenes", default="student,random", help="comma-separated: student, random")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cam = render_camera(args.width, args.height)
    makers = {"student": student_scene, "random": random_scene}
    results = {}
    for name in args.scenes.split(","):
        gs = makers[name](args.n, args.width, args.height)
        times, cpu = time_render(gs, cam, args.repeats)
        results[name] = {"n": len(gs), "median_s": statistics.median(times), "min_s": min(times),
                         "times_s": times, "median_cpu_s": statistics.median(cpu)}
    rss = peak_rss_mib()
    line = "; ".join(f"{k}: {v['n']} Gaussians {args.width}x{args.height} median {v['median_s']:.3f} s/frame "
                     f"(CPU time {v['median_cpu_s']:.3f} s)" for k, v in results.items())
    print(f"torch reference on CPU ({torch.get_num_threads()} threads) — {line}; peak RSS {rss:.0f} MiB")
    if args.json:
        from lyra.fileio import atomic_path

        payload = {"benchmark": "render_cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "width": args.width, "height": args.height, "results": results, "peak_rss_mib": rss,
                   "python": sys.version.split()[0], "machine": platform.machine()}
        with atomic_path(args.json) as tmp:
            with open(tmp, "w") as fh:
                json.dump(payload, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
