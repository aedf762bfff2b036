"""INRIA 3DGS PLY: exact layout, float32 round trips for SH degrees 0-3, lenient reading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from lyra.errors import FormatError
from lyra.gaussians import SH_C0, Gaussians
from lyra.gaussians.io import load_gaussians, save_gaussians
from lyra.gaussians.io.ply import property_names

ULP = 2.0 ** -23


def _header(path) -> str:
    data = path.read_bytes()
    return data[: data.index(b"end_header\n") + len(b"end_header\n")].decode("ascii")


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip_is_float32_exact(tmp_path, make_gaussians, degree):
    g = make_gaussians(300, sh_degree=degree, seed=degree)
    path = save_gaussians(g, tmp_path / "scene.ply")
    h = load_gaussians(path)
    assert h.sh_degree == degree
    assert torch.equal(h.means, g.means) and torch.equal(h.quats, g.quats)
    if degree:
        assert torch.equal(h.sh_rest, g.sh_rest)
    # stored as log / logit / f_dc float32: error from rounding those values only
    log_s = g.scales.double().log().abs()
    assert ((h.scales.double() / g.scales.double() - 1).abs() <= (log_s + 2) * ULP).all()
    o = g.opacities.double()
    logit = (o / (1 - o)).log().abs()
    assert ((h.opacities.double() - o).abs() <= (o * (1 - o) * (logit + 1) + o) * ULP).all()
    torch.testing.assert_close(h.colors, g.colors, atol=2 * ULP, rtol=0)


def test_header_is_inria_layout(tmp_path, make_gaussians):
    g = make_gaussians(4, sh_degree=3)
    path = save_gaussians(g, tmp_path / "s.ply")
    header = _header(path)
    props = [line.split()[2] for line in header.splitlines() if line.startswith("property")]
    assert header.startswith("ply\nformat binary_little_endian 1.0\nelement vertex 4\n")
    assert all(line.split()[1] == "float" for line in header.splitlines() if line.startswith("property"))
    expected = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                + [f"f_rest_{i}" for i in range(45)]
                + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert props == expected == property_names(3)
    assert path.stat().st_size == len(header) + 4 * 62 * 4  # binary float32 records, nothing else


def test_stored_values_closed_form(tmp_path):
    """f_dc, logit opacity, log scale, wxyz rotation and channel-major f_rest as INRIA writes them."""
    k = 3
    sh = torch.arange(k * 3, dtype=torch.float32).reshape(1, k, 3) / 10  # sh[k, c] = (3k + c) / 10
    g = Gaussians(torch.tensor([[1.0, -2.0, 3.0]]), torch.tensor([[0.5, 0.5, -0.5, 0.5]]),
                  torch.tensor([[0.5, 1.0, 2.0]]), torch.tensor([0.25]), torch.tensor([[0.5, 1.0, 0.0]]), sh)
    path = save_gaussians(g, tmp_path / "one.ply")
    v = PlyData.read(str(path))["vertex"].data[0]
    assert (v["x"], v["y"], v["z"]) == (1.0, -2.0, 3.0) and (v["nx"], v["ny"], v["nz"]) == (0, 0, 0)
    assert v["f_dc_0"] == 0.0 and v["f_dc_1"] == pytest.approx(0.5 / SH_C0, rel=1e-7)
    assert v["f_dc_2"] == pytest.approx(-0.5 / SH_C0, rel=1e-7)
    assert v["opacity"] == pytest.approx(np.log(0.25 / 0.75), rel=1e-7)
    assert [v[f"scale_{i}"] for i in range(3)] == pytest.approx(np.log([0.5, 1.0, 2.0]).tolist(), abs=1e-7)
    assert [v[f"rot_{i}"] for i in range(4)] == [0.5, 0.5, -0.5, 0.5]
    for c in range(3):  # channel-major: all R coefficients, then G, then B
        for j in range(k):
            assert v[f"f_rest_{c * k + j}"] == pytest.approx((3 * j + c) / 10)


def test_saturated_opacities_stay_finite(tmp_path):
    g = Gaussians(torch.zeros(2, 3), torch.tensor([[1.0, 0, 0, 0]] * 2), torch.ones(2, 3),
                  torch.tensor([0.0, 1.0]), torch.zeros(2, 3))
    path = save_gaussians(g, tmp_path / "sat.ply")
    v = PlyData.read(str(path))["vertex"].data
    assert np.isfinite(v["opacity"]).all() and v["opacity"][0] < -16 and v["opacity"][1] > 16
    torch.testing.assert_close(load_gaussians(path).opacities, torch.tensor([0.0, 1.0]), atol=1e-7, rtol=0)


def test_ascii_write_round_trip(tmp_path, make_gaussians):
    g = make_gaussians(20, sh_degree=1)
    path = save_gaussians(g, tmp_path / "a.ply", ply_ascii=True)
    assert _header(path).startswith("ply\nformat ascii 1.0\n")
    h = load_gaussians(path)
    torch.testing.assert_close(h.means, g.means, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(h.sh_rest, g.sh_rest, atol=1e-6, rtol=1e-6)


def test_reads_foreign_layouts(tmp_path, make_gaussians):
    """ASCII, double properties, no normals, extra properties in another order, unnormalised quats."""
    g = make_gaussians(30, sh_degree=2, seed=5)
    n, k = len(g), 8
    cols = {
        "red": np.full(n, 7, dtype="u1"),
        "rot_3": g.quats[:, 3].numpy() * 3, "rot_2": g.quats[:, 2].numpy() * 3,
        "rot_1": g.quats[:, 1].numpy() * 3, "rot_0": g.quats[:, 0].numpy() * 3,
        "x": g.means[:, 0].double().numpy(), "y": g.means[:, 1].double().numpy(), "z": g.means[:, 2].double().numpy(),
        "opacity": np.log(g.opacities.double().numpy() / (1 - g.opacities.double().numpy())),
    }
    for i in range(3):
        cols[f"scale_{i}"] = np.log(g.scales[:, i].double().numpy())
        cols[f"f_dc_{i}"] = (g.colors[:, i].double().numpy() - 0.5) / SH_C0
    f_rest = g.sh_rest.numpy().transpose(0, 2, 1).reshape(n, 3 * k)
    for i in range(3 * k):
        cols[f"f_rest_{i}"] = f_rest[:, i]
    arr = np.empty(n, dtype=[(name, v.dtype) for name, v in cols.items()])
    for name, v in cols.items():
        arr[name] = v
    for text in (True, False):
        path = tmp_path / f"foreign_{text}.ply"
        PlyData([PlyElement.describe(arr, "vertex")], text=text, byte_order=">").write(str(path))
        h = load_gaussians(path)
        assert h.sh_degree == 2
        torch.testing.assert_close(h.means, g.means, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(h.quats, g.quats, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(h.scales, g.scales, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(h.opacities, g.opacities, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(h.colors, g.colors, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(h.sh_rest, g.sh_rest, atol=1e-6, rtol=1e-6)


def _write_vertices(path, **cols):
    n = len(next(iter(cols.values())))
    arr = np.empty(n, dtype=[(name, "<f4") for name in cols])
    for name, v in cols.items():
        arr[name] = v
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(path))


def _base_cols(n=3):
    cols = {name: np.zeros(n, np.float32) for name in
            ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_1", "rot_2", "rot_3"]}
    cols["rot_0"] = np.ones(n, np.float32)
    return cols


def test_missing_property_is_named(tmp_path):
    cols = _base_cols()
    del cols["opacity"], cols["scale_2"]
    _write_vertices(tmp_path / "m.ply", **cols)
    with pytest.raises(FormatError, match="lacks opacity, scale_2"):
        load_gaussians(tmp_path / "m.ply")


def test_nan_property_is_named(tmp_path):
    cols = _base_cols(5)
    cols["scale_1"][3] = np.nan
    cols["y"][4] = np.inf
    _write_vertices(tmp_path / "nan.ply", **cols)
    with pytest.raises(FormatError, match=r"properties y, scale_1 of 2 vertex\(es\), first at vertex 3"):
        load_gaussians(tmp_path / "nan.ply")


def test_zero_rotation_and_bad_f_rest(tmp_path):
    cols = _base_cols()
    cols["rot_0"][1] = 0
    _write_vertices(tmp_path / "z.ply", **cols)
    with pytest.raises(FormatError, match="rot_0..rot_3 are all zero"):
        load_gaussians(tmp_path / "z.ply")
    cols = _base_cols()
    for i in range(6):  # 2 coefficients per channel is no SH degree
        cols[f"f_rest_{i}"] = np.zeros(3, np.float32)
    _write_vertices(tmp_path / "r.ply", **cols)
    with pytest.raises(FormatError, match="not \\(d\\+1\\)\\^2-1"):
        load_gaussians(tmp_path / "r.ply")
    cols = _base_cols()
    cols["f_rest_1"] = np.zeros(3, np.float32)
    _write_vertices(tmp_path / "gap.ply", **cols)
    with pytest.raises(FormatError, match="f_rest_0 .. f_rest_"):
        load_gaussians(tmp_path / "gap.ply")


def test_no_vertex_element(tmp_path):
    arr = np.zeros(2, dtype=[("a", "<f4")])
    PlyData([PlyElement.describe(arr, "face_thing")]).write(str(tmp_path / "nv.ply"))
    with pytest.raises(FormatError, match="no 'vertex' element"):
        load_gaussians(tmp_path / "nv.ply")
