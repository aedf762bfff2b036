"""CIEDE2000 against the published test data of Sharma, Wu & Dalal (2005), Table 1, and sRGB → L*a*b*."""

from __future__ import annotations

import pytest
import torch

from lyra.eval.metrics import ciede2000, delta_e2000, delta_e2000_map, srgb_to_lab

# L1 a1 b1 L2 a2 b2 ΔE00: the 34 pairs of Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula:
# implementation notes, supplementary test data, and mathematical observations" (2005), Table 1.
SHARMA_2005 = """
50.0000 2.6772 -79.7751 50.0000 0.0000 -82.7485 2.0425
50.0000 3.1571 -77.2803 50.0000 0.0000 -82.7485 2.8615
50.0000 2.8361 -74.0200 50.0000 0.0000 -82.7485 3.4412
50.0000 -1.3802 -84.2814 50.0000 0.0000 -82.7485 1.0000
50.0000 -1.1848 -84.8006 50.0000 0.0000 -82.7485 1.0000
50.0000 -0.9009 -85.5211 50.0000 0.0000 -82.7485 1.0000
50.0000 0.0000 0.0000 50.0000 -1.0000 2.0000 2.3669
50.0000 -1.0000 2.0000 50.0000 0.0000 0.0000 2.3669
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0009 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0010 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0011 7.2195
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0012 7.2195
50.0000 -0.0010 2.4900 50.0000 0.0009 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0010 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0011 -2.4900 4.7461
50.0000 2.5000 0.0000 50.0000 0.0000 -2.5000 4.3065
50.0000 2.5000 0.0000 73.0000 25.0000 -18.0000 27.1492
50.0000 2.5000 0.0000 61.0000 -5.0000 29.0000 22.8977
50.0000 2.5000 0.0000 56.0000 -27.0000 -3.0000 31.9030
50.0000 2.5000 0.0000 58.0000 24.0000 15.0000 19.4535
50.0000 2.5000 0.0000 50.0000 3.1736 0.5854 1.0000
50.0000 2.5000 0.0000 50.0000 3.2972 0.0000 1.0000
50.0000 2.5000 0.0000 50.0000 1.8634 0.5757 1.0000
50.0000 2.5000 0.0000 50.0000 3.2592 0.3350 1.0000
60.2574 -34.0099 36.2677 60.4626 -34.1751 39.4387 1.2644
63.0109 -31.0961 -5.8663 62.8187 -29.7946 -4.0864 1.2630
61.2901 3.7196 -5.3901 61.4292 2.2480 -4.9620 1.8731
35.0831 -44.1164 3.7933 35.0232 -40.0716 1.5901 1.8645
22.7233 20.0904 -46.6940 23.0331 14.9730 -42.5619 2.0373
36.4612 47.8580 18.3852 36.2715 50.5065 21.2231 1.4146
90.8027 -2.0831 1.4410 91.1528 -1.6435 0.0447 1.4441
90.9257 -0.5406 -0.9208 88.6381 -0.8985 -0.7239 1.5381
6.7747 -0.2908 -2.4247 5.8714 -0.0985 -2.2286 0.6377
2.0776 0.0795 -1.1350 0.9033 -0.0636 -0.5514 0.9082
"""


def _table() -> torch.Tensor:
    rows = [[float(v) for v in line.split()] for line in SHARMA_2005.strip().splitlines()]
    assert len(rows) == 34
    return torch.tensor(rows, dtype=torch.float64)


def test_ciede2000_matches_all_34_published_pairs_both_ways() -> None:
    t = _table()
    forward = ciede2000(t[:, :3], t[:, 3:6])
    backward = ciede2000(t[:, 3:6], t[:, :3])
    torch.testing.assert_close(forward, t[:, 6], atol=5e-5, rtol=0)  # the table has 4 decimals
    torch.testing.assert_close(backward, t[:, 6], atol=5e-5, rtol=0)


def test_ciede2000_float32_is_close_to_the_table() -> None:
    t = _table()
    got = ciede2000(t[:, :3].float(), t[:, 3:6].float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), t[:, 6], atol=2e-3, rtol=0)


def test_srgb_to_lab_known_colours() -> None:
    rgb = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]],
                       dtype=torch.float64).T.reshape(3, 1, 4)
    lab = srgb_to_lab(rgb).reshape(3, 4).T
    expected = torch.tensor([[53.2408, 80.0925, 67.2032],  # sRGB red, D65 (Lindbloom's calculator)
                             [100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.3890, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(lab, expected, atol=2e-2, rtol=0)


def test_delta_e2000_images_shapes_mask_and_brown_red() -> None:
    red = torch.zeros(2, 3, 4, 5)
    red[:, 0] = 0.9
    red[:, 1:] = 0.05
    brown = red.clone()
    brown[:, 0], brown[:, 1], brown[:, 2] = 0.55, 0.27, 0.07
    assert delta_e2000_map(red, brown).shape == (2, 4, 5)
    de = delta_e2000(red, brown)
    assert de.shape == (2,)
    assert bool((de > 15).all())  # a red turned brown is far beyond the ≤ 3 target
    assert float(delta_e2000(red, red).abs().max()) < 1e-4
    mask = torch.zeros(2, 4, 5, dtype=torch.bool)
    mask[:, :2] = True
    mixed = red.clone()
    mixed[..., 2:, :] = brown[..., 2:, :]  # only unmasked rows differ
    assert float(delta_e2000(mixed, red, mask).abs().max()) < 1e-4
    assert float(delta_e2000(mixed, red).min()) > 5
    with pytest.raises(ValueError):
        delta_e2000(red, red[..., :3])
