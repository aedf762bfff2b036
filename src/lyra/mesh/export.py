"""Writing meshes: ``.glb``, ``.obj``, ``.ply`` (trimesh) and ``.usd`` / ``.usda`` / ``.usdc`` (usd-core), atomically.

Axes: ``.glb`` and USD are written in glTF's convention (right-handed, +Y up; lyra's OpenCV world rotated 180°
about x, ``(x, y, z) → (x, −y, −z)``, the same rotation as the splat ``.glb`` and SPZ, so a mesh and splats exported
together line up); the USD stage says ``upAxis = "Y"``, ``metersPerUnit = 1``. ``.obj`` and ``.ply`` keep lyra's
OpenCV world, like the splat ``.ply`` it was made from.

A collider (``physics=True``) is written without colours; in USD it carries ``PhysicsCollisionAPI`` and
``PhysicsMeshCollisionAPI`` (approximation ``none``: the triangle mesh itself), as Isaac Sim expects.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lyra.errors import ConfigError, LyraError, OutputPathError

#: Mesh file extensions lyra writes.
MESH_EXTENSIONS = (".glb", ".obj", ".ply", ".usd", ".usda", ".usdc")
_GL_AXES = np.array([1.0, -1.0, -1.0])


def check_mesh_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path after checking its extension and folder (OutputPathError naming what to do)."""
    from lyra.fileio import check_output_dir

    p = Path(path)
    if p.suffix.lower() not in MESH_EXTENSIONS:
        raise OutputPathError(f"{p}: a mesh is written as {', '.join(MESH_EXTENSIONS)}, not "
                              f"'{p.suffix or 'no extension'}'")
    return check_output_dir(p)


def _write_usd(mesh, path: Path, physics: bool) -> None:
    try:
        from pxr import Gf, Usd, UsdGeom, UsdPhysics, Vt
    except ImportError:
        raise ConfigError("USD export needs the 'usd-core' package: pip install usd-core") from None
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/World")
    stage.SetDefaultPrim(root.GetPrim())
    m = UsdGeom.Mesh.Define(stage, "/World/collider" if physics else "/World/mesh")
    v = np.asarray(mesh.vertices, dtype=np.float64) * _GL_AXES
    f = np.asarray(mesh.faces, dtype=np.int32)
    m.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(v.astype(np.float32)))
    m.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(f), 3, dtype=np.int32)))
    m.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(f.reshape(-1)))
    m.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    m.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
    lo, hi = v.min(0), v.max(0)
    m.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))]))
    if physics:
        UsdPhysics.CollisionAPI.Apply(m.GetPrim())
        UsdPhysics.MeshCollisionAPI.Apply(m.GetPrim()).CreateApproximationAttr(UsdPhysics.Tokens.none)
    else:
        cols = np.asarray(mesh.visual.vertex_colors, dtype=np.float32)[:, :3] / 255.0
        pv = m.CreateDisplayColorPrimvar(UsdGeom.Tokens.vertex)
        pv.Set(Vt.Vec3fArray.FromNumpy(cols))
    stage.GetRootLayer().Save()


def probe_writable(path: str | os.PathLike) -> None:
    """Create and delete a temporary beside ``path``: OutputPathError now, before minutes of meshing, when its
    folder cannot take a file (read-only, a pseudo file system, no space for an inode)."""
    from lyra.fileio import discard_temp, make_temp_file

    try:
        discard_temp(make_temp_file(path))
    except OSError as e:
        raise OutputPathError(f"{path}: cannot write there ({e.strerror or e})") from None


def _write_to(mesh, tmp: Path, ext: str, physics: bool) -> None:
    import trimesh

    if ext in (".usd", ".usda", ".usdc"):
        _write_usd(mesh, tmp, physics)
        return
    out = trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), process=False)
    if not physics and mesh.visual.kind == "vertex":
        out.visual.vertex_colors = np.asarray(mesh.visual.vertex_colors)
    if ext == ".glb":
        out.vertices = np.asarray(out.vertices) * _GL_AXES
    data = out.export(file_type=ext[1:])
    tmp.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def write_meshes_atomically(items: list[tuple[object, str | os.PathLike, bool]]) -> list[Path]:
    """Write several meshes ``(mesh, path, physics)`` all or none: each goes to a temporary beside its path, and
    only when every one is written are they renamed into place; on any failure every temporary is deleted and
    no file is left (a collider that cannot be written does not leave the visual mesh behind).

    Raises OutputPathError (bad extension, missing/unwritable folder) or ConfigError (an empty mesh)."""
    from lyra.fileio import discard_temp, make_temp_file

    paths = [check_mesh_path(p) for _, p, _ in items]
    for (mesh, _, _), p in zip(items, paths, strict=True):
        if len(mesh.faces) == 0:
            raise ConfigError(f"{p}: the mesh has no triangles; nothing to write")
    temps: list[Path] = []
    current = paths[0]
    try:
        for (mesh, _, physics), p in zip(items, paths, strict=True):
            current = p
            temps.append(make_temp_file(p))
            _write_to(mesh, temps[-1], p.suffix.lower(), physics)
        mask = os.umask(0)
        os.umask(mask)
        for tmp, p in zip(temps, paths, strict=True):
            current = p
            os.chmod(tmp, 0o666 & ~mask)
            os.replace(tmp, p)
    except BaseException as e:
        for tmp in temps:
            discard_temp(tmp)
        if isinstance(e, OSError) and not isinstance(e, LyraError):
            raise OutputPathError(f"{current}: cannot write the mesh ({e.strerror or e})") from e
        raise
    for tmp in temps:
        discard_temp(tmp)  # renamed: only forgets it
    return paths


def write_mesh(mesh, path: str | os.PathLike, physics: bool = False) -> Path:
    """Write ``mesh`` (``trimesh.Trimesh`` in lyra's OpenCV world) to ``path`` by extension, atomically.

    Raises OutputPathError (bad extension, missing/unwritable folder) or ConfigError (an empty mesh).
    """
    return write_meshes_atomically([(mesh, path, physics)])[0]
