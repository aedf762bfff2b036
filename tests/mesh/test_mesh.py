"""lyra mesh: a known surface comes back where it is; exports reload in trimesh / usd-core; budgets hold; bad inputs
are one-line errors that leave no file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lyra.cli import main
from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.gaussians.io import save_gaussians
from lyra.mesh import build_meshes, default_cameras

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("skimage")
pytest.importorskip("fast_simplification")


def wall_and_floor(n: int = 6000, seed: int = 0) -> Gaussians:
    """A wall at z = 4 (x, y in [-2, 2]) and a floor at y = 1 (z in [2, 4]): dense, small, opaque Gaussians in the
    OpenCV world of a camera at the origin looking down +z. Colours: red wall, blue floor."""
    g = torch.Generator().manual_seed(seed)
    nw = n * 2 // 3
    wall = torch.stack([torch.rand(nw, generator=g) * 4 - 2, torch.rand(nw, generator=g) * 2 - 1,
                        torch.full((nw,), 4.0)], -1)
    nf = n - nw
    floor = torch.stack([torch.rand(nf, generator=g) * 4 - 2, torch.full((nf,), 1.0),
                         torch.rand(nf, generator=g) * 2 + 2], -1)
    means = torch.cat([wall, floor])
    colors = torch.cat([torch.tensor([[0.9, 0.1, 0.1]]).expand(nw, 3), torch.tensor([[0.1, 0.1, 0.9]]).expand(nf, 3)])
    return Gaussians(means=means, quats=torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4).contiguous(),
                     scales=torch.full((n, 3), 0.04), opacities=torch.full((n,), 0.95), colors=colors.contiguous())


@pytest.fixture(scope="module")
def built():
    torch.set_num_threads(1)
    g = wall_and_floor()
    return g, build_meshes(g, default_cameras(g), resolution=64, collider_faces=2000)


def test_mesh_lies_on_the_true_surfaces(built):
    g, res = built
    v = np.asarray(res.visual.vertices)
    d_wall = np.abs(v[:, 2] - 4.0)
    d_floor = np.abs(v[:, 1] - 1.0)
    dist = np.minimum(d_wall, d_floor)
    voxel = res.stats["voxel"]
    assert np.median(dist) < voxel  # on the surfaces, within a voxel
    assert np.mean(dist < 3 * voxel) > 0.95
    # both surfaces are there, and coloured as their Gaussians
    on_wall = (d_wall < voxel) & (v[:, 1] < 0.5)
    on_floor = (d_floor < voxel) & (v[:, 2] < 3.5)
    assert on_wall.sum() > 50 and on_floor.sum() > 50
    cols = np.asarray(res.visual.visual.vertex_colors)
    assert cols[on_wall, 0].mean() > 150 and cols[on_wall, 2].mean() < 100
    assert cols[on_floor, 2].mean() > 150 and cols[on_floor, 0].mean() < 100


def test_collider_respects_its_budget(built):
    _, res = built
    assert 0 < len(res.collider.faces) <= 2000
    assert res.stats["collider_faces"] == len(res.collider.faces)
    assert len(res.visual.faces) > len(res.collider.faces)


def test_rendered_depth_source_agrees(built):
    """The rasterizer's expected depth (the other depth source) finds the same wall."""
    g, _ = built
    cams = default_cameras(g, num_frames=3)
    res = build_meshes(g, cams, resolution=48, depth_source="render", max_width=48, view_stride=2)
    v = np.asarray(res.visual.vertices)
    dist = np.minimum(np.abs(v[:, 2] - 4.0), np.abs(v[:, 1] - 1.0))
    assert np.median(dist) < res.stats["voxel"]


@pytest.mark.parametrize("ext", [".glb", ".obj", ".ply", ".usda", ".usdc"])
def test_exports_reload(tmp_path, built, ext):
    from lyra.mesh.export import write_mesh

    _, res = built
    path = write_mesh(res.visual, tmp_path / f"m{ext}")
    if ext.startswith(".usd"):
        pxr = pytest.importorskip("pxr")
        stage = pxr.Usd.Stage.Open(str(path))
        assert pxr.UsdGeom.GetStageUpAxis(stage) == "Y"
        mesh = pxr.UsdGeom.Mesh(stage.GetPrimAtPath("/World/mesh"))
        pts = np.asarray(mesh.GetPointsAttr().Get())
        assert len(pts) == len(res.visual.vertices)
        np.testing.assert_allclose(pts, np.asarray(res.visual.vertices) * [1, -1, -1], atol=1e-4)
        assert len(mesh.GetFaceVertexIndicesAttr().Get()) == 3 * len(res.visual.faces)
        return
    back = trimesh.load(path, force="mesh", process=False)
    assert len(back.faces) == len(res.visual.faces)
    flip = [1, -1, -1] if ext == ".glb" else [1, 1, 1]  # glb in glTF axes, obj/ply in lyra's
    np.testing.assert_allclose(np.sort(np.asarray(back.vertices)[:, 2]),
                               np.sort(np.asarray(res.visual.vertices)[:, 2] * flip[2]), atol=1e-4)
    if ext in (".glb", ".ply"):
        assert back.visual.kind == "vertex"


