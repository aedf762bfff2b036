"""The Gaussians container: pruning, concatenation, transforms, validation, quaternion helpers."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.errors import ConfigError, FormatError
from lyra.gaussians import (
    SH_C0,
    Gaussians,
    quat_multiply,
    quat_to_rotmat,
    rgb_to_sh_dc,
    rotmat_to_quat,
    sh_dc_to_rgb,
)


def _rot_z(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# ----------------------------------------------------------------------------- basics
def test_sh_c0_and_dc_round_trip():
    assert SH_C0 == pytest.approx(1 / (2 * math.sqrt(math.pi)), rel=1e-15)
    rgb = torch.linspace(0, 1, 11)
    torch.testing.assert_close(sh_dc_to_rgb(rgb_to_sh_dc(rgb)), rgb, atol=1e-6, rtol=0)
    assert float(rgb_to_sh_dc(torch.tensor(0.5))) == 0.0


def test_len_indexing_empty_degree(make_gaussians):
    g = make_gaussians(10, sh_degree=2)
    assert len(g) == 10 and g.sh_degree == 2
    sub = g[g.opacities > 0.5]
    assert len(sub) == int((g.opacities > 0.5).sum())
    torch.testing.assert_close(sub.means, g.means[g.opacities > 0.5])
    e = Gaussians.empty(sh_degree=3)
    assert len(e) == 0 and e.sh_degree == 3 and e.sh_rest.shape == (0, 15, 3)
    assert Gaussians.empty().sh_rest is None
    lo, hi = g.bounds()
    torch.testing.assert_close(lo, g.means.min(0).values)
    torch.testing.assert_close(hi, g.means.max(0).values)


# ----------------------------------------------------------------------------- prune / cat
def test_prune_keeps_top_k_by_opacity_in_order(make_gaussians):
    g = make_gaussians(100, seed=3)
    g.opacities = torch.randperm(100, generator=torch.Generator().manual_seed(1)).float() / 100 + 0.005
    kept = g.prune(0.2)
    assert len(kept) == 20
    expected = torch.topk(g.opacities, 20).indices.sort().values
    torch.testing.assert_close(kept.means, g.means[expected], atol=0, rtol=0)
    # every kept opacity beats every dropped one, and the original order is kept
    dropped = torch.ones(100, dtype=torch.bool)
    dropped[expected] = False
    assert kept.opacities.min() > g.opacities[dropped].max()
    assert torch.equal(expected, torch.sort(expected).values)
    assert len(g.prune(1.0)) == 100
    assert len(g.prune(0.333)) == 33
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ConfigError):
            g.prune(bad)


def test_prune_by_opacity(make_gaussians):
    g = make_gaussians(200)
    kept = g.prune_by_opacity(0.5)
    assert (kept.opacities >= 0.5).all() and len(kept) == int((g.opacities >= 0.5).sum())


def test_cat(make_gaussians):
    a, b = make_gaussians(5, 1, seed=1), make_gaussians(7, 1, seed=2)
    c = Gaussians.cat([a, b])
    assert len(c) == 12 and c.sh_degree == 1
    torch.testing.assert_close(c.means[:5], a.means)
    torch.testing.assert_close(c.sh_rest[5:], b.sh_rest)
    with pytest.raises(ConfigError, match="SH degrees differ"):
        Gaussians.cat([a, make_gaussians(3, 0)])
    with pytest.raises(ConfigError):
        Gaussians.cat([])


# ----------------------------------------------------------------------------- transform
def test_transform_similarity_maps_means_and_covariances(make_gaussians):
    g = make_gaussians(50, seed=4)
    R = _rot_z(0.7) @ torch.tensor([[1.0, 0, 0], [0, math.cos(0.3), -math.sin(0.3)], [0, math.sin(0.3), math.cos(0.3)]])
    s, t = 2.5, torch.tensor([1.0, -2.0, 3.0])
    M = torch.eye(4)
    M[:3, :3] = s * R
    M[:3, 3] = t
    h = g.transform(M)
    A = s * R
    torch.testing.assert_close(h.means, g.means @ A.T + t, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h.covariances(), A @ g.covariances() @ A.T, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h.quats.norm(dim=-1), torch.ones(50), atol=1e-6, rtol=0)
    torch.testing.assert_close(h.scales, g.scales * s, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h.opacities, g.opacities)


def test_transform_rejects_shear_and_reflection(make_gaussians):
    g = make_gaussians(4)
    with pytest.raises(ConfigError):
        g.transform(torch.diag(torch.tensor([1.0, 2.0, 1.0, 1.0])))
    with pytest.raises(ConfigError, match="reflection"):
        g.transform(torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0])))


def test_covariance_closed_form():
    # 90° about z: the x scale ends up along y.
    q = torch.tensor([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]])
    g = Gaussians(torch.zeros(1, 3), q, torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([0.5]), torch.zeros(1, 3))
    torch.testing.assert_close(g.covariances()[0], torch.diag(torch.tensor([1.0, 9.0, 4.0])), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- validate
@pytest.mark.parametrize("field", ["means", "quats", "scales", "opacities", "colors", "sh_rest"])
def test_validate_names_non_finite_field(make_gaussians, field):
    g = make_gaussians(20, sh_degree=1)
    getattr(g, field).view(-1)[7] = float("nan")
    with pytest.raises(FormatError, match=f"{field} has non-finite"):
        g.validate()


def test_validate_quats_scales_opacities_shapes(make_gaussians):
    g = make_gaussians(10)
    assert g.validate() is g
    bad = make_gaussians(10)
    bad.quats = bad.quats * 1.1
    with pytest.raises(FormatError, match="not unit length"):
        bad.validate()
    assert bad.normalized().validate() is not None
    assert (bad.normalized().quats[:, 0] >= 0).all()
    bad = make_gaussians(10)
    bad.scales[3, 1] = -0.1
    with pytest.raises(FormatError, match="scales must be positive"):
        bad.validate()
    bad = make_gaussians(10)
    bad.opacities[0] = 1.5
    with pytest.raises(FormatError, match="opacities"):
        bad.validate()
    bad = make_gaussians(10)
    bad.colors = bad.colors[:9]
    with pytest.raises(FormatError, match="colors has shape"):
        bad.validate()


# ----------------------------------------------------------------------------- quaternions
def test_rotmat_quat_round_trip():
    q = torch.nn.functional.normalize(torch.randn(1000, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    q = torch.where(q[:, :1] < 0, -q, q)
    R = quat_to_rotmat(q)
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(1000, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(1000), atol=1e-5, rtol=0)
    torch.testing.assert_close(rotmat_to_quat(R), q, atol=1e-5, rtol=0)
    # 180° rotations (trace -1) take the non-trace branches
    for axis in range(3):
        R180 = torch.diag(torch.tensor([-1.0, -1.0, -1.0]))
        R180[axis, axis] = 1.0
        expected = torch.zeros(4)
        expected[1 + axis] = 1.0
        torch.testing.assert_close(rotmat_to_quat(R180), expected)


def test_quat_closed_form_and_multiply():
    q = torch.tensor([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])  # 90° about z
    torch.testing.assert_close(quat_to_rotmat(q), _rot_z(math.pi / 2), atol=1e-6, rtol=0)
    a = torch.nn.functional.normalize(torch.randn(20, 4, generator=torch.Generator().manual_seed(1)), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(20, 4, generator=torch.Generator().manual_seed(2)), dim=-1)
    torch.testing.assert_close(quat_to_rotmat(quat_multiply(a, b)), quat_to_rotmat(a) @ quat_to_rotmat(b),
                               atol=1e-5, rtol=0)
