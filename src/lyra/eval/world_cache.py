"""Generated scenes of held-out test worlds, cached on disk with their ground-truth surface samples.

The mesh benchmark (:mod:`lyra.eval.mesh_benchmark`) needs, per test world, the Gaussians that
:class:`lyra.pipeline.ScenePipeline` delivers for the world's input image (the teacher following the world's six
ground-truth trajectories, as ``lyra eval scene`` runs it) and points on the world's true surfaces. Generating a
scene costs tens of seconds on a CPU, so each world is written once into ``DIR/world_SEED/``:

* ``gaussians.ply`` — the delivered (pruned) Gaussians (OpenCV world of the input camera);
* ``cameras.json`` — the six GT trajectories as lyra's camera-path JSON (``V·T`` cameras);
* ``gt_points.npy`` — ``[M, 3]`` float32 points on the world's analytic surfaces: the exact ray-cast z-depth of
  every GT frame (:attr:`lyra.world.Example.depths`, the world's own ray caster) unprojected, over all six
  trajectories, thinned to one point per voxel of :data:`GT_VOXEL` × centre depth;
* ``world.json`` — seed, family, centre depth, the settings and the generation time.

A folder whose ``world.json`` exists is complete (it is written last); it is reused when its settings (preset,
steps, sampler seed, depth, and ``weights_key``: a digest of the models' weights) are those asked for, and generated
again otherwise, so a cache never serves a scene of another student or teacher.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lyra.fileio import atomic_path

__all__ = ["GT_VOXEL", "cache_world", "gt_surface_points", "load_cached_world", "voxel_thin", "weights_key"]

#: GT points are thinned to one per cube of this side, relative to the world's centre depth.
GT_VOXEL = 0.004


def voxel_thin(points: np.ndarray, voxel: float) -> np.ndarray:
    """One point (the first) per cube of side ``voxel`` of ``points`` ``[N, 3]`` → ``[M, 3]``, M ≤ N."""
    if len(points) == 0:
        return points
    keys = np.floor(points / voxel).astype(np.int64)
    _, idx = np.unique(keys, axis=0, return_index=True)
    return points[np.sort(idx)]


def gt_surface_points(example: Any, voxel_rel: float = GT_VOXEL) -> np.ndarray:
    """Points ``[M, 3]`` (float32) on the world's surfaces seen by its GT cameras: every finite exact depth of
    ``example.depths`` ``[V, T, H, W]`` unprojected through ``example.cameras`` ``[V, T]``, voxel-thinned."""
    cams = example.cameras.to("cpu")
    depth = example.depths.to("cpu").float()
    pts = cams.unproject(torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth)))
    pts = pts[torch.isfinite(depth) & (depth > 0)].numpy().astype(np.float32)
    return voxel_thin(pts, voxel_rel * float(example.center_depth)).astype(np.float32)


def weights_key(weights: Any) -> str:
    """A short digest (16 hex digits) of a pipeline's weight hashes (``ScenePipeline.weights``: name → sha256 or a
    dict of them); equal keys mean the same models."""
    import hashlib

    return hashlib.sha256(json.dumps(weights, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_world(pipe: Any, seed: int, folder: Path, preset: str = "tiny", steps: int = 35, sample_seed: int = 0,
                exact_depth: bool = False, key: str = "") -> Path:
    """Generate test world ``seed``'s scene with ``pipe`` (a :class:`lyra.pipeline.ScenePipeline`) and write it
    with its GT points into ``folder/world_SEED`` (see the module doc); a complete folder made with the same
    settings and weights ``key`` (:func:`weights_key`) is reused, any other is generated again."""
    from lyra.gaussians.io import save_gaussians
    from lyra.geometry.trajectories import camera_path_dict
    from lyra.world import load_example

    out = Path(folder) / f"world_{seed}"
    want = {"preset": preset, "steps": steps, "sample_seed": sample_seed,
            "depth": "exact" if exact_depth else "estimate", "weights_key": key}
    if (out / "world.json").is_file():
        try:
            have = json.loads((out / "world.json").read_text())
        except (OSError, ValueError):
            have = {}
        if all(have.get(k) == v for k, v in want.items()):
            return out
        (out / "world.json").unlink()  # another setting or other weights: generate again
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ex = load_example(seed, preset, str(getattr(pipe, "device", "cpu"))).to("cpu")
    H, W = ex.image.shape[-2:]
    scene = pipe(ex.image, seed=sample_seed, steps=steps, size=(H, W), trajectory=ex.cameras,
                 depth_map=ex.depth if exact_depth else None, progress=False)
    save_gaussians(scene.gaussians, out / "gaussians.ply")
    with atomic_path(out / "cameras.json") as tmp:
        tmp.write_text(json.dumps(camera_path_dict(ex.cameras)) + "\n")
    gt = gt_surface_points(ex)
    with atomic_path(out / "gt_points.npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, gt)
    meta = {"seed": seed, "family": ex.family, "center_depth": float(ex.center_depth), **want,
            "gaussians": len(scene.gaussians), "gt_points": int(len(gt)), "height": int(H), "width": int(W),
            "generate_s": round(time.perf_counter() - t0, 2)}
    with atomic_path(out / "world.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load_cached_world(folder: Path) -> dict[str, Any]:
    """A cached world: ``meta`` (world.json), ``gaussians`` (:class:`~lyra.gaussians.Gaussians`), ``cameras``
    (flat :class:`~lyra.geometry.cameras.Cameras` ``[V·T]``) and ``gt_points`` ``[M, 3]``."""
    from lyra.gaussians.io import load_gaussians
    from lyra.geometry.trajectories import load_camera_path

    folder = Path(folder)
    return {"meta": json.loads((folder / "world.json").read_text()),
            "gaussians": load_gaussians(folder / "gaussians.ply"),
            "cameras": load_camera_path(folder / "cameras.json").flatten(),
            "gt_points": np.load(folder / "gt_points.npy")}
