"""glTF (KHR_gaussian_splatting) and SOG: round trips within the tolerances docs/formats.md states, the
specification's layout, and one-line errors on bad files."""

from __future__ import annotations

import json
import struct
import zipfile

import numpy as np
import pytest
import torch

from lyra.errors import FormatError, LyraError
from lyra.gaussians.gaussians import quat_to_rotmat
from lyra.gaussians.io import load_gaussians, save_gaussians
from lyra.gaussians.io.gltf import read_glb_document, sh_attribute_names
from lyra.gaussians.io.sog import sog_order


def _angle_deg(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    R = quat_to_rotmat(q1).transpose(-1, -2) @ quat_to_rotmat(q2)
    c = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.acos(c))


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_glb_round_trip_is_exact(tmp_path, make_gaussians, degree):
    g = make_gaussians(700, degree, seed=degree)
    save_gaussians(g, tmp_path / "s.glb")
    h = load_gaussians(tmp_path / "s.glb")
    assert torch.equal(h.means, g.means) and torch.equal(h.scales, g.scales)
    assert torch.equal(h.opacities, g.opacities)
    torch.testing.assert_close(h.quats, g.quats, atol=2e-7, rtol=0)  # renormalised on reading
    torch.testing.assert_close(h.colors, g.colors, atol=1e-6, rtol=0)  # via f_dc in float32, as PLY
    if degree:
        assert torch.equal(h.sh_rest, g.sh_rest)
    else:
        assert h.sh_rest is None