def test_usd_collider_has_physics(tmp_path, built):
    pxr = pytest.importorskip("pxr")
    from lyra.mesh.export import write_mesh

    _, res = built
    write_mesh(res.collider, tmp_path / "c.usda", physics=True)
    stage = pxr.Usd.Stage.Open(str(tmp_path / "c.usda"))
    prim = stage.GetPrimAtPath("/World/collider")
    assert prim.HasAPI(pxr.UsdPhysics.CollisionAPI) and prim.HasAPI(pxr.UsdPhysics.MeshCollisionAPI)


def test_budget_and_empty_scene_errors():
    g = wall_and_floor(300)
    with pytest.raises(ConfigError, match="positive"):
        build_meshes(g, default_cameras(g, num_frames=2), collider_faces=0)
    with pytest.raises(ConfigError, match="no Gaussians"):
        build_meshes(Gaussians.empty(), default_cameras(g, num_frames=2))


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_mesh_writes_both_files(tmp_path, capsys):
    g = wall_and_floor(3000)
    save_gaussians(g, tmp_path / "s.ply")
    code, out, err = run_cli(capsys, "mesh", str(tmp_path / "s.ply"), "-o", str(tmp_path / "m.glb"), "--collider",
                             str(tmp_path / "c.obj"), "--collider-faces", "500", "--resolution", "48")
    assert code == 0, err
    assert (tmp_path / "m.glb").is_file() and (tmp_path / "c.obj").is_file()
    assert len(trimesh.load(tmp_path / "c.obj", force="mesh").faces) <= 500
    assert "wrote" in out


@pytest.mark.parametrize("case", ["empty", "budget0", "unwritable", "badext", "nothing"])
def test_cli_mesh_bad_inputs_one_line_no_file(tmp_path, capsys, case):
    g = wall_and_floor(300)
    scene = tmp_path / "s.ply"
    save_gaussians(Gaussians.empty() if case == "empty" else g, scene)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "m.glb"
    args = ["mesh", str(scene), "-o", str(target), "--resolution", "32"]
    if case == "budget0":
        args += ["--collider", str(out_dir / "c.glb"), "--collider-faces", "0"]
    if case == "unwritable":
        args[3] = str(tmp_path / "missing" / "m.glb")
    if case == "badext":
        args[3] = str(out_dir / "m.fbx")
    if case == "nothing":
        args = ["mesh", str(scene)]
    code, _, err = run_cli(capsys, *args)
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("lyra mesh: error:")
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("case", ["collider_under_a_file", "max_faces0", "disk_full_at_collider"])
def test_cli_mesh_two_outputs_all_or_nothing(tmp_path, capsys, monkeypatch, case):
    """A collider that cannot be written leaves no visual mesh behind (and no temporary): checked up front where the
    folder refuses files, and by writing both to temporaries before renaming either when the write itself fails."""
    import lyra.mesh.export as export

    g = wall_and_floor(300)
    scene = tmp_path / "s.ply"
    save_gaussians(g, scene)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "blocker").write_text("a file, not a folder")
    args = ["mesh", str(scene), "-o", str(out_dir / "m.glb"), "--collider", str(out_dir / "c.usda"),
            "--resolution", "32"]
    if case == "collider_under_a_file":
        args[5] = str(out_dir / "blocker" / "c.usda")
    if case == "max_faces0":
        args += ["--max-faces", "0"]
    if case == "disk_full_at_collider":
        def full(*a, **k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(export, "_write_usd", full)
    code, _, err = run_cli(capsys, *args)
    assert code != 0 and err.count("\n") == 1 and err.startswith("lyra mesh: error:"), err
    assert {"collider_under_a_file": "blocker", "max_faces0": "--max-faces",
            "disk_full_at_collider": "No space left"}[case] in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["blocker"]  # neither mesh, no temporary
