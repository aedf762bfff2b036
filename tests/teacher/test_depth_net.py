"""TinyDepthNet (size, files, presets, FoV scaling) and its trainer (loss values, data, resume, export)."""

import json
import math

import pytest
import torch
from safetensors import safe_open
from torch import nn

from lyra.errors import ConfigError, WeightsError
from lyra.geometry.cameras import Cameras
from lyra.teacher import depth_net
from lyra.teacher.depth import DepthEstimator, DepthResult, load_depth_estimator
from lyra.teacher.depth_net import DepthNetConfig, TinyDepthNet
from lyra.train.recipes import depth as train_depth
from tests.teacher.warp_scenes import render, square, wall

SMALL = {"widths": [8, 8, 16, 16, 16], "decoder_widths": [8, 8, 16, 16], "head_width": 8}


def test_default_net_fits_the_budget(tmp_path):
    net = TinyDepthNet()
    assert net.num_parameters() <= 2_000_000
    net.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").stat().st_size <= 4 * 1024 * 1024  # fp16 ≤ 4 MB
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())


def test_shipped_depth_presets_load_with_their_configs():
    """Both shipped nets (classic worlds, photo worlds) load by name; same architecture, different weights."""
    a, b = TinyDepthNet.from_preset("tiny"), TinyDepthNet.from_preset("tiny_photo")
    assert a.config == b.config
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys() and any(not torch.equal(pa[k], pb[k]) for k in pa)
    record = json.loads((depth_net.preset_dir("tiny_photo") / "training_record.json").read_text())
    assert record["data"]["world_style"] == "photo" and record["init_from"].endswith("depth_tiny")


def test_forward_shapes_resizing_and_fov_scaling():
    torch.manual_seed(0)
    net = TinyDepthNet(DepthNetConfig.from_dict({**SMALL, "height": 48, "width": 88})).eval()
    assert isinstance(net, DepthEstimator)
    img = torch.rand(2, 3, 48, 88)
    out = net(img)
    assert out.depth.shape == (2, 48, 88) and not out.depth.requires_grad
    assert (out.depth > 0).all() and ((out.confidence >= 0) & (out.confidence <= 1)).all()
    log_z, logit = net.train()(img, raw=True)
    assert log_z.shape == (2, 48, 88) and log_z.requires_grad
    # another input size: resized to the working resolution and back
    big = net.eval()(torch.nn.functional.interpolate(img, size=(96, 176), mode="bilinear"))
    assert big.depth.shape == (2, 96, 176)
    # a longer lens (half the FoV's tangent) sees the scene twice as far
    fov = 2 * math.degrees(math.atan(0.5 * math.tan(math.radians(25.0))))
    assert torch.allclose(net.predict(img, fov_y_deg=fov).depth, 2 * out.depth, rtol=1e-5)


def test_save_load_round_trip_and_preset(tmp_path, monkeypatch):
    torch.manual_seed(1)
    net = TinyDepthNet(DepthNetConfig.from_dict({**SMALL, "height": 48, "width": 88})).eval()
    img = torch.rand(1, 3, 48, 88)
    net.save_pretrained(tmp_path / "w", record={"steps": 1})
    back = TinyDepthNet.from_pretrained(tmp_path / "w")
    assert back.config == net.config
    assert torch.allclose(back(img).depth, net(img).depth, rtol=2e-2)  # fp16 weights
    assert json.loads((tmp_path / "w" / "training_record.json").read_text()) == {"steps": 1}
    # presets: missing weights -> a WeightsError that says how to make them
    monkeypatch.setattr(depth_net, "preset_dir", lambda name: tmp_path / "empty")
    with pytest.raises(WeightsError, match="lyra.train.recipes.depth"):
        TinyDepthNet.from_preset("tiny")
    with pytest.raises(ConfigError):
        TinyDepthNet.from_preset("huge")
    monkeypatch.setattr(depth_net, "preset_dir", lambda name: tmp_path / "w")
    assert isinstance(load_depth_estimator("tiny"), TinyDepthNet)
    # an export folder given as --depth DIR (or hf:DIR) is this net, not a transformers model
    direct = load_depth_estimator(str(tmp_path / "w"))
    assert isinstance(direct, TinyDepthNet) and direct.config == net.config
    assert torch.allclose(direct(img).depth, back(img).depth)
    # a config that does not fit the weights
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    (tmp_path / "w" / "config.json").write_text(json.dumps({**cfg, "head_width": 16}))
    with pytest.raises(WeightsError):
        TinyDepthNet.from_pretrained(tmp_path / "w")


class Fixed(nn.Module):
    """A stand-in network returning given maps."""

    def __init__(self, log_z, logit):
        super().__init__()
        self.log_z, self.logit = log_z, logit

    def forward(self, image, raw=False):
        return self.log_z, self.logit