def test_glb_follows_the_specification(tmp_path, make_gaussians):
    g = make_gaussians(50, 2, seed=4)
    save_gaussians(g, tmp_path / "s.glb")
    doc, blob = read_glb_document(tmp_path / "s.glb")
    assert "KHR_gaussian_splatting" in doc["extensionsUsed"]
    prim = doc["meshes"][0]["primitives"][0]
    assert prim["mode"] == 0
    assert prim["extensions"]["KHR_gaussian_splatting"]["kernel"] == "ellipse"
    assert prim["extensions"]["KHR_gaussian_splatting"]["colorSpace"] == "srgb_rec709_display"
    attrs = prim["attributes"]
    for name in ["POSITION", "KHR_gaussian_splatting:ROTATION", "KHR_gaussian_splatting:SCALE",
                 "KHR_gaussian_splatting:OPACITY", "KHR_gaussian_splatting:SH_DEGREE_0_COEF_0"] + sh_attribute_names(2):
        assert name in attrs
    assert len(sh_attribute_names(2)) == 8 and "KHR_gaussian_splatting:SH_DEGREE_2_COEF_4" in attrs

    def column(name, width):
        acc = doc["accessors"][attrs[name]]
        view = doc["bufferViews"][acc["bufferView"]]
        return np.frombuffer(blob, np.float32, acc["count"] * width, view["byteOffset"]).reshape(-1, width)

    # glTF axes: y and z negated; rotation xyzw; linear scale; post-sigmoid opacity; f_dc
    np.testing.assert_array_equal(column("POSITION", 3), g.means.numpy() * np.float32([1, -1, -1]))
    np.testing.assert_array_equal(column("KHR_gaussian_splatting:ROTATION", 4),
                                  g.quats.numpy()[:, [1, 2, 3, 0]] * np.float32([1, -1, -1, 1]))
    np.testing.assert_array_equal(column("KHR_gaussian_splatting:SCALE", 3), g.scales.numpy())
    np.testing.assert_array_equal(column("KHR_gaussian_splatting:OPACITY", 1)[:, 0], g.opacities.numpy())
    np.testing.assert_allclose(column("KHR_gaussian_splatting:SH_DEGREE_0_COEF_0", 3) * 0.28209479177387814 + 0.5,
                               g.colors.numpy(), atol=1e-6)
    acc = doc["accessors"][attrs["POSITION"]]
    assert acc["min"] == pytest.approx(column("POSITION", 3).min(0).tolist())
    # the band flips are the rotation's: colour seen along d in lyra == colour along (x, -y, -z) in glTF
    from lyra.gaussians.io.spz import sh_basis

    d = np.random.default_rng(0).normal(size=(20, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    sh_gltf = np.stack([column(a, 3) for a in sh_attribute_names(2)], 1)
    c_lyra = np.einsum("mk,nkc->nmc", sh_basis(d, 2), g.sh_rest.numpy())
    c_gltf = np.einsum("mk,nkc->nmc", sh_basis(d * [1, -1, -1], 2), sh_gltf)
    np.testing.assert_allclose(c_gltf, c_lyra, atol=1e-5)


def test_glb_node_transform_is_applied(tmp_path, make_gaussians):
    """A node that translates and rotates the splats (as other writers may) moves what we read."""
    g = make_gaussians(40, 1, seed=5)
    save_gaussians(g, tmp_path / "s.glb")
    doc, blob = read_glb_document(tmp_path / "s.glb")
    doc["nodes"][0]["translation"] = [1.0, 2.0, 3.0]
    doc["nodes"][0]["rotation"] = [0.0, 1.0, 0.0, 0.0]  # 180° about +Y (xyzw)
    from lyra.gaussians.io.gltf import write_glb_document

    write_glb_document(doc, blob, tmp_path / "moved.glb")
    h = load_gaussians(tmp_path / "moved.glb")
    # glTF: p' = R_y(180) p + t ; in lyra's axes (y, z negated): x' = -x + 1, y' = y - 2, z' = -z... see below
    gl = g.means.numpy() * [1, -1, -1]
    gl2 = gl * [-1, 1, -1] + [1, 2, 3]
    np.testing.assert_allclose(h.means.numpy(), gl2 * [1, -1, -1], atol=1e-5)
    assert torch.all(_angle_deg(h.quats, torch.from_numpy(np.ascontiguousarray(
        (torch.tensor([0.0, 0.0, 1.0, 0.0])[None].expand(40, 4)).numpy())).float()) > -1)  # finite, unit
    torch.testing.assert_close(h.quats.norm(dim=-1), torch.ones(40))


@pytest.mark.parametrize("degree", [0, 3])
def test_sog_round_trip_within_quantisation(tmp_path, make_gaussians, degree):
    n = 900  # fewer than the SH palette: palette entries are the Gaussians' own SH (up to the codebook)
    g = make_gaussians(n, degree, seed=10 + degree)
    save_gaussians(g, tmp_path / "s.sog")
    h = load_gaussians(tmp_path / "s.sog")
    assert len(h) == n and h.sh_degree == degree
    ref = g[torch.from_numpy(sog_order(g))]
    with zipfile.ZipFile(tmp_path / "s.sog") as z:
        meta = json.loads(z.read("meta.json"))
    assert meta["version"] == 2 and meta["count"] == n
    # means: 16 bits of sign(x)·log(|x|+1) per axis
    span = np.asarray(meta["means"]["maxs"]) - np.asarray(meta["means"]["mins"])
    tol = (np.abs(ref.means.numpy()) + 1) * span / 65535 * 0.51 * np.exp(span / 65535)
    assert np.all(np.abs(h.means.numpy() - ref.means.numpy()) <= tol + 1e-6)
    assert float(_angle_deg(h.quats, ref.quats).max()) < 1.0
    assert float((h.opacities - ref.opacities).abs().max()) <= 0.5 / 255 + 1e-6
    # codebook fields: each value decodes to its nearest codebook entry

    def nearest(values: np.ndarray, code: np.ndarray) -> np.ndarray:
        return code[np.abs(values.reshape(-1, 1) - code[None]).argmin(1)].reshape(values.shape)

    s_code = np.asarray(meta["scales"]["codebook"], np.float32)
    np.testing.assert_allclose(np.log(h.scales.numpy()), nearest(np.log(ref.scales.numpy()), s_code), atol=1e-5)
    c_code = np.asarray(meta["sh0"]["codebook"], np.float32)
    dc = (ref.colors.numpy().astype(np.float64) - 0.5) / 0.28209479177387814
    np.testing.assert_allclose(h.colors.numpy(), nearest(dc, c_code) * 0.28209479177387814 + 0.5, atol=1e-5)
    if degree:
        assert meta["shN"]["count"] == n and meta["shN"]["bands"] == 3
        n_code = np.asarray(meta["shN"]["codebook"], np.float32)
        np.testing.assert_allclose(h.sh_rest.numpy(), nearest(ref.sh_rest.numpy(), n_code), atol=1e-5)


def test_sog_round_trip_through_glb_and_spz(tmp_path, make_gaussians):
    """ply → glb → sog → spz → ply: every lossy step stays within its own format's bound."""
    g = make_gaussians(300, 0, seed=3, extent=2.0)
    save_gaussians(g, tmp_path / "a.ply")
    save_gaussians(load_gaussians(tmp_path / "a.ply"), tmp_path / "b.glb")
    save_gaussians(load_gaussians(tmp_path / "b.glb"), tmp_path / "c.sog")
    save_gaussians(load_gaussians(tmp_path / "c.sog"), tmp_path / "d.spz")
    save_gaussians(load_gaussians(tmp_path / "d.spz"), tmp_path / "e.ply")
    out = load_gaussians(tmp_path / "e.ply")
    ref = g[torch.from_numpy(sog_order(g))]
    assert float((out.means - ref.means).abs().max()) < 2e-3  # SOG 16-bit log + SPZ 12 fractional bits
    assert float(_angle_deg(out.quats, ref.quats).max()) < 2.0
    assert float((out.opacities - ref.opacities).abs().max()) < 0.01


def test_corrupt_glb_and_sog_are_one_line_errors(tmp_path, make_gaussians):
    g = make_gaussians(20)
    save_gaussians(g, tmp_path / "s.glb")
    data = (tmp_path / "s.glb").read_bytes()
    (tmp_path / "trunc.glb").write_bytes(data[: len(data) // 2])
    (tmp_path / "magic.glb").write_bytes(b"xxxx" + data[4:])
    (tmp_path / "zip.sog").write_bytes(b"PK not really")
    with zipfile.ZipFile(tmp_path / "nometa.sog", "w") as z:
        z.writestr("x.txt", "hi")
    with zipfile.ZipFile(tmp_path / "v9.sog", "w") as z:
        z.writestr("meta.json", json.dumps({"version": 9}))
    for name in ("trunc.glb", "magic.glb", "zip.sog", "nometa.sog", "v9.sog"):
        with pytest.raises(FormatError) as e:
            load_gaussians(tmp_path / name)
        assert "\n" not in str(e.value)
    # a mesh glb (no splat primitive) is named as such
    doc, blob = read_glb_document(tmp_path / "s.glb")
    doc["meshes"][0]["primitives"][0].pop("extensions")
    from lyra.gaussians.io.gltf import write_glb_document

    write_glb_document(doc, blob, tmp_path / "mesh.glb")
    with pytest.raises(FormatError, match="no mesh primitive uses KHR_gaussian_splatting"):
        load_gaussians(tmp_path / "mesh.glb")


def test_glb_header_length_lie_is_an_error(tmp_path, make_gaussians):
    save_gaussians(make_gaussians(10), tmp_path / "s.glb")
    data = bytearray((tmp_path / "s.glb").read_bytes())
    struct.pack_into("<I", data, 8, len(data) + 100)
    (tmp_path / "lie.glb").write_bytes(bytes(data))
    with pytest.raises(FormatError, match="truncated"):
        load_gaussians(tmp_path / "lie.glb")


def test_empty_scene_to_glb_or_sog_leaves_no_file(tmp_path):
    from lyra.gaussians import Gaussians

    for ext in (".glb", ".sog"):
        with pytest.raises(LyraError):
            save_gaussians(Gaussians.empty(), tmp_path / f"e{ext}")
        assert list(tmp_path.iterdir()) == []
