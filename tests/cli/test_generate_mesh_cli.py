"""lyra generate IMAGE -o scene.ply --mesh mesh.glb: scene and mesh in one go; bad mesh options fail before any model
runs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lyra.cli import main

pytest.importorskip("skimage")
pytest.importorskip("fast_simplification")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)).save(path)
    return path


def test_generate_writes_mesh_and_collider(tmp_path, capsys, photo):
    """With the shipped tiny student (a random-weight one makes faint Gaussians with no opaque surface)."""
    import trimesh

    out = tmp_path / "out"
    out.mkdir()
    code = main(["generate", str(photo), "-o", str(out / "scene.ply"), "--mesh", str(out / "mesh.glb"),
                 "--mesh-collider", str(out / "col.obj"), "--mesh-collider-faces", "300", "--mesh-resolution", "32",
                 "--steps", "1", "--device", "cpu", "--no-progress", "--size", "48x80"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["col.obj", "mesh.glb", "scene.ply"]
    assert len(trimesh.load(out / "mesh.glb", force="mesh").faces) > 0
    assert 0 < len(trimesh.load(out / "col.obj", force="mesh").faces) <= 300


@pytest.mark.parametrize("extra, match", [
    (["--mesh", "MESH/m.fbx"], "not '.fbx'"),
    (["--mesh", "MESH/m.glb", "--mesh-max-faces", "0"], "--max-faces must be a positive"),
    (["--mesh", "MISSING/m.glb"], "does not exist"),
])
def test_generate_bad_mesh_options_fail_first(tmp_path, capsys, photo, extra, match):
    (tmp_path / "MESH").mkdir()
    extra = [a.replace("MESH/", f"{tmp_path}/MESH/").replace("MISSING/", f"{tmp_path}/MISSING/") for a in extra]
    code = main(["generate", str(photo), "-o", str(tmp_path / "scene.ply"), "--device", "cpu", *extra])
    _, err = capsys.readouterr()
    assert code != 0 and match in err and err.count("\n") == 1
    assert not (tmp_path / "scene.ply").exists() and list((tmp_path / "MESH").iterdir()) == []
