"""Niantic SPZ: containers (gzip v2/v3, zstd v4), quantisation bounds, coordinate systems, extensions."""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch
import zstandard

from lyra.errors import ConfigError, FormatError
from lyra.gaussians import SH_C0, Gaussians
from lyra.gaussians.io import load_gaussians, read_spz_header, save_gaussians
from lyra.gaussians.io import spz as spzmod

DELTA3 = math.sqrt(0.5) / (2 * 511)  # smallest-three component step / 2
# The reference's flipSh for RDF <-> RUB (x=1, y=-1, z=-1), coefficients 0..14 (load-spz / splat-types.h).
UPSTREAM_FLIP_SH = [-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1]


def _bounds(fbits=12, sh1_bits=5, sh_rest_bits=4):
    return dict(pos=2.0 ** -(fbits + 1), opacity=0.5 / 255, color=0.5 * SH_C0 / (0.15 * 255),
                scale=math.exp(1 / 32) - 1, sh1=(0.5 + 2 ** (7 - sh1_bits)) / 128,
                sh_rest=(0.5 + 2 ** (7 - sh_rest_bits)) / 128)


def _same_sign(q, ref):
    return q * torch.sign((q * ref).sum(-1, keepdim=True))


def _check_round_trip(g, h, version, **bits):
    b = _bounds(**bits)
    eps = 1e-6
    assert (h.means - g.means).abs().max() <= b["pos"] + eps
    assert (h.opacities - g.opacities).abs().max() <= b["opacity"] + eps
    assert (h.colors - g.colors).abs().max() <= b["color"] + eps
    assert (h.scales / g.scales - 1).abs().max() <= b["scale"] + eps
    dq = (_same_sign(h.quats, g.quats) - g.quats).abs()
    if version >= 3:
        # stored components ±DELTA3; the derived largest one (>= 1/2) moves <= 6·DELTA3 + 6·DELTA3²
        assert dq.max() <= 6 * DELTA3 + 6 * DELTA3 ** 2 + eps
    else:
        w = g.quats[:, 0].abs()
        e = 0.5 / 127.5
        v = g.quats[:, 1:].norm(dim=-1)
        assert (dq[:, 1:].max(-1).values <= e + 2 * (2 * v * math.sqrt(3) * e + 3 * e * e) + eps).all()
        assert (dq[:, 0] <= (2 * v * math.sqrt(3) * e + 3 * e * e) / w + eps).all()
    if g.sh_rest is not None:
        assert (h.sh_rest[:, :3] - g.sh_rest[:, :3]).abs().max() <= b["sh1"] + eps
        if g.sh_rest.shape[1] > 3:
            assert (h.sh_rest[:, 3:] - g.sh_rest[:, 3:]).abs().max() <= b["sh_rest"] + eps
    else:
        assert h.sh_rest is None


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip_within_documented_precision(tmp_path, make_gaussians, version, degree):
    g = make_gaussians(400, sh_degree=degree, seed=10 * version + degree)
    if version == 2:  # v2 derives w from x, y, z: keep w away from 0 so the bound is finite
        g.quats = torch.where(g.quats[:, :1].abs() < 0.3, torch.tensor([0.8, 0.6, 0.0, 0.0]), g.quats)
    path = save_gaussians(g, tmp_path / "s.spz", spz_version=version)
    header = read_spz_header(path)
    assert (header.version, header.num_points, header.sh_degree, header.fractional_bits) == (version, 400, degree, 12)
    _check_round_trip(g, load_gaussians(path), version)


def test_full_byte_sh_and_more_fraction_bits(tmp_path, make_gaussians):
    g = make_gaussians(300, sh_degree=2, seed=3, extent=1.0)
    path = save_gaussians(g, tmp_path / "f.spz", spz_sh1_bits=8, spz_sh_rest_bits=8, spz_fractional_bits=20)
    h = load_gaussians(path)
    _check_round_trip(g, h, 3, fbits=20, sh1_bits=8, sh_rest_bits=8)
    assert (h.sh_rest - g.sh_rest).abs().max() <= 0.5 / 128 + 1e-6


def test_fraction_bits_lowered_for_large_scenes(tmp_path, make_gaussians):
    g = make_gaussians(50, extent=3000.0)
    path = save_gaussians(g, tmp_path / "big.spz")
    assert read_spz_header(path).fractional_bits == 11  # 3000 · 2^11 < 2^23 <= 3000 · 2^12
    _check_round_trip(g, load_gaussians(path), 3, fbits=11)
    with pytest.raises(ConfigError, match="do not fit"):
        save_gaussians(g, tmp_path / "no.spz", spz_fractional_bits=12)
    assert not (tmp_path / "no.spz").exists()


