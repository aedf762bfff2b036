"""The warp-only inpainting baseline (``lyra.eval.baselines.fill_holes``)."""

from __future__ import annotations

import torch

from lyra.eval.baselines import fill_holes


def test_fill_holes_takes_neighbour_values():
    rgb = torch.zeros(3, 5, 5)
    rgb[:, :, :2] = torch.tensor([0.2, 0.4, 0.6])[:, None, None]  # left: valid, one colour
    rgb[:, :, 3:] = 9.0  # right: invalid garbage
    mask = torch.zeros(5, 5, dtype=torch.bool)
    mask[:, :2] = True
    out = fill_holes(rgb, mask)
    # holes reached from a single-colour region take exactly that colour; valid pixels are untouched
    assert torch.allclose(out, torch.tensor([0.2, 0.4, 0.6])[:, None, None].expand(3, 5, 5))
    # two colours: a one-pixel hole between them gets the mean of its valid 3x3 neighbours
    img = torch.tensor([[[0.0, 0.0, 5.0, 1.0, 1.0]]])
    m = torch.tensor([[True, True, False, True, True]])
    assert torch.allclose(fill_holes(img, m), torch.tensor([[[0.0, 0.0, 0.5, 1.0, 1.0]]]))
    # batch dims are kept, an all-invalid image stays as it is
    batch = torch.rand(2, 4, 3, 6, 7)
    none = torch.zeros(2, 4, 6, 7, dtype=torch.bool)
    assert torch.equal(fill_holes(batch, none), batch)
