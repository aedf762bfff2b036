"""A mesh over the splats in ``lyra view``: load a mesh file into lyra's world and add it with a GUI toggle.

:func:`load_mesh_file` reads what ``lyra mesh`` writes: ``.glb`` and ``.usd``/``.usda``/``.usdc`` are in glTF's
axes (+Y up), so they are rotated back to lyra's OpenCV world (``(x, y, z) → (x, −y, −z)``); ``.obj`` and ``.ply``
are already in it. :func:`add_mesh_layer` adds the mesh to a running :class:`~lyra.viewer.app.Viewer` with two
checkboxes, "Show mesh" and "Show splats", so the mesh can be compared with the splats it came from.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lyra.errors import ConfigError, FormatError, InputFileError
from lyra.fileio import check_input_file

_GL_AXES = np.array([1.0, -1.0, -1.0])


def load_mesh_file(path: str | os.PathLike) -> Any:
    """A ``trimesh.Trimesh`` in lyra's OpenCV world from a mesh file (see module doc); one-line errors."""
    import trimesh

    p = check_input_file(path)
    ext = p.suffix.lower()
    if ext in (".usd", ".usda", ".usdc"):
        try:
            from pxr import Usd, UsdGeom
        except ImportError:
            raise ConfigError("reading USD needs the 'usd-core' package: pip install usd-core") from None
        stage = Usd.Stage.Open(str(p))
        if stage is None:
            raise FormatError(f"{p}: not a USD stage")
        for prim in stage.Traverse():
            if prim.IsA(UsdGeom.Mesh):
                m = UsdGeom.Mesh(prim)
                v = np.asarray(m.GetPointsAttr().Get(), dtype=np.float64)
                counts = np.asarray(m.GetFaceVertexCountsAttr().Get())
                if len(counts) and np.any(counts != 3):
                    raise FormatError(f"{p}: only triangle meshes are shown (as lyra mesh writes them)")
                f = np.asarray(m.GetFaceVertexIndicesAttr().Get()).reshape(-1, 3)
                mesh = trimesh.Trimesh(v * _GL_AXES, f, process=False)
                cols = m.GetDisplayColorAttr().Get()
                if cols is not None and len(cols) == len(v):
                    mesh.visual.vertex_colors = np.round(np.asarray(cols) * 255).astype(np.uint8)
                return mesh
        raise FormatError(f"{p}: the USD stage holds no mesh")
    if ext not in (".glb", ".obj", ".ply"):
        raise InputFileError(f"{p}: a mesh to show must be .glb, .obj, .ply or .usd/.usda/.usdc")
    try:
        mesh = trimesh.load(p, force="mesh", process=False)
    except Exception as e:  # trimesh raises many types on bad files
        raise FormatError(f"{p}: not a readable mesh ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise FormatError(f"{p}: holds no triangles")
    if ext == ".glb":
        mesh.vertices = np.asarray(mesh.vertices) * _GL_AXES
    return mesh


def add_mesh_layer(viewer: Any, mesh: Any, name: str = "/mesh", visible: bool = True) -> dict[str, Any]:
    """Add ``mesh`` (lyra's world) to ``viewer`` and the "Show mesh" / "Show splats" checkboxes; returns the
    handles ``{"mesh", "Show mesh", "Show splats"}`` (also stored in ``viewer.gui``)."""
    server = viewer.server
    handle = server.scene.add_mesh_trimesh(name, mesh, visible=visible)
    show_mesh = server.gui.add_checkbox("Show mesh", initial_value=visible)
    show_splats = server.gui.add_checkbox("Show splats", initial_value=True)

    @show_mesh.on_update
    def _(_event) -> None:
        handle.visible = bool(show_mesh.value)

    @show_splats.on_update
    def _(_event) -> None:
        if viewer.splats is not None:
            viewer.splats.visible = bool(show_splats.value)

    viewer.gui.update({"Show mesh": show_mesh, "Show splats": show_splats})
    return {"mesh": handle, "Show mesh": show_mesh, "Show splats": show_splats}


__all__ = ["add_mesh_layer", "load_mesh_file"]