def test_legacy_container_bytes(tmp_path, make_gaussians):
    g = make_gaussians(10, sh_degree=1)
    path = save_gaussians(g, tmp_path / "v3.spz")
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    raw = gzip.decompress(data)
    assert struct.unpack_from("<IIIBBBB", raw) == (0x5053474E, 3, 10, 1, 12, 0, 0)
    assert len(raw) == 16 + 10 * (9 + 1 + 3 + 3 + 4 + 9)
    raw2 = gzip.decompress(save_gaussians(g, tmp_path / "v2.spz", spz_version=2).read_bytes())
    assert len(raw2) == 16 + 10 * (9 + 1 + 3 + 3 + 3 + 9)


def test_v4_container_bytes(tmp_path, make_gaussians):
    for degree, streams in ((0, 5), (2, 6)):
        n = 25
        g = make_gaussians(n, sh_degree=degree)
        data = save_gaussians(g, tmp_path / f"v4_{degree}.spz", spz_version=4).read_bytes()
        magic, version, count, deg, fbits, flags, num, toc = struct.unpack_from("<IIIBBBBI", data)
        assert (magic, version, count, deg, fbits, flags, num, toc) == (0x5053474E, 4, n, degree, 12, 0, streams, 32)
        assert data[20:32] == bytes(12)
        sizes = [9 * n, n, 3 * n, 3 * n, 4 * n, 3 * 8 * n][:streams]
        offset = 32 + 16 * streams
        for i, size in enumerate(sizes):
            csize, usize = struct.unpack_from("<QQ", data, 32 + 16 * i)
            assert usize == size
            assert len(zstandard.ZstdDecompressor().decompress(data[offset:offset + csize])) == size
            offset += csize
        assert offset == len(data)


def test_smallest_three_bits_closed_form(tmp_path):
    # q = (w, x, y, z) = (0.8, 0.6, 0, 0): largest is w (index 3 in xyzw); x is stored first (highest bits)
    g = Gaussians(torch.zeros(1, 3), torch.tensor([[0.8, 0.6, 0.0, 0.0]]), torch.ones(1, 3), torch.tensor([0.5]),
                  torch.full((1, 3), 0.5))
    raw = gzip.decompress(save_gaussians(g, tmp_path / "q.spz", spz_coordinate_system="RDF").read_bytes())
    comp = struct.unpack_from("<I", raw, 16 + 16)[0]
    mag = math.floor(511 * 0.6 / math.sqrt(0.5) + 0.5)
    assert comp == (3 << 30) | (mag << 20)
    h = load_gaussians(tmp_path / "q.spz", spz_coordinate_system="RDF")
    x = math.sqrt(0.5) * mag / 511
    torch.testing.assert_close(h.quats[0], torch.tensor([math.sqrt(1 - x * x), x, 0, 0]), atol=1e-6, rtol=0)
    # other fields: alpha 128 (0.5·255 = 127.5 rounds up), colour 127.5 -> 128, scale (0+10)·16 = 160
    assert tuple(raw[16 + 9:16 + 16]) == (128, 128, 128, 128, 160, 160, 160)


def test_default_writes_rub_coordinates(tmp_path, make_gaussians):
    g = make_gaussians(30, sh_degree=3, seed=4)
    full = {"spz_sh1_bits": 8, "spz_sh_rest_bits": 8}  # no bucketing: quantisation commutes with sign flips
    save_gaussians(g, tmp_path / "rub.spz", **full)
    save_gaussians(g, tmp_path / "raw.spz", spz_coordinate_system="RDF", **full)
    rub_as_raw = load_gaussians(tmp_path / "rub.spz", spz_coordinate_system="RDF")
    raw = load_gaussians(tmp_path / "raw.spz", spz_coordinate_system="RDF")
    flip = torch.tensor([1.0, -1.0, -1.0])
    torch.testing.assert_close(rub_as_raw.means, raw.means * flip, atol=0, rtol=0)
    torch.testing.assert_close(_same_sign(rub_as_raw.quats, raw.quats * torch.tensor([1.0, 1, -1, -1])),
                               raw.quats * torch.tensor([1.0, 1, -1, -1]), atol=1e-7, rtol=0)
    torch.testing.assert_close(rub_as_raw.sh_rest, raw.sh_rest * torch.tensor(UPSTREAM_FLIP_SH)[None, :, None],
                               atol=0, rtol=0)
    # read back in the default (RUB) convention, both files give the same Gaussians
    torch.testing.assert_close(load_gaussians(tmp_path / "rub.spz").means, raw.means, atol=0, rtol=0)


def test_sh_transform_matches_reference_flip_table():
    M = spzmod.coordinate_conversion("RDF", "RUB")
    assert np.array_equal(M, np.diag([1.0, -1.0, -1.0]))
    D = spzmod.sh_transform(M, 3)
    assert np.array_equal(D, np.diag(UPSTREAM_FLIP_SH).astype(float))