def test_depth_loss_closed_form():
    g = torch.Generator().manual_seed(0)
    z = 1 + 5 * torch.rand(2, 16, 24, generator=g)
    z[:, :3] = math.inf  # sky rows are masked out
    batch = {"image": torch.zeros(2, 3, 16, 24), "depth": z}
    logz = torch.log(torch.where(torch.isfinite(z), z, torch.ones_like(z)))
    loss, parts = train_depth.depth_loss(Fixed(logz, torch.zeros_like(logz)), batch, lam=0.85)
    assert parts["silog"].item() == pytest.approx(0, abs=1e-3) and parts["grad"].item() == pytest.approx(0, abs=1e-6)
    assert parts["absrel"].item() == pytest.approx(0, abs=1e-6) and parts["delta1"].item() == 1.0
    # a constant log offset c: silog = |c| sqrt(1 - λ), no gradient-matching penalty
    c = 0.2
    _, parts = train_depth.depth_loss(Fixed(logz + c, torch.zeros_like(logz)), batch, lam=0.85)
    assert parts["silog"].item() == pytest.approx(c * math.sqrt(0.15), rel=1e-3)
    assert parts["grad"].item() == pytest.approx(0, abs=1e-6)
    assert parts["absrel"].item() == pytest.approx(math.exp(c) - 1, rel=1e-4)
    # confidence: logit +10 where the depth is right and -10 on the sky gives ~0 BCE
    logit = torch.where(torch.isfinite(z), torch.full_like(z, 10.0), torch.full_like(z, -10.0))
    _, parts = train_depth.depth_loss(Fixed(logz, logit), batch)
    assert parts["conf_bce"].item() < 1e-4


def test_depth_metrics_closed_form():
    gt = 1 + torch.rand(30, 40, generator=torch.Generator().manual_seed(0))
    gt[0] = math.inf
    m = train_depth.depth_metrics(1.1 * gt, gt)
    assert m["absrel"] == pytest.approx(0.1) and m["delta1"] == 1.0
    assert m["absrel_median_scaled"] == pytest.approx(0.0, abs=1e-6)
    assert m["rmse_log"] == pytest.approx(math.log(1.1))


def fake_world_frames(seed: int, preset: str, device: str, split_frames: bool = True):
    """Five 48×88 views of a wall with a square in front, a function of ``seed`` (instead of a world)."""
    g = torch.Generator().manual_seed(seed)
    quads = [square(float(torch.rand((), generator=g)) - 0.5, 0.0, 2.0 + float(torch.rand((), generator=g)), 0.8),
             wall(4.0 + 2 * float(torch.rand((), generator=g)))]
    c2w = torch.eye(4).repeat(5, 1, 1)
    c2w[:, 0, 3] = torch.linspace(-0.3, 0.3, 5)
    rgb, depth = render(quads, Cameras.from_fov(50.0, 88, 48, c2w))
    depth[:, :4] = math.inf  # a strip of sky
    return rgb.clamp(0, 1).to(device), depth.to(device)


def test_frames_are_deterministic_and_flips_match():
    data = train_depth.DepthFrames(batch_size=3, preset="micro", pool_worlds=2, refresh_every=2)
    train_depth.world_frames, orig = fake_world_frames, train_depth.world_frames
    try:
        a, b = data(5), train_depth.DepthFrames(batch_size=3, preset="micro", pool_worlds=2, refresh_every=2)(5)
    finally:
        train_depth.world_frames = orig
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["depth"], b["depth"])
    assert a["image"].shape == (3, 3, 48, 88) and a["depth"].shape == (3, 48, 88)
    assert data._generation(0, 0) == 0 and data._generation(0, 2) == 1 and data._generation(1, 2) == 0


def fake_test_set(count: int, preset: str, device: str):
    """:func:`train_depth.test_set` over ``count`` :func:`fake_world_frames` worlds (instead of test worlds)."""
    ims, dps = zip(*(fake_world_frames(s, preset, device) for s in range(count)), strict=True)
    return torch.cat(ims), torch.cat(dps), list(range(count))


def test_train_resume_and_export(tmp_path, monkeypatch):
    monkeypatch.setattr(train_depth, "world_frames", fake_world_frames)
    monkeypatch.setattr(train_depth, "test_set", fake_test_set)
    (tmp_path / "small.json").write_text(json.dumps(SMALL))
    common = ["--out", str(tmp_path / "run"), "--world-preset", "micro", "--config", str(tmp_path / "small.json"),
              "--steps", "3", "--pool-worlds", "2", "--refresh-every", "2", "--batch-size", "2", "--test-worlds", "1",
              "--ckpt-every", "2", "--log-every", "1", "--warmup", "1", "--no-progress", "--cpu"]
    assert train_depth.main(common + ["--until", "2"]) == 0
    assert (tmp_path / "run" / "checkpoints").is_dir()
    assert train_depth.main(common + ["--resume"]) == 0
    rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    export = tmp_path / "run" / "export"
    record = json.loads((export / "training_record.json").read_text())
    assert record["steps"] == 3 and record["complete"] and record["parameters"] < 50_000
    assert {"absrel", "delta1", "delta2", "absrel_median_scaled"} <= set(record["test"])
    assert record["test"]["images"] == 5
    net = TinyDepthNet.from_pretrained(export)
    assert isinstance(net(torch.rand(1, 3, 48, 88)), DepthResult)
    # an existing run is not overwritten without --resume
    assert train_depth.main(common) != 0
