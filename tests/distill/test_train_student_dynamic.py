"""Dynamic student: time latents, the frames that supervise a target time, a one-scene overfit, the
``--dynamic`` trainer from a static export (with and without motion reversal) and the dynamic evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lyra.distill.stages import Stage, StagePlan
from lyra.errors import ConfigError
from lyra.shards import ShardDataset
from lyra.student import LatentDecoder
from lyra.student.dynamic import (
    decode_at_time,
    frames_at_time,
    source_time_latents,
    target_time_latents,
)
from lyra.student.latents import LatentCache
from lyra.train.recipes.student import SampleStream, StudentModel, StudentObjective, main
from tests.distill.student_fakes import make_fake_dynamic_sdg

T = 9
STATIC = Path(__file__).resolve().parents[2] / "src" / "lyra" / "weights" / "student_tiny"
STAGES = {"stages": [
    {"name": "dynamic", "until": 0.5, "views": 2, "target_frames": 2},
    {"name": "dynamic_prune", "until": 1.0, "views": [1, 2], "target_frames": 1,
     "losses": ["mse", "perceptual", "depth", "opacity"], "prune_ratio": 0.8},
]}


class Identity:
    """An "encoder" that returns the video itself: the time videos' values can be read back."""

    device = torch.device("cpu")

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        return video


@pytest.fixture(scope="module")
def tokenizer():
    from lyra.tokenizer import Tokenizer

    return Tokenizer.from_preset("tiny")


@pytest.fixture(scope="module")
def sdg(tmp_path_factory, tokenizer) -> Path:
    """Two dynamic micro worlds (test seeds 0, 1), two trajectories per direction, with motion reversal."""
    return make_fake_dynamic_sdg(tmp_path_factory.mktemp("dyn") / "data", [0, 1], tokenizer)


@pytest.fixture(scope="module")
def stages_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "stages.json"
    p.write_text(json.dumps(STAGES))
    return p


def test_time_videos_hold_t_cos_sin_in_the_tokenizer_range(tokenizer):
    times = torch.tensor([[0.0, 0.5, 1.0]])[None].expand(2, 2, 3)  # [B, V, T]
    src = source_time_latents(times, Identity(), 2, 3)
    assert tuple(src.shape) == (2, 2, 3, 3, 2, 3)  # [B, V, 3 "channels", T, H, W]
    want = torch.stack([2 * times - 1, 2 * torch.cos(times) - 1, 2 * torch.sin(times) - 1], 2)
    assert torch.allclose(src, want[..., None, None].expand_as(src))
    tgt = target_time_latents(0.25, 9, Identity(), 2, 3, batch=2)
    assert tuple(tgt.shape) == (2, 1, 3, 9, 2, 3)
    tau = torch.tensor(0.25)
    assert torch.allclose(tgt[0, 0, :, 4, 1, 2], torch.stack([2 * tau - 1, 2 * tau.cos() - 1, 2 * tau.sin() - 1]))
    # through the real tokenizer: [B, 16, t, h, w], cached rows equal the direct encode (fp16)
    real = target_time_latents(torch.tensor([0.25, 1.0]), 9, tokenizer, 48, 80)
    assert tuple(real.shape) == (2, 1, 16, 2, 6, 10) and not torch.allclose(real[0], real[1])
    cache = LatentCache(tokenizer, max_entries=256)
    got = cache.target(torch.tensor([0.25, 1.0]), 9, 48, 80)
    assert got.dtype == torch.float16 and torch.allclose(got.float(), real, atol=2e-3)
    cache.target(torch.tensor([0.25]), 9, 48, 80)
    assert cache.hits == 1 and cache.misses == 2
    rows = torch.arange(9).float().div(8)[None, None].expand(1, 2, 9)
    assert torch.allclose(cache.source(rows, 48, 80).float(), source_time_latents(rows, tokenizer, 48, 80), atol=2e-3)


def test_frames_at_a_target_time_cover_both_directions():
    t = torch.arange(T) / (T - 1.0)
    times = torch.cat([t.expand(6, T), t.flip(0).expand(6, T)])  # 12 trajectories, the reversed six last
    views, frames = frames_at_time(times, float(t[3]))
    assert views.tolist() == list(range(12)) and frames.tolist() == [3] * 6 + [T - 1 - 3] * 6
    views, frames = frames_at_time(times[:6], float(t[0]))
    assert views.tolist() == list(range(6)) and frames.tolist() == [0] * 6
    assert frames_at_time(times, 0.3)[0].numel() == 0  # no frame shows t = 0.3