@pytest.mark.parametrize("system", ["RUB", "LUF", "RFU", "LBD", "RDF"])
def test_coordinate_conversion_is_a_change_of_frame(make_gaussians, system):
    """Means map by M, covariances by M Σ Mᵀ, and SH colour seen along M·d equals the old one along d."""
    g = make_gaussians(20, sh_degree=3, seed=1)
    M = spzmod.coordinate_conversion("RDF", system)
    means, quats, sh = spzmod.convert_coordinates(g.means.numpy(), g.quats.numpy(), g.sh_rest.numpy(), M)
    h = Gaussians(torch.from_numpy(means), torch.from_numpy(quats), g.scales, g.opacities, g.colors,
                  torch.from_numpy(sh))
    Mt = torch.from_numpy(M).float()
    torch.testing.assert_close(h.means, g.means @ Mt.T, atol=1e-6, rtol=0)
    torch.testing.assert_close(h.covariances(), Mt @ g.covariances() @ Mt.T, atol=1e-5, rtol=1e-5)
    dirs = np.random.default_rng(0).normal(size=(10, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    old = np.einsum("mk,nkc->nmc", spzmod.sh_basis(dirs, 3), g.sh_rest.double().numpy())
    new = np.einsum("mk,nkc->nmc", spzmod.sh_basis(dirs @ M.T, 3), sh.astype(np.float64))
    np.testing.assert_allclose(new, old, atol=1e-5)
    back = spzmod.convert_coordinates(means, quats, sh, spzmod.coordinate_conversion(system, "RDF"))
    np.testing.assert_allclose(back[0], g.means.numpy(), atol=1e-6)
    np.testing.assert_allclose(back[2], g.sh_rest.numpy(), atol=1e-5)


def _ext(kind, payload):
    return struct.pack("<II", kind, len(payload)) + payload


def test_coordinate_system_extension_is_honoured(tmp_path, make_gaussians):
    g = make_gaussians(12, sh_degree=1, seed=2)
    full = {"spz_sh1_bits": 8, "spz_sh_rest_bits": 8}  # no bucketing: quantisation commutes with sign flips
    reference = load_gaussians(save_gaussians(g, tmp_path / "ref.spz", **full))
    # the same data written unconverted (RDF) and declared as RDF by an extension: read without options
    raw = gzip.decompress(save_gaussians(g, tmp_path / "raw.spz", spz_coordinate_system="RDF", **full).read_bytes())
    exts = _ext(0x12340001, b"unknown!") + _ext(0xADBE0003, struct.pack("<I", 6))  # 6 = RDF
    legacy = bytearray(raw)
    legacy[14] |= 0x2
    (tmp_path / "legacy_ext.spz").write_bytes(gzip.compress(bytes(legacy) + exts))
    assert read_spz_header(tmp_path / "legacy_ext.spz").coordinate_system == "RDF"
    h = load_gaussians(tmp_path / "legacy_ext.spz")
    torch.testing.assert_close(h.means, reference.means, atol=0, rtol=0)
    # v4: extensions sit between the 32-byte header and the table of contents
    v4 = save_gaussians(g, tmp_path / "raw4.spz", spz_version=4, spz_coordinate_system="RDF", **full).read_bytes()
    head = bytearray(v4[:32])
    head[14] |= 0x2
    struct.pack_into("<I", head, 16, 32 + len(exts))
    (tmp_path / "v4_ext.spz").write_bytes(bytes(head) + exts + v4[32:])
    h4 = load_gaussians(tmp_path / "v4_ext.spz", spz_coordinate_system="LUF")  # the extension wins
    torch.testing.assert_close(h4.means, reference.means, atol=0, rtol=0)
    torch.testing.assert_close(h4.sh_rest, reference.sh_rest, atol=0, rtol=0)


def test_unsupported_versions_and_options(tmp_path, make_gaussians):
    g = make_gaussians(5)
    raw = bytearray(gzip.decompress(save_gaussians(g, tmp_path / "a.spz").read_bytes()))
    for version, message in ((1, "version 1"), (7, "version 7 is not supported")):
        struct.pack_into("<I", raw, 4, version)
        (tmp_path / "v.spz").write_bytes(gzip.compress(bytes(raw)))
        with pytest.raises(FormatError, match=message):
            load_gaussians(tmp_path / "v.spz")
    for options, message in (({"spz_version": 5}, "spz_version"), ({"spz_sh1_bits": 9}, "spz_sh1_bits"),
                             ({"spz_coordinate_system": "XYZ"}, "unknown coordinate system"),
                             ({"ply_ascii": True}, "does not apply")):
        with pytest.raises(ConfigError, match=message):
            save_gaussians(g, tmp_path / "bad.spz", **options)
        assert not (tmp_path / "bad.spz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.spz", "v.spz"]
