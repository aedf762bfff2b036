"""Footprint-relative scales of the tiny student (issue 19) and the scale-cap flags the benchmark reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.geometry import Cameras
from lyra.pipeline_parts import kept_fraction
from lyra.student.decoder import PRESETS, DecoderConfig, LatentDecoder
from lyra.student.heads import GaussianActivations

from .student_helpers import make_cameras

ROOT = Path(__file__).resolve().parents[2]
FOOTPRINT = GaussianActivations(scale_reference="footprint", footprint_cap=4.0)


def test_footprint_scale_values_and_soft_cap():
    unit = torch.tensor([0.01, 0.5, 2.0])
    # x = 1 gives one cell's footprint, whatever the footprint
    assert torch.allclose(FOOTPRINT.scale(torch.ones(3), unit), unit, rtol=1e-6)
    # far above the cap the scale approaches F cells from below and its gradient is still there
    x = torch.full((3,), 9.0, requires_grad=True)
    s = FOOTPRINT.scale(x, unit)
    assert torch.all(s < 4.0 * unit) and torch.allclose(s, 4.0 * unit, rtol=2e-3)
    s.sum().backward()
    assert torch.all(x.grad > 0)
    # the release's hard cap cuts the gradient there: the trap that left 85 % of the latent Gaussians at 0.3
    world = GaussianActivations()
    y = torch.full((3,), 3.0, requires_grad=True)
    world.scale(y).sum().backward()
    assert torch.all(world.scale(y.detach()) == 0.3) and torch.all(y.grad == 0)


def test_footprint_needs_pitch_and_a_valid_cap():
    feats = torch.zeros(5, 12)
    rays_o, rays_d = torch.zeros(5, 3), torch.nn.functional.normalize(torch.ones(5, 3), dim=-1)
    with pytest.raises(ValueError, match="pitch"):
        FOOTPRINT(feats, rays_o, rays_d)
    with pytest.raises(ConfigError, match="scale_reference"):
        GaussianActivations(scale_reference="pixels")
    with pytest.raises(ConfigError, match="footprint_cap"):
        GaussianActivations(scale_reference="footprint", footprint_cap=1.0)


def test_activation_scale_is_distance_times_pitch():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(7, 12, generator=g)
    rays_o = torch.randn(7, 3, generator=g)
    rays_d = torch.nn.functional.normalize(torch.randn(7, 3, generator=g), dim=-1)
    pitch = torch.rand(7, 1, generator=g) * 0.05
    raw = FOOTPRINT(feats, rays_o, rays_d, pitch)
    d = (raw[:, :3] - rays_o).norm(dim=-1, keepdim=True)
    cells = raw[:, 4:7] / (d * pitch)
    expected = 4.0 * torch.sigmoid(feats[:, 4:7] - (1.0 + math.log(3.0)))
    assert torch.allclose(cells, expected, rtol=1e-4)


def _tiny_inputs(cfg: DecoderConfig, fx_scale: float = 1.0):
    torch.manual_seed(0)
    B, V, t, h, w = 1, 2, 2, 4, 6
    T = 1 + 8 * (t - 1)
    cams = make_cameras(B, V, T, w * 8, h * 8)
    K = cams.K.clone()
    K[..., 0, 0] *= fx_scale
    K[..., 1, 1] *= fx_scale
    cams = Cameras(K, cams.c2w, cams.width, cams.height)
    lat = torch.randn(B, V, cfg.latent_channels, t, h, w)
    pl = torch.randn(B, V, 2 * cfg.latent_channels, t, h, w)
    return lat, cams, pl


def _small(activations: GaussianActivations) -> DecoderConfig:
    return PRESETS["tiny"].with_(width=32, depth=2, attention_blocks=(1,), d_state=8, headdim=16, num_heads=2,
                                 activations=activations)


def test_decoder_footprint_scales_follow_the_focal_length():
    """Same features, twice the focal length: every footprint-relative scale halves; world scales do not move."""
    cfg = _small(FOOTPRINT)
    model = LatentDecoder(cfg).eval()
    lat, cams, pl = _tiny_inputs(cfg)
    _, cams2, _ = _tiny_inputs(cfg, fx_scale=2.0)
    with torch.no_grad():
        a, b = model(lat, cams, pl), model(lat, cams2, pl)
    dist_a = (a[..., :3] - model.rays(cams, 1, 2, 2, 4, 6)[0]).norm(dim=-1)
    dist_b = (b[..., :3] - model.rays(cams2, 1, 2, 2, 4, 6)[0]).norm(dim=-1)
    assert torch.allclose(dist_a, dist_b, rtol=1e-5)
    assert torch.allclose(b[..., 4:7], 0.5 * a[..., 4:7], rtol=1e-4)
    pitch = model.ray_pitch(cams, 4, 6)
    assert pitch.shape == (1, a.shape[1], 1)
    assert torch.allclose(pitch[0, 0, 0], 8.0 / cams.K[0, 0, 0, 0, 0], rtol=1e-6)
    world = LatentDecoder(_small(GaussianActivations()))
    world.load_state_dict(model.state_dict())
    with torch.no_grad():
        wa, wb = world(lat, cams, pl), world(lat, cams2, pl)
    assert torch.equal(wa[..., 4:7], wb[..., 4:7])


@pytest.mark.parametrize("activations", [GaussianActivations(), FOOTPRINT], ids=["world", "footprint"])
def test_scale_saturation_flags_the_cap(activations):
    model = LatentDecoder(_small(activations)).eval()
    lat, cams, pl = _tiny_inputs(model.config)
    scale_bias = slice(4, 7)  # head channels: distance 1 | rgb 3 | scale 3 | …
    with torch.no_grad():
        model.deconv.bias.view(-1, 12)[:, scale_bias] = -30.0
        low = model(lat, cams, pl)
        model.deconv.bias.view(-1, 12)[:, scale_bias] = 30.0
        high = model(lat, cams, pl)
    assert not model.scale_saturation(low, cams).any()
    assert model.scale_saturation(high, cams).all()
    with pytest.raises(ValueError, match="Gaussians"):
        model.scale_saturation(high[:, :-1], cams)


def test_kept_fraction_matches_the_pruned_set():
    g = torch.Generator().manual_seed(3)
    n = 1000
    flags = torch.rand(n, generator=g) < 0.3
    gs = Gaussians(means=torch.randn(n, 3, generator=g), quats=torch.nn.functional.normalize(torch.randn(n, 4)),
                   scales=torch.rand(n, 3, generator=g), opacities=torch.rand(n, generator=g),
                   colors=flags.float()[:, None].expand(n, 3).clone())
    kept = gs.prune(1.0 - 0.8)
    assert kept_fraction(gs, flags, 0.8) == pytest.approx(float(kept.colors[:, 0].mean()), abs=1e-7)
    assert kept_fraction(gs, flags, None) == pytest.approx(float(flags.float().mean()))
    assert kept_fraction(gs, None, 0.8) is None
    with pytest.raises(ValueError, match="flags"):
        kept_fraction(gs, flags[:-1], 0.8)


def test_footprint_config_file_and_export_round_trip(tmp_path):
    cfg = DecoderConfig.from_dict(json.loads((ROOT / "configs" / "student_tiny_footprint.json").read_text()))
    assert cfg.activations == FOOTPRINT
    assert cfg.with_(activations=GaussianActivations()) == PRESETS["tiny"]  # the tiny layout: shipped weights load
    model = LatentDecoder(_small(FOOTPRINT))
    model.save_pretrained(tmp_path / "export", {"preset": None})
    back = LatentDecoder.from_pretrained(tmp_path / "export")
    assert back.activations == FOOTPRINT
    with pytest.raises(ConfigError, match="unknown decoder config keys"):
        DecoderConfig.from_dict({"widht": 3})