def test_stream_draws_one_direction_and_shared_target_frames(sdg):
    ds = ShardDataset(sdg, as_float=False)
    assert ds.dynamic and ds.directions == ["forward", "reversed"]
    plan = StagePlan([Stage("d", 1.0, views=(1, 2), target_frames=3, end_weight=1.0)])
    stream = SampleStream(ds, 1, plan, lambda: 10, seed=2, dynamic=True, directions=ds.directions)
    assert stream.num_trajectories == 2 and stream.num_views == 4
    seen = set()
    for mb, batch in zip(range(12), stream, strict=False):
        views, frames = batch["views"], batch["frames"]
        assert set(views.tolist()) <= {0, 1} and frames.shape == (len(views), 3)
        assert (frames == frames[0]).all() and frames.max() < T  # one row of target frames for all views
        seen.add(batch["direction"])
        assert batch["direction"] == stream.direction(mb)
    assert seen == {0, 1}
    off = SampleStream(ds, 1, plan, lambda: 10, seed=2, dynamic=True, directions=ds.directions, motion_reversal=False)
    assert {off.direction(mb) for mb in range(12)} == {0}


class Recorder(StudentObjective):
    """Keeps what :meth:`dynamic_step` renders (cameras, targets) instead of rendering it."""

    def _render_losses(self, gaussians, targets, opacities, stage, dev, views):
        self.seen = (gaussians, targets)
        return opacities.mean(), {}


@pytest.mark.parametrize("reversal", [True, False])
def test_the_frames_at_the_target_time_supervise_it(sdg, tokenizer, reversal):
    from lyra.distill.losses import PerceptualLoss

    ds = ShardDataset(sdg, as_float=False)
    plan = StagePlan([Stage("d", 1.0, views=2, target_frames=1)])
    obj = Recorder(plan, tokenizer, PerceptualLoss.from_weights(None), dynamic=True, directions=ds.directions,
                   motion_reversal=reversal)
    model = StudentModel(LatentDecoder("tiny"))
    s = ds[0]
    batch = {k: (v[None] if isinstance(v, torch.Tensor) else [v]) for k, v in s.items()}
    g = 2
    for direction in (0, 1):
        batch.update(stage=0, views=torch.tensor([0, 1]), frames=torch.tensor([[g], [g]]), direction=direction)
        obj(model, batch)
        (cams, rgb, depth), = obj.seen[1]
        # input direction d: frame g of trajectories v + 2d; other direction: the frame showing the same time
        tau = float(s["times"][2 * direction, g])
        rows = [(v + 2 * direction, g) for v in (0, 1)]
        if reversal:
            rows += [(v + 2 * (1 - direction), T - 1 - g) for v in (0, 1)]
        assert all(abs(float(s["times"][u, f]) - tau) < 1e-6 for u, f in rows)
        want_c2w = torch.stack([s["c2w"][u, f] for u, f in rows])
        assert torch.equal(cams.c2w, want_c2w) and torch.equal(rgb, torch.stack([s["rgb"][u, f] for u, f in rows]))
        assert torch.equal(depth, torch.stack([s["depth"][u, f] for u, f in rows]))
    assert len(obj.seen[0]) == 1 and len(obj.seen[0][0]) == 2 * T * 6 * 10  # the scene's Gaussians at tau


