"""From a TSDF grid to triangle meshes: marching cubes, clean-up, vertex colours, decimation, hole filling.

* :func:`extract_mesh` — scikit-image's marching cubes at TSDF = 0 over the voxels observed at least
  ``min_weight`` times (unobserved space makes no surface), small disconnected pieces removed, vertex colours
  looked up in the grid (nearest observed voxel);
* :func:`decimate` — quadric edge collapse (``fast-simplification``) down to at most ``max_faces`` triangles,
  colours looked up again at the new vertices;
* :func:`make_collider` — decimate, merge duplicate vertices, fill the holes trimesh can close, orient faces
  consistently: "closed where possible" (a scene seen from one side stays open where nothing was seen).

Meshes are ``trimesh.Trimesh`` in the Gaussians' world (OpenCV axes), vertex colours RGBA uint8.
"""

from __future__ import annotations

import numpy as np

from lyra.errors import ConfigError
from lyra.mesh.tsdf import TSDFVolume


def _trimesh():
    try:
        import trimesh
    except ImportError:  # pragma: no cover - trimesh is a core dependency
        raise ConfigError("meshes need the 'trimesh' package: pip install trimesh") from None
    return trimesh


def vertex_colors(volume: TSDFVolume, vertices: np.ndarray) -> np.ndarray:
    """RGBA uint8 ``[V, 4]``: the colour of the voxel nearest each vertex among those with a colour."""
    from scipy.ndimage import distance_transform_edt

    has = volume.color.any(-1)
    if not has.any():
        return np.full((len(vertices), 4), 200, dtype=np.uint8)
    _, near = distance_transform_edt(~has, return_indices=True)
    ijk = np.round((vertices - volume.origin) / volume.voxel).astype(np.int64)
    ijk = np.clip(ijk, 0, np.array(volume.color.shape[:3]) - 1)
    src = near[:, ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    rgb = volume.color[src[0], src[1], src[2]]
    out = np.empty((len(vertices), 4), dtype=np.uint8)
    out[:, :3] = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    out[:, 3] = 255
    return out


def extract_mesh(volume: TSDFVolume, min_weight: float = 2.0, min_component: float = 0.002):
    """Marching cubes of ``volume`` → a vertex-coloured ``trimesh.Trimesh`` (see the module doc).

    ``min_component``: connected pieces with fewer than this fraction of all faces are dropped.
    Raises ConfigError when no surface crosses the observed voxels.
    """
    from skimage.measure import marching_cubes

    trimesh = _trimesh()
    mask = volume.weight >= min_weight
    if not mask.any() or volume.tsdf[mask].min() >= 0 or volume.tsdf[mask].max() <= 0:
        raise ConfigError("no surface found in the fused depth (too few views saw the scene); try more cameras "
                          "or a lower --resolution")
    # 'ascent': the inside (negative TSDF) is below the level, so the normals point into free space (the viewer)
    verts, faces, _, _ = marching_cubes(volume.tsdf, level=0.0, mask=mask, allow_degenerate=False,
                                        gradient_direction="ascent")
    if len(faces) == 0:
        raise ConfigError("marching cubes found no surface in the fused depth")
    verts = volume.origin + verts * volume.voxel
    mesh = trimesh.Trimesh(verts, faces, process=True)
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:
        total = len(mesh.faces)
        keep = [p for p in parts if len(p.faces) >= max(min_component * total, 4)]
        if keep:
            mesh = trimesh.util.concatenate(keep)
    mesh.visual.vertex_colors = vertex_colors(volume, mesh.vertices)
    return mesh


def decimate(mesh, max_faces: int, volume: TSDFVolume | None = None):
    """At most ``max_faces`` triangles by quadric edge collapse (``fast-simplification``); vertex colours are
    looked up again in ``volume`` (or dropped without it). A mesh already small enough is returned as is."""
    if isinstance(max_faces, bool) or not isinstance(max_faces, (int, np.integer)) or max_faces < 1:
        raise ConfigError(f"the triangle budget must be a positive integer, got {max_faces!r}")
    if len(mesh.faces) <= max_faces:
        return mesh
    try:
        import fast_simplification
    except ImportError:
        raise ConfigError("decimation needs the 'fast-simplification' package: pip install fast-simplification") \
            from None
    trimesh = _trimesh()
    target = 1.0 - max_faces / len(mesh.faces)
    pts, faces = fast_simplification.simplify(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces),
                                              target_reduction=float(target))
    # the decimator may stop a little above the target: drop the smallest-area faces beyond the budget
    if len(faces) > max_faces:
        tri = pts[faces]
        area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        faces = faces[np.sort(np.argsort(-area)[:max_faces])]
    out = trimesh.Trimesh(pts.astype(np.float64), faces, process=True)
    if volume is not None:
        out.visual.vertex_colors = vertex_colors(volume, out.vertices)
    return out


def make_collider(mesh, max_faces: int = 150_000):
    """A physics collider: ≤ ``max_faces`` triangles, duplicate vertices merged, small holes filled, faces wound
    consistently; no colours. ``watertight`` tells whether it came out closed."""
    trimesh = _trimesh()
    col = decimate(trimesh.Trimesh(mesh.vertices, mesh.faces, process=True), max_faces)
    col = trimesh.Trimesh(col.vertices, col.faces, process=True)
    col.merge_vertices()
    col.update_faces(col.nondegenerate_faces())
    col.remove_unreferenced_vertices()
    if len(col.faces) < max_faces:
        trimesh.repair.fill_holes(col)
    if len(col.faces) > max_faces:  # filling may add a few triangles: keep the budget strict
        col = trimesh.Trimesh(col.vertices, col.faces[:max_faces], process=True)
    trimesh.repair.fix_winding(col)
    return col
