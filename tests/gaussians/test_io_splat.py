""".splat (antimatter15): 32-byte record layout and round trips within the 8-bit quantisation."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch

from lyra.errors import FormatError
from lyra.gaussians import Gaussians
from lyra.gaussians.io import load_gaussians, save_gaussians


def test_record_layout_closed_form(tmp_path):
    q = torch.tensor([[0.5, -0.5, 0.5, 0.5]])
    g = Gaussians(torch.tensor([[1.5, -2.0, 3.25]]), q, torch.tensor([[0.1, 0.2, 0.3]]), torch.tensor([0.4]),
                  torch.tensor([[0.0, 0.5, 1.2]]))
    path = save_gaussians(g, tmp_path / "one.splat")
    data = path.read_bytes()
    assert len(data) == 32
    assert struct.unpack_from("<3f", data, 0) == (1.5, -2.0, 3.25)
    assert struct.unpack_from("<3f", data, 12) == pytest.approx((0.1, 0.2, 0.3), rel=1e-7)
    # colour round(c*255) clipped to [0, 255], alpha round(0.4*255) = 102
    assert tuple(data[24:28]) == (0, 128, 255, 102)
    # rotation wxyz round(q*128 + 128): 0.5 -> 192, -0.5 -> 64
    assert tuple(data[28:32]) == (192, 64, 192, 192)


def test_round_trip_within_quantisation(tmp_path, make_gaussians):
    g = make_gaussians(2000, seed=7)
    g.quats[:10] = torch.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3, 0, 1]] * torch.tensor([1.0, -1.0]).repeat(5)[:, None]
    h = load_gaussians(save_gaussians(g, tmp_path / "s.splat"))
    assert torch.equal(h.means, g.means) and torch.equal(h.scales, g.scales)
    assert (h.colors - g.colors).abs().max() <= 0.5 / 255 + 1e-7
    assert (h.opacities - g.opacities).abs().max() <= 0.5 / 255 + 1e-7
    # each component moves <= 1/256 (1/128 if it clips at 255), renormalising at most doubles it
    bound = 2 * math.sqrt(7) / 256
    assert (h.quats - g.quats).norm(dim=-1).max() <= bound + 1e-6
    assert (h.quats - g.quats).norm(dim=-1)[:10].max() <= 2 / 128  # ±axis quaternions: only the clip


def test_colours_outside_range_are_clipped_and_sh_dropped(tmp_path, make_gaussians):
    g = make_gaussians(3, sh_degree=1)
    g.colors = torch.tensor([[-0.2, 1.3, 0.5]] * 3)
    with pytest.warns(UserWarning, match="SH degree 1 bands are dropped"):
        path = save_gaussians(g, tmp_path / "c.splat")
    h = load_gaussians(path)
    assert h.sh_rest is None
    torch.testing.assert_close(h.colors[0], torch.tensor([0.0, 1.0, 128 / 255]))


def test_size_not_multiple_of_32(tmp_path, make_gaussians):
    path = save_gaussians(make_gaussians(4), tmp_path / "t.splat")
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(FormatError, match="123 bytes is not a multiple of 32"):
        load_gaussians(path)


def test_zero_rotation_and_bad_scale(tmp_path):
    rec = np.zeros(2, dtype=[("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 4), ("r", "u1", 4)])
    rec["s"] = 0.1
    rec["r"] = 128  # (b - 128)/128 = 0: no rotation
    rec.tofile(tmp_path / "z.splat")
    with pytest.raises(FormatError, match="all-zero rotation"):
        load_gaussians(tmp_path / "z.splat")
    rec["r"] = [255, 128, 128, 128]
    rec["s"][1] = -1.0
    rec.tofile(tmp_path / "neg.splat")
    with pytest.raises(FormatError, match="scales must be positive"):
        load_gaussians(tmp_path / "neg.splat")
