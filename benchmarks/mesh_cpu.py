"""CPU benchmark of ``lyra mesh`` on a tiny scene: 14,080 Gaussians, visual GLB + USD collider (target ≤ 30 s).

The tiny scene: an analytic room (back wall, floor, side walls, three spheres; :mod:`render_cpu`'s room) seen from
the origin camera (OpenCV, 50° vertical FoV): a jittered 88 × 160 grid of rays is cast onto it and each hit gets an
isotropic Gaussian (σ 2 cm, opacity 0.9, the surface's colour). The scene is saved as a .ply and meshed in this
process exactly as ``lyra mesh SCENE -o mesh.glb --collider collider.usdc`` runs (default options: the six GEN3C
trajectories, splatted-centre depth, 128 voxels), with ``torch.set_num_threads(--threads)``; then the same command
is run ``--repeats`` times more as a user runs it, ``python -m lyra mesh ...`` in a fresh process (imports
included; ``OMP_NUM_THREADS=--threads``).

Prints one line: wall and process-CPU seconds of the in-process command (median, min, max of ``--repeats``), the
fresh-process wall seconds, the load average before and after (a wall time means little on a busy machine: quote it
with the load), the triangle counts
and the mesh's distance to the room (mean distance of the visual mesh's vertices to the nearest of 200k exact
surface points cast the same way), and writes JSON with ``--json``.

    python benchmarks/mesh_cpu.py [--threads 2] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lyra.cli import main  # noqa: E402
from lyra.gaussians import Gaussians  # noqa: E402
from lyra.gaussians.io import save_gaussians  # noqa: E402
from lyra.geometry import Cameras  # noqa: E402
from render_cpu import _room_hits  # noqa: E402  (the room shared with the render benchmark)

TARGET_S = 30.0


def room_points(h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hit points [M, 3] and colours [M, 3] of a jittered h × w ray grid from the origin camera."""
    g = torch.Generator().manual_seed(seed)
    cam = Cameras.from_fov(50.0, w, h)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    uv = torch.stack([xs, ys], -1).reshape(-1, 2).float() + torch.rand(h * w, 2, generator=g)
    K = cam.K
    d = torch.stack([(uv[:, 0] - K[0, 2]) / K[0, 0], (uv[:, 1] - K[1, 2]) / K[1, 1], torch.ones(h * w)], -1)
    d = torch.nn.functional.normalize(d, dim=-1)
    pts, _, cols, ok = _room_hits(torch.zeros(h * w, 3), d, g)
    return pts[ok], cols[ok]


def tiny_scene() -> Gaussians:
    pts, cols = room_points(88, 160, 0)
    n = len(pts)
    return Gaussians(pts, torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4).contiguous(), torch.full((n, 3), 0.02),
                     torch.full((n,), 0.9), cols)


def main_(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = tiny_scene()
    walls, cpus = [], []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "scene.ply"
        save_gaussians(g, scene)
        for _ in range(args.repeats):
            for f in ("mesh.glb", "collider.usdc"):
                (Path(tmp) / f).unlink(missing_ok=True)
            t0, c0 = time.perf_counter(), time.process_time()
            code = main(["mesh", str(scene), "-o", str(Path(tmp) / "mesh.glb"), "--collider",
                         str(Path(tmp) / "collider.usdc")])
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            if code != 0:
                return code
        # the same command as a user runs it: a fresh process each time (imports included)
        colds = []
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                              os.environ.get("PYTHONPATH", "")])}
        for _ in range(args.repeats):
            for f in ("mesh.glb", "collider.usdc"):
                (Path(tmp) / f).unlink(missing_ok=True)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lyra", "mesh", str(scene), "-o", str(Path(tmp) / "mesh.glb"),
                            "--collider", str(Path(tmp) / "collider.usdc")], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            colds.append(time.perf_counter() - t0)
        import trimesh
        from scipy.spatial import cKDTree

        mesh = trimesh.load(Path(tmp) / "mesh.glb", force="mesh")
        verts = torch.from_numpy(mesh.vertices).float() * torch.tensor([1.0, -1.0, -1.0])  # glTF → lyra axes
        exact, _ = room_points(250, 800, 1)
        dist, _ = cKDTree(exact.numpy()).query(verts.numpy())
        from pxr import Usd, UsdGeom

        stage = Usd.Stage.Open(str(Path(tmp) / "collider.usdc"))
        col_faces = len(UsdGeom.Mesh(stage.GetPrimAtPath("/World/collider")).GetFaceVertexCountsAttr().Get())
    result = {
        "benchmark": "mesh_cpu", "gaussians": len(g), "threads": args.threads, "repeats": args.repeats,
        "wall_s_median": statistics.median(walls), "cpu_s_median": statistics.median(cpus), "wall_s": walls,
        "target_s": TARGET_S, "met": statistics.median(walls) <= TARGET_S,
        "visual_faces": len(mesh.faces), "collider_faces": col_faces,
        "mean_vertex_distance_m": float(dist.mean()),
        "p95_vertex_distance_m": float(sorted(dist)[int(0.95 * len(dist))]),
        "cold_process_wall_s": colds, "cold_process_wall_s_median": statistics.median(colds),
        "wall_s_min": min(walls), "wall_s_max": max(walls),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
    }
    print(f"lyra mesh, tiny scene ({len(g):,} Gaussians, {args.threads} threads): wall {result['wall_s_median']:.1f} s "
          f"(min {result['wall_s_min']:.1f}, max {result['wall_s_max']:.1f}; target <= {TARGET_S:g}: "
          f"{'met' if result['met'] else 'missed'}), CPU {result['cpu_s_median']:.1f} s; fresh process "
          f"{result['cold_process_wall_s_median']:.1f} s (min {min(colds):.1f}, max {max(colds):.1f}); load average "
          f"{result['loadavg_before'][0]:.2f} before, {result['loadavg_after'][0]:.2f} after; "
          f"{result['visual_faces']:,} / {col_faces:,} triangles; vertices "
          f"{result['mean_vertex_distance_m'] * 100:.2f} cm "
          f"from the room on average (p95 {result['p95_vertex_distance_m'] * 100:.2f} cm)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if math.isfinite(result["wall_s_median"]) else 1


if __name__ == "__main__":
    sys.exit(main_())
