"""Meshes from Gaussian scenes: TSDF fusion of rendered depth, marching cubes, decimation, export.

``build_meshes(gaussians, cameras)`` → :class:`MeshResult` (a vertex-coloured visual mesh and a decimated
collider); :func:`default_cameras` gives the cameras when a scene file comes without its trajectories;
:func:`lyra.mesh.export.write_mesh` writes ``.glb`` / ``.obj`` / ``.ply`` / ``.usd(a|c)``.
See :mod:`lyra.mesh.tsdf` and :mod:`lyra.mesh.extract` for the method.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras

#: Default triangle budget of the collider (Marble ships 100-200k).
DEFAULT_COLLIDER_FACES = 150_000
#: Default triangle budget of the visual mesh.
DEFAULT_VISUAL_FACES = 500_000
#: Default grid resolution (voxels along the longest side of the observed region).
DEFAULT_RESOLUTION = 128


@dataclass
class MeshResult:
    """What :func:`build_meshes` returns: ``visual`` (vertex-coloured ``trimesh.Trimesh``), ``collider``
    (uncoloured, ≤ the budget) and ``stats`` (faces, vertices, watertight, voxel size, seconds per stage)."""

    visual: Any
    collider: Any
    stats: dict[str, Any] = field(default_factory=dict)


def default_cameras(gaussians: Gaussians, height: int = 176, width: int = 320, fov_deg: float = 50.0,
                    num_frames: int = 17) -> Cameras:
    """The cameras a lyra scene was generated from when its trajectory file is not at hand: the six GEN3C
    trajectories (mid-range distances) from the input camera at the origin looking down +z (OpenCV), around the
    median depth of the Gaussians in front of it. Returns ``Cameras [6 · num_frames]``."""
    from lyra.geometry.trajectories import DISTANCE_RANGES, TRAJECTORY_NAMES, sample_gen3c_trajectories

    z = gaussians.means[:, 2]
    front = z[z > 1e-3]
    if len(front) == 0:
        raise ConfigError("no Gaussian lies in front of the input camera (z > 0); pass the scene's cameras with "
                          "--cameras (the .json that lyra generate --cameras writes)")
    center = float(front.median())
    cam = Cameras.from_fov(fov_deg, width, height)
    dists = [sum(DISTANCE_RANGES[n]) / 2 for n in TRAJECTORY_NAMES]
    return sample_gen3c_trajectories(cam, center, num_frames, distances=dists).flatten()


def build_meshes(gaussians: Gaussians, cameras: Cameras, resolution: int = DEFAULT_RESOLUTION,
                 collider_faces: int = DEFAULT_COLLIDER_FACES, visual_faces: int = DEFAULT_VISUAL_FACES,
                 max_width: int = 96, depth_source: str = "auto", view_stride: int = 3, backend: str = "auto"
                 ) -> MeshResult:
    """Gaussians + cameras → visual mesh and collider (see :mod:`lyra.mesh.tsdf`, :mod:`lyra.mesh.extract`).

    Args:
        gaussians: the scene (any device).
        cameras: the cameras whose depth maps are fused (any batch shape; every ``view_stride``-th camera, its
            image scaled down to at most ``max_width`` pixels wide).
        resolution: TSDF voxels along the longest side of the observed region.
        depth_source: ``"render"`` (the rasterizer's expected depth), ``"points"`` (median depth of splatted
            centres; fast on CPU) or ``"auto"`` (render on CUDA, points otherwise); see :mod:`lyra.mesh.tsdf`.
        collider_faces, visual_faces: triangle budgets (positive integers).

    Raises:
        ConfigError: no Gaussians, a budget < 1, nothing observed.
    """
    from lyra.mesh.extract import decimate, extract_mesh, make_collider
    from lyra.mesh.tsdf import fuse, render_views, splat_depth_views

    for name, v in (("collider", collider_faces), ("visual mesh", visual_faces)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"the {name} triangle budget must be a positive integer, got {v!r}")
    if len(gaussians) == 0:
        raise ConfigError("the scene has no Gaussians: there is no surface to mesh")
    if depth_source not in ("auto", "render", "points"):
        raise ConfigError(f"depth source must be auto, render or points, got {depth_source!r}")
    if view_stride < 1 or max_width < 8:
        raise ConfigError(f"view stride must be >= 1 and the depth width >= 8, got {view_stride}, {max_width}")
    if depth_source == "auto":
        depth_source = "render" if gaussians.device.type == "cuda" else "points"
    t = {}
    t0 = time.perf_counter()
    cams = cameras.flatten()[::view_stride]
    if cams.width > max_width:
        s = max_width / cams.width
        cams = cams.resize(max_width, max(1, round(cams.height * s)))
    if depth_source == "render":
        views = render_views(gaussians, cams, backend=backend)
    else:
        views = splat_depth_views(gaussians, cams)
    t["render"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vol = fuse(views, resolution=resolution)
    t["fuse"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw = extract_mesh(vol)
    t["marching_cubes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    visual = decimate(raw, visual_faces, vol)
    collider = make_collider(raw, collider_faces)
    t["decimate"] = time.perf_counter() - t0
    stats = {"depth_source": depth_source, "voxel": vol.voxel, "grid": list(vol.tsdf.shape),
             "views": int(cams.shape[0]),
             "raw_faces": int(len(raw.faces)), "visual_faces": int(len(visual.faces)),
             "visual_vertices": int(len(visual.vertices)), "collider_faces": int(len(collider.faces)),
             "collider_watertight": bool(collider.is_watertight),
             "seconds": {k: round(v, 3) for k, v in t.items()}}
    return MeshResult(visual, collider, stats)


def load_cameras(path: str) -> Cameras:
    """Cameras from a camera-path JSON (lyra's, as ``lyra generate --cameras`` writes, or nerfstudio's)."""
    from lyra.geometry.trajectories import load_camera_path

    return load_camera_path(path).flatten()


__all__ = ["DEFAULT_COLLIDER_FACES", "DEFAULT_RESOLUTION", "DEFAULT_VISUAL_FACES", "MeshResult", "build_meshes",
           "default_cameras", "load_cameras"]

