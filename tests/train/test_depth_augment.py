"""Depth-net training augmentation (re-framing keeps image and depth consistent; photometric changes) and the
net's aspect-keeping inference size."""

import json
import math

import pytest
import torch

from lyra.errors import ConfigError
from lyra.teacher.depth_net import DepthNetConfig, TinyDepthNet, native_size
from lyra.train.recipes import depth as train_depth
from lyra.train.recipes.depth_augment import AugmentSettings, frame_size, reframe, rephotograph
from lyra.world.camera_model import gaussian_blur

SMALL = {"widths": [8, 8, 16, 16, 16], "decoder_widths": [8, 8, 16, 16], "head_width": 8}


def test_native_size_keeps_the_aspect_at_the_working_pixel_count():
    cfg = DepthNetConfig()
    assert native_size(176, 320, cfg) == (176, 320)
    assert native_size(352, 640, cfg) == (176, 320)  # the working aspect: the working size itself
    for h, w in [(480, 640), (1920, 1080), (375, 1242), (100, 100)]:
        nh, nw = native_size(h, w, cfg)
        assert nh % 16 == 0 and nw % 16 == 0
        assert abs(math.log((nw / nh) / (w / h))) < 0.12, (h, w, nh, nw)
        assert 0.8 < nh * nw / (176 * 320) < 1.2
    with pytest.raises(ConfigError):
        native_size(0, 10, cfg)


def test_net_reads_a_photo_at_its_own_aspect(monkeypatch):
    net = TinyDepthNet(DepthNetConfig.from_dict({**SMALL, "height": 48, "width": 96})).eval()
    seen = []
    raw = net._raw

    def spy(x):
        seen.append(tuple(x.shape[-2:]))
        return raw(x)

    monkeypatch.setattr(net, "_raw", spy)
    out = net(torch.rand(1, 3, 60, 60))  # square: read square, not stretched to 1:2
    assert out.depth.shape == (1, 60, 60)
    assert seen[-1] == native_size(60, 60, net.config) and seen[-1][0] == seen[-1][1]
    net(torch.rand(1, 3, 96, 192))
    assert seen[-1] == (48, 96)


def _ramp_batch(B=4, H=48, W=88):
    """Channel 0 = x and channel 1 = y of each pixel centre in source pixels / size; constant depth 2 with sky on
    the top rows."""
    ys, xs = torch.meshgrid((torch.arange(H) + 0.5) / H, (torch.arange(W) + 0.5) / W, indexing="ij")
    image = torch.stack([xs, ys, torch.zeros_like(xs)])[None].repeat(B, 1, 1, 1)
    depth = torch.full((B, H, W), 2.0)
    depth[:, :3] = math.inf
    return image, depth


