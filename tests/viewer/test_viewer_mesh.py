"""lyra view --mesh: the mesh file comes back into lyra's world and is shown over the splats with toggles."""

from __future__ import annotations

import importlib.util
import socket

import numpy as np
import pytest
import torch

from lyra.errors import LyraError
from lyra.gaussians import Gaussians

trimesh = pytest.importorskip("trimesh")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _box():
    box = trimesh.creation.box(extents=(1.0, 0.5, 0.25))
    box.apply_translation([0.3, 0.2, 3.0])  # in front of the OpenCV camera
    box.visual.vertex_colors = np.tile([10, 200, 30, 255], (len(box.vertices), 1)).astype(np.uint8)
    return box


@pytest.mark.parametrize("ext", [".glb", ".obj", ".ply", ".usda"])
def test_load_mesh_file_returns_lyra_world(tmp_path, ext):
    if ext == ".usda":
        pytest.importorskip("pxr")
    from lyra.mesh.export import write_mesh
    from lyra.viewer.mesh_layer import load_mesh_file

    box = _box()
    write_mesh(box, tmp_path / f"b{ext}")
    back = load_mesh_file(tmp_path / f"b{ext}")
    np.testing.assert_allclose(np.sort(back.vertices, 0), np.sort(box.vertices, 0), atol=1e-5)


def test_load_mesh_file_errors(tmp_path):
    from lyra.viewer.mesh_layer import load_mesh_file

    (tmp_path / "x.fbx").write_bytes(b"x")
    (tmp_path / "bad.glb").write_bytes(b"not a glb at all")
    for name in ("x.fbx", "bad.glb", "missing.obj"):
        with pytest.raises(LyraError) as e:
            load_mesh_file(tmp_path / name)
        assert "\n" not in str(e.value)


def test_viewer_toggles_mesh_and_splats():
    if importlib.util.find_spec("viser") is None:
        pytest.skip("viser is not installed")
    from lyra.viewer.app import serve
    from lyra.viewer.mesh_layer import add_mesh_layer

    n = 200
    g = Gaussians(torch.rand(n, 3) + torch.tensor([0.0, 0.0, 2.5]), torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4),
                  torch.full((n, 3), 0.05), torch.full((n,), 0.9), torch.rand(n, 3))
    viewer = serve(g, None, port=_free_port(), verbose=False)
    try:
        h = add_mesh_layer(viewer, _box())
        assert h["mesh"].visible and viewer.gui["Show mesh"] is h["Show mesh"]
        h["Show mesh"].value = False
        assert not h["mesh"].visible
        h["Show splats"].value = False
        assert not viewer.splats.visible
        h["Show mesh"].value = True
        assert h["mesh"].visible
    finally:
        viewer.stop()
