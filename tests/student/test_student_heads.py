"""The release's Gaussian activations, value by value, and the raw → Gaussians conversion and pruning."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.student.decoder import LatentDecoder
from lyra.student.heads import GaussianActivations, raw_to_gaussians

act = GaussianActivations()


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_distance_activation_values():
    w = sigmoid(-1.65)
    assert act.distance(torch.tensor(0.0, dtype=torch.float64)).item() == pytest.approx(0.1 * (1 - w) + 500 * w)
    assert act.distance(torch.tensor(1.65)).item() == pytest.approx(0.5 * 0.1 + 0.5 * 500)
    assert act.distance(torch.tensor(-60.0)).item() == pytest.approx(0.1)
    assert act.distance(torch.tensor(60.0)).item() == pytest.approx(500.0)


def test_opacity_scale_rgb_values():
    assert act.opacity(torch.tensor(2.0)).item() == pytest.approx(0.5)
    assert act.opacity(torch.tensor(0.0)).item() == pytest.approx(sigmoid(-2.0))
    assert act.scale_shift == pytest.approx(2.2039728, abs=1e-7)
    assert act.scale(torch.tensor(0.0, dtype=torch.float64)).item() == pytest.approx(math.exp(-2.2039728), rel=1e-6)
    assert act.scale(torch.tensor(0.0)).item() == pytest.approx(0.3 / math.e, rel=1e-6)  # exp(x - 1 + ln 0.3)
    assert act.scale(torch.tensor(1.0)).item() == pytest.approx(0.3)  # the cap is reached at x = 1
    assert act.scale(torch.tensor(7.0)).item() == pytest.approx(0.3)
    assert act.rgb(torch.tensor(0.0)).item() == pytest.approx(0.5)
    assert act.rgb(torch.tensor(0.5)).item() == pytest.approx(0.5 * math.tanh(0.5) + 0.5)


def test_full_activation_layout_and_positions():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(5, 12, generator=g, dtype=torch.float64)
    o = torch.randn(5, 3, generator=g, dtype=torch.float64)
    d = torch.nn.functional.normalize(torch.randn(5, 3, generator=g, dtype=torch.float64), dim=-1)
    raw = act(feats, o, d)
    assert raw.shape == (5, 14)
    depth = 0.1 * (1 - torch.sigmoid(feats[:, 0] - 1.65)) + 500 * torch.sigmoid(feats[:, 0] - 1.65)
    assert torch.allclose(raw[:, 0:3], o + d * depth[:, None])                         # position
    assert torch.allclose(raw[:, 3], torch.sigmoid(feats[:, 11] - 2))                   # opacity
    assert torch.allclose(raw[:, 4:7], torch.clamp(torch.exp(feats[:, 4:7] - 2.2039728), max=0.3))  # scale
    q = feats[:, 7:11] / feats[:, 7:11].norm(dim=-1, keepdim=True)
    assert torch.allclose(raw[:, 7:11], q)                                              # rotation wxyz
    assert torch.allclose(raw[:, 11:14], 0.5 * torch.tanh(feats[:, 1:4]) + 0.5)         # rgb
    # distance is along the unit ray
    assert torch.allclose((raw[:, :3] - o).norm(dim=-1), depth)


def test_activation_runs_in_float32_for_bf16_features():
    feats = torch.zeros(2, 12, dtype=torch.bfloat16)
    feats[:, 7] = 1
    raw = act(feats, torch.zeros(2, 3), torch.tensor([[0.0, 0.0, 1.0]] * 2))
    assert raw.dtype == torch.float32
    w = sigmoid(-1.65)
    assert raw[0, 2].item() == pytest.approx(0.1 * (1 - w) + 500 * w, rel=1e-6)


def test_raw_to_gaussians_and_pruning():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(1000, 12, generator=g)
    raw = act(feats, torch.zeros(1000, 3), torch.nn.functional.normalize(torch.randn(1000, 3, generator=g), dim=-1))
    gs = raw_to_gaussians(raw).validate()
    assert len(gs) == 1000
    assert torch.equal(gs.opacities, raw[:, 3]) and torch.equal(gs.quats, raw[:, 7:11])
    # The release keeps int(N·(1 − 0.8)): 1 − 0.8 = 0.19999999999999996, so 199 of 1000 (not 200).
    (pruned,) = LatentDecoder.to_gaussians(raw[None], prune_ratio=0.8)
    assert len(pruned) == int(1000 * (1 - 0.8)) == 199
    kept = set(torch.topk(raw[:, 3], 199).indices.tolist())
    assert {int(i) for i in torch.nonzero(torch.isin(gs.opacities, pruned.opacities))[:, 0]} == kept
    assert len(gs.prune(0.2)) == 200


def test_wrong_channel_counts_raise():
    with pytest.raises(ValueError):
        act(torch.zeros(3, 11), torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError):
        raw_to_gaussians(torch.zeros(3, 13))