def test_reframe_scales_depth_by_the_crop_height_it_took():
    H, W = 48, 88
    image, depth = _ramp_batch(H=H, W=W)
    settings = AugmentSettings(keep_share=0.0)
    for seed in range(6):
        out_i, out_d = reframe(image, depth, torch.Generator().manual_seed(seed), settings)
        h, w = out_i.shape[-2:]
        assert out_d.shape == (4, h, w) and (h, w) == frame_size(w / h, H, W)
        for b in range(4):
            # the crop's size in source pixels, read back from the ramps (pixel-centre spacing × count)
            cw = float(out_i[b, 0, h // 2, -1] - out_i[b, 0, h // 2, 0]) * W * w / (w - 1)
            ch = float(out_i[b, 1, -1, w // 2] - out_i[b, 1, 0, w // 2]) * H * h / (h - 1)
            assert 1 / settings.max_zoom - 0.02 <= ch / min(H, W * h / w) <= 1.02
            finite = torch.isfinite(out_d[b])
            assert finite.any()
            # a crop of height ch is a camera of tan(fov/2) scaled by ch / H: the target depth follows it
            assert torch.allclose(out_d[b][finite], torch.full_like(out_d[b][finite], 2.0 * ch / H), rtol=0.03)
            assert abs(cw / ch - w / h) / (w / h) < 0.03
        # the sky (source rows 0..2) stays sky wherever the crop reaches it
        assert not bool((torch.isfinite(out_d) & (out_i[:, 1] < 3 / H - 1e-3)).any())


def test_reframe_keeps_a_kept_batch_and_is_deterministic():
    image, depth = _ramp_batch()
    kept = reframe(image, depth, torch.Generator().manual_seed(0), AugmentSettings(keep_share=1.0))
    assert kept[0] is image and kept[1] is depth
    a = reframe(image, depth, torch.Generator().manual_seed(3), AugmentSettings(keep_share=0.0))
    b = reframe(image, depth, torch.Generator().manual_seed(3), AugmentSettings(keep_share=0.0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_blur_has_the_requested_spread():
    x = torch.zeros(2, 3, 41, 41)
    x[:, :, 20, 20] = 1.0
    out = gaussian_blur(x, torch.tensor([0.0, 1.5]))
    assert torch.equal(out[0], x[0])  # σ = 0: unchanged
    w = out[1, 0]
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-5)
    r = torch.arange(41, dtype=torch.float32) - 20
    var_x = float((w.sum(0) * r.square()).sum())
    assert var_x == pytest.approx(1.5**2, rel=0.03)
    flat = gaussian_blur(torch.full((1, 3, 9, 9), 0.3), torch.tensor([1.0]))
    assert torch.allclose(flat, torch.full_like(flat, 0.3), atol=1e-6)  # reflect padding: no dark border


def test_rephotograph_changes_pictures_within_range_deterministically():
    torch.manual_seed(0)
    image = torch.rand(6, 3, 32, 48)
    a = rephotograph(image, torch.Generator().manual_seed(1))
    b = rephotograph(image, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == image.shape
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert float((a - image).abs().mean()) > 0.02
    grey = rephotograph(image, torch.Generator().manual_seed(1),
                        AugmentSettings(saturation=(0.0, 0.0), gain=0.0, max_read_noise=0.0, max_shot_noise=0.0))
    assert float((grey - grey.mean(1, keepdim=True)).abs().max()) < 1e-5  # no saturation: every pixel grey


def test_augmented_frames_train_and_init_from(tmp_path, monkeypatch):
    from tests.teacher.test_depth_net import fake_test_set, fake_world_frames

    monkeypatch.setattr(train_depth, "world_frames", fake_world_frames)
    monkeypatch.setattr(train_depth, "test_set", fake_test_set)
    (tmp_path / "small.json").write_text(json.dumps(SMALL))
    common = ["--world-preset", "micro", "--config", str(tmp_path / "small.json"), "--pool-worlds", "2",
              "--batch-size", "2", "--test-worlds", "1", "--warmup", "1", "--no-progress", "--cpu"]
    assert train_depth.main(["--out", str(tmp_path / "a"), "--steps", "2", *common]) == 0
    first = tmp_path / "a" / "export"
    # a second run from the first's export: with lr 0 and no EMA its weights stay those of the init
    assert train_depth.main(["--out", str(tmp_path / "b"), "--steps", "1", "--lr", "0", "--ema", "0",
                             "--init-from", str(first), *common]) == 0
    record = json.loads((tmp_path / "b" / "export" / "training_record.json").read_text())
    assert record["init_from"] == str(first) and record["data"]["augment"]["max_zoom"] == 1.6
    a, b = TinyDepthNet.from_pretrained(first), TinyDepthNet.from_pretrained(tmp_path / "b" / "export")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    other = dict(SMALL, head_width=16)
    (tmp_path / "other.json").write_text(json.dumps(other))
    bad = [*common[:2], "--config", str(tmp_path / "other.json"), *common[4:]]
    assert train_depth.main(["--out", str(tmp_path / "c"), "--steps", "1", "--init-from", str(first), *bad]) != 0


def test_prefill_renders_the_whole_pool(monkeypatch):
    from tests.teacher.test_depth_net import fake_world_frames

    calls = []

    def counting(seed, preset, device, split_frames=True):
        calls.append(seed)
        return fake_world_frames(seed, preset, device, split_frames)

    monkeypatch.setattr(train_depth, "world_frames", counting)
    data = train_depth.DepthFrames(batch_size=2, preset="micro", pool_worlds=3, refresh_every=2)
    data.prefill(0)
    assert sorted(calls) == [data.world_seed(s, 0) for s in range(3)]
    data(1)  # the first batches draw from the filled pool: nothing rendered again
    assert len(calls) == 3
