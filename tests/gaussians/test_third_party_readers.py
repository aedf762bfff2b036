"""Independent readers of what lyra writes (each test skips cleanly when its reader is not installed):

* ``@playcanvas/splat-transform`` (npm; CLI ``splat-transform``) reads our .ply, .spz (v3 and v4) and .sog and
  converts them; its .glb is read back by us;
* the Khronos ``gltf-validator`` (npm) finds no error in our splat .glb other than the attribute names of
  ``KHR_gaussian_splatting``, an extension it does not know yet (it says so: UNSUPPORTED_EXTENSION), and no error at
  all in our mesh .glb.

``.ci/run`` installs node/npm from Debian and both npm packages globally (``npm install -g``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from lyra.gaussians.io import load_gaussians, save_gaussians
from lyra.gaussians.io.sog import sog_order

SPLAT_TRANSFORM = shutil.which("splat-transform")
NODE = shutil.which("node")


def _npm_root() -> Path | None:
    npm = shutil.which("npm")
    if npm is None:
        return None
    try:
        return Path(subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None


def _validator() -> Path | None:
    root = _npm_root()
    return root / "gltf-validator" if root is not None and (root / "gltf-validator").is_dir() else None


needs_st = pytest.mark.skipif(SPLAT_TRANSFORM is None,
                              reason="splat-transform (npm @playcanvas/splat-transform) absent")

VALIDATE_JS = """
const v = require(process.argv[2]);
const data = new Uint8Array(require('fs').readFileSync(process.argv[3]));
v.validateBytes(data, {maxIssues: 1000}).then(r => console.log(JSON.stringify(r.issues)))
  .catch(e => { console.error(String(e)); process.exit(2); });
"""


def validate_glb(path: Path, tmp_path: Path) -> dict:
    validator = _validator()
    if NODE is None or validator is None:
        pytest.skip("node or the npm package gltf-validator is absent")
    script = tmp_path / "validate.cjs"
    script.write_text(VALIDATE_JS)
    out = subprocess.run([NODE, str(script), str(validator), str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def st_convert(src: Path, dst: Path) -> None:
    # -g cpu: no WebGPU adapter on CI machines (its SH k-means then runs on the CPU)
    out = subprocess.run([SPLAT_TRANSFORM, "-w", "-g", "cpu", str(src), str(dst)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert dst.is_file()


@needs_st
@pytest.mark.parametrize("ext,options", [(".ply", {}), (".spz", {"spz_version": 3}), (".spz", {"spz_version": 4}),
                                         (".sog", {})])
def test_splat_transform_reads_our_files(tmp_path, make_gaussians, ext, options):
    g = make_gaussians(1500, 3 if ext != ".sog" else 1, seed=7, extent=3.0)
    src = tmp_path / f"ours{ext}"
    save_gaussians(g, src, **options)
    st_convert(src, tmp_path / "theirs.ply")
    back = load_gaussians(tmp_path / "theirs.ply")
    ours = load_gaussians(src)  # what our own reader decodes from the same bytes
    assert len(back) == len(g)
    if ext == ".sog":
        assert back.sh_degree == 1
    # splat-transform converts to PLY space; SPZ stores RUB, SOG/PLY PLY space: all land in lyra's world
    order = np.lexsort(ours.means.numpy().T)
    order_b = np.lexsort(back.means.numpy().T)
    np.testing.assert_allclose(back.means.numpy()[order_b], ours.means.numpy()[order], atol=1e-5)
    np.testing.assert_allclose(back.opacities.numpy()[order_b], ours.opacities.numpy()[order], atol=1e-5)
    np.testing.assert_allclose(back.colors.numpy()[order_b], ours.colors.numpy()[order], atol=1e-5)
    dots = (back.quats[torch.from_numpy(order_b)] * ours.quats[torch.from_numpy(order)]).sum(-1).abs()
    assert float(dots.min()) > 1 - 1e-5


@needs_st
def test_we_read_splat_transform_glb_and_sog(tmp_path, make_gaussians):
    """splat-transform's .glb (KHR_gaussian_splatting, written in PlayCanvas' axes: PLY rotated 180° about z)
    and .sog come back into lyra's world: the glb a 180° turn about y of ours (glTF allows either facing)."""
    g = make_gaussians(1200, 1, seed=8, extent=3.0)
    save_gaussians(g, tmp_path / "a.ply")
    st_convert(tmp_path / "a.ply", tmp_path / "st.glb")
    h = load_gaussians(tmp_path / "st.glb")
    np.testing.assert_allclose(h.means.numpy(), g.means.numpy() * [-1, 1, -1], atol=1e-5)
    np.testing.assert_allclose(h.opacities.numpy(), g.opacities.numpy(), atol=1e-6)
    st_convert(tmp_path / "a.ply", tmp_path / "st.sog")
    s = load_gaussians(tmp_path / "st.sog")
    assert len(s) == len(g) and s.sh_degree == 1
    # positions within SOG's 16-bit quantisation, in some (Morton) order
    a, b = np.sort(s.means.numpy()[:, 0]), np.sort(g.means.numpy()[:, 0])
    np.testing.assert_allclose(a, b, atol=5e-3)


def test_gltf_validator_accepts_our_splat_glb(tmp_path, make_gaussians):
    g = make_gaussians(300, 3, seed=9)
    save_gaussians(g, tmp_path / "s.glb")
    report = validate_glb(tmp_path / "s.glb", tmp_path)
    errors = [m for m in report["messages"] if m["severity"] == 0]
    unknown = [m for m in errors if m["code"] == "MESH_PRIMITIVE_INVALID_ATTRIBUTE"
               and m["pointer"].split("/")[-1].startswith("KHR_gaussian_splatting:")]
    assert errors == unknown, errors  # nothing wrong but the extension's attribute names
    assert any(m["code"] == "UNSUPPORTED_EXTENSION" for m in report["messages"])
    assert report["numWarnings"] == 0


def test_gltf_validator_accepts_our_mesh_glb(tmp_path):
    import trimesh

    from lyra.mesh.export import write_mesh

    box = trimesh.creation.box(extents=(1, 2, 3))
    box.visual.vertex_colors = np.tile([200, 100, 50, 255], (len(box.vertices), 1)).astype(np.uint8)
    write_mesh(box, tmp_path / "m.glb")
    report = validate_glb(tmp_path / "m.glb", tmp_path)
    assert report["numErrors"] == 0, report["messages"]


def test_sog_order_is_a_permutation(make_gaussians):
    g = make_gaussians(200)
    o = sog_order(g)
    assert sorted(o.tolist()) == list(range(200))
