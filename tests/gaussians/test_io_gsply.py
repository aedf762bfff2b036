"""Cross-check with the independent implementation ``gsply``: it reads what we write, we read what it writes.

gsply stores and returns SPZ arrays as they are (no coordinate conversion) and writes SPZ versions 3 and 4
only; our version-2 files are checked by gsply's reader. gsply's arrays are in PLY activations: log
scales, logit opacities, SH DC ``sh0`` and ``shN`` [N, K, 3].
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lyra.gaussians import SH_C0
from lyra.gaussians.io import load_gaussians, save_gaussians

gsply = pytest.importorskip("gsply")

RDF_TO_RUB = np.array([1.0, -1.0, -1.0], dtype=np.float32)
FLIP_Q = np.array([1.0, 1.0, -1.0, -1.0], dtype=np.float32)  # wxyz, conjugation by 180° about x
FLIP_SH = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], dtype=np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def _to_gsdata(g):
    o = g.opacities.double().numpy()
    return gsply.GSData.from_arrays(
        means=g.means.numpy().copy(), scales=np.log(g.scales.double().numpy()).astype(np.float32),
        quats=g.quats.numpy().copy(), opacities=np.log(o / (1 - o)).astype(np.float32),
        sh0=((g.colors.double().numpy() - 0.5) / SH_C0).astype(np.float32),
        shN=None if g.sh_rest is None else g.sh_rest.numpy().copy(), format="ply")


def _assert_same_decode(ours, d, flip=False):
    """Our Gaussians vs gsply's arrays decoded from the same bytes (optionally RUB-flipped)."""
    means, quats = d.means, d.quats
    sh = None if d.shN is None or d.shN.size == 0 or ours.sh_rest is None else d.shN
    if flip:
        means, quats = means * RDF_TO_RUB, quats * FLIP_Q
        sh = None if sh is None else sh * FLIP_SH[: sh.shape[1], None]
    np.testing.assert_array_equal(ours.means.numpy(), means)
    quats = quats / np.linalg.norm(quats, axis=-1, keepdims=True)  # v2 with |xyz| > 1: gsply leaves it unnormalised
    q = quats * np.sign((quats * ours.quats.numpy()).sum(-1, keepdims=True))
    # 1e-5: gsply derives v2's w = sqrt(1 - |xyz|^2) in float32, which loses digits when w is small
    np.testing.assert_allclose(ours.quats.numpy(), q, atol=1e-5)
    np.testing.assert_allclose(np.log(ours.scales.numpy()), d.scales, atol=2e-6)
    np.testing.assert_allclose(ours.opacities.numpy(), _sigmoid(d.opacities), atol=2e-6)
    np.testing.assert_allclose(ours.colors.numpy(), d.sh0 * SH_C0 + 0.5, atol=2e-6)
    if ours.sh_rest is not None:
        np.testing.assert_array_equal(ours.sh_rest.numpy(), sh)


# ----------------------------------------------------------------------------- PLY
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_gsply_reads_our_ply(tmp_path, make_gaussians, degree):
    g = make_gaussians(200, sh_degree=degree, seed=degree)
    d = gsply.plyread(save_gaussians(g, tmp_path / "ours.ply"))
    np.testing.assert_array_equal(d.means, g.means.numpy())
    np.testing.assert_array_equal(d.quats, g.quats.numpy())
    np.testing.assert_allclose(np.exp(d.scales), g.scales.numpy(), rtol=2e-6)
    np.testing.assert_allclose(_sigmoid(d.opacities), g.opacities.numpy(), atol=1e-7)
    np.testing.assert_allclose(d.sh0 * SH_C0 + 0.5, g.colors.numpy(), atol=1e-7)
    if degree:
        np.testing.assert_array_equal(d.shN, g.sh_rest.numpy())


@pytest.mark.parametrize("degree", [0, 3])
def test_we_read_gsply_ply(tmp_path, make_gaussians, degree):
    g = make_gaussians(200, sh_degree=degree, seed=10 + degree)
    path = tmp_path / "theirs.ply"
    gsply.plywrite(path, _to_gsdata(g))
    assert b"property float nx" not in path.read_bytes()[:2000]  # gsply writes no normals
    h = load_gaussians(path)
    torch.testing.assert_close(h.means, g.means, atol=0, rtol=0)
    torch.testing.assert_close(h.quats, g.quats, atol=0, rtol=0)
    torch.testing.assert_close(h.scales, g.scales, atol=0, rtol=2e-6)
    torch.testing.assert_close(h.opacities, g.opacities, atol=1e-7, rtol=0)
    torch.testing.assert_close(h.colors, g.colors, atol=1e-7, rtol=0)
    if degree:
        torch.testing.assert_close(h.sh_rest, g.sh_rest, atol=0, rtol=0)


# ----------------------------------------------------------------------------- SPZ
@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("degree", [0, 2, 3])
def test_gsply_reads_our_spz(tmp_path, make_gaussians, version, degree):
    g = make_gaussians(300, sh_degree=degree, seed=version + degree)
    # the specification's RUB (default): gsply sees the y/z-flipped arrays
    rub = save_gaussians(g, tmp_path / "rub.spz", spz_version=version)
    _assert_same_decode(load_gaussians(rub), gsply.read_spz(rub), flip=True)
    # unconverted (RDF): gsply sees our values
    raw = save_gaussians(g, tmp_path / "raw.spz", spz_version=version, spz_coordinate_system="RDF")
    d = gsply.read_spz(raw)
    _assert_same_decode(load_gaussians(raw, spz_coordinate_system="RDF"), d)
    np.testing.assert_allclose(d.means, g.means.numpy(), atol=2.0 ** -13 + 1e-6)


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("degree", [0, 1, 3])
def test_we_read_gsply_spz(tmp_path, make_gaussians, version, degree):
    g = make_gaussians(300, sh_degree=degree, seed=20 + version + degree)
    path = tmp_path / "theirs.spz"
    gsply.write_spz(path, _to_gsdata(g), version=version)
    d = gsply.read_spz(path)
    raw = load_gaussians(path, spz_coordinate_system="RDF")
    _assert_same_decode(raw, d)
    _assert_same_decode(load_gaussians(path), d, flip=True)  # default: the file is taken as RUB
    # and within SPZ's quantisation of the original (gsply keeps all 8 SH bits)
    assert (raw.means - g.means).abs().max() <= 2.0 ** -13 + 1e-6
    assert (raw.opacities - g.opacities).abs().max() <= 0.5 / 255 + 1e-6
    assert (raw.colors - g.colors).abs().max() <= 0.5 * SH_C0 / (0.15 * 255) + 1e-6
    if degree:
        assert (raw.sh_rest - g.sh_rest).abs().max() <= 0.5 / 128 + 1e-6