def test_one_scene_overfit_lowers_the_dynamic_loss(sdg, tokenizer):
    from lyra.distill.losses import PerceptualLoss

    torch.manual_seed(0)
    ds = ShardDataset(sdg, as_float=False)
    plan = StagePlan([Stage("d", 1.0, views=2, target_frames=2, losses=("mse",))])
    obj = StudentObjective(plan, tokenizer, PerceptualLoss.from_weights(None), dynamic=True, directions=ds.directions,
                           backend="torch")
    # the shipped static student's architecture, freshly initialised (its time embeddings start at zero, as in a
    # fine-tune from the static student; the shipped weights already fit this micro scene to 0.007, a floor where
    # eight steps of a fresh time embedding only add noise)
    decoder = LatentDecoder(LatentDecoder.from_pretrained(STATIC).config)
    model = StudentModel(decoder.train())
    s = ds[1]
    batch = {k: (v[None] if isinstance(v, torch.Tensor) else [v]) for k, v in s.items()}
    batch.update(stage=0, views=torch.tensor([0, 1]), frames=torch.tensor([[1, 6], [1, 6]]), direction=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss, metrics = obj(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert metrics["target_frames"] == 4.0 and metrics["views"] == 2.0
    assert losses[-1] < 0.7 * losses[0], losses
    # the time embeddings learnt something: the output now depends on the target time
    decoder.eval()
    lat, cams = s["latents"][None, :2].float(), s["c2w"]
    from lyra.geometry import Cameras
    from lyra.student import plucker_latents
    from lyra.student.latents import raw_video_encoder

    cam = Cameras(s["K"][None, :2], cams[None, :2], 80, 48)
    pl = plucker_latents(cam, raw_video_encoder(tokenizer))
    a = decode_at_time(decoder, lat, cam, pl, s["times"][None, :2], 0.0, tokenizer)
    b = decode_at_time(decoder, lat, cam, pl, s["times"][None, :2], 1.0, tokenizer)
    assert a.shape == (1, 2 * T * 60, 14) and not torch.allclose(a, b)


def test_dynamic_training_from_a_static_export_and_evaluation(tmp_path, sdg, stages_file, tokenizer):
    from lyra.eval.student_benchmark import evaluate_fidelity, evaluate_gt

    common = ["--data", str(sdg), "--steps", "2", "--cpu", "--no-progress", "--log-every", "1", "--warmup", "1",
              "--ckpt-every", "1", "--stages", str(stages_file), "--dynamic", "--init-from", str(STATIC),
              "--val-data", str(sdg), "--val-scenes", "1"]
    assert main([*common, "--out", str(tmp_path / "rev")]) == 0
    assert main([*common, "--out", str(tmp_path / "fwd"), "--no-motion-reversal"]) == 0
    model = LatentDecoder.from_pretrained(tmp_path / "rev" / "export")
    meta = model.meta
    assert meta["dynamic"] is True and meta["motion_reversal"] is True
    assert LatentDecoder.from_pretrained(tmp_path / "fwd" / "export").meta["motion_reversal"] is False
    rec = json.loads((tmp_path / "rev" / "export" / "training_record.json").read_text())
    assert rec["init"] == str(STATIC) and rec["dynamic"]["directions"] == ["forward", "reversed"]
    assert rec["validation"]["dynamic"] and math.isfinite(rec["validation"]["psnr"])
    assert rec["time_cache"]["misses"] >= 1
    fid = evaluate_fidelity(model, sdg, tokenizer, max_scenes=2, frame_stride=4, backend="torch", progress=False)
    # target times 0, 4, 8 of 9; at each, 2 forward + 2 reversed frames show it
    assert fid["dynamic"] and fid["target_times"] == 3 and fid["frames_per_target_time"] == 4
    for k in ("psnr", "ssim", "psnr_pruned", "psnr_forward", "psnr_reversed"):
        assert math.isfinite(fid[k]), k
    gt = evaluate_gt(model, sdg, tokenizer, max_scenes=2, frame_stride=4, backend="torch", progress=False)
    assert gt["dynamic"] and gt["world_seeds"] == [0, 1] and gt["max_camera_offset"] == 0.0
    # the stand-in teacher is the tokenizer round trip of the GT frames: far better than warp-only
    assert gt["psnr_teacher"] > 20.0 and gt["psnr_teacher"] > gt["psnr_warp"]
    assert gt["psnr_student"] < gt["psnr_teacher"]
    # the same evaluation as static data (one time there): frame groups and the filled warp beside warp-only
    assert set(gt["table"]) == {"input", "far"}
    assert set(gt["table"]["far"]) == {"student", "teacher", "filled_warp", "warp"}
    assert gt["table"]["far"]["filled_warp"]["coverage"] == 1.0 and "abs_rel" in gt["table"]["far"]["student"]
    assert gt["psnr_filled_warp"] > gt["psnr_warp"]
    # a static student on dynamic data (and the reverse) is refused
    with pytest.raises(ConfigError, match="dynamic scenes"):
        evaluate_fidelity(model, sdg, tokenizer, dynamic=False, progress=False)
    assert main(["--data", str(sdg), "--out", str(tmp_path / "x"), "--cpu"]) == 2  # dynamic data needs --dynamic
