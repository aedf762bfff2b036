"""Dynamic SDG: motion reversal is the time flip, dynamic shards round-trip, version-1 shards still load,
and the real pipeline teacher over a micro dynamic world."""

from __future__ import annotations

import json

import pytest
import torch

from lyra.distill.sdg import (
    SceneRequest,
    SceneResult,
    SourceItem,
    WorldSource,
    generate_sdg,
    merge_directions,
    reversed_request,
)
from lyra.errors import ConfigError, FormatError
from lyra.geometry.cameras import Cameras
from lyra.seeds import mix_seed
from lyra.shards import HEADER_KEY, SdgSample, ShardDataset, read_shard, read_shard_header, write_shard
from lyra.teacher.depth import DepthResult

V, T, H, W = 6, 9, 16, 32


def fake_depth(x: torch.Tensor) -> DepthResult:
    d = 1.0 + x.mean(1)
    return DepthResult(d, torch.ones_like(d))


class FakeVideoSource:
    """Dynamic items: a video whose frame ``f`` is the constant ``f / 10`` (so frames are recognisable)."""

    trajectory_set = "fake6+reversed"
    name = "fake-dynamic"
    directions = ["forward", "reversed"]

    def __len__(self) -> int:
        return 4

    def settings(self) -> dict:
        return {"kind": "fake", "dynamic": True}

    def key(self, i: int) -> str:
        return str(i)

    def world_seed(self, i: int) -> int:
        return i

    def noise_key(self, i: int) -> int:
        return i

    def load(self, indices):
        out = []
        for i in indices:
            video = (torch.arange(T).float() / 10 + i / 100)[:, None, None, None].expand(T, 3, H, W).clone()
            cams = Cameras.from_fov(50.0, W, H, torch.eye(4).expand(V, T, 4, 4).clone())
            cams.c2w[..., 0, 3] = torch.arange(T) * 0.1
            depth = torch.full((T, H, W), 2.0) + torch.arange(T)[:, None, None]
            out.append(SourceItem(str(i), i, video[0], depth[0], cams[0, 0], cams, video=video, video_depth=depth,
                                  times=torch.arange(T) / (T - 1.0)))
        return out


class FakeVideoTeacher:
    """Frame ``f`` of every trajectory = input frame ``f``; latents from the noise seed; times as the pipeline."""

    def __init__(self) -> None:
        self.requests: list[SceneRequest] = []

    def weight_hashes(self) -> dict:
        return {"teacher": "fake"}

    def generate(self, requests, steps):
        self.requests += list(requests)
        out = []
        for r in requests:
            g = torch.Generator().manual_seed(r.noise_seed)
            lat = torch.randn(V, 16, 2, H // 8, W // 8, generator=g)
            times = r.times.reshape(1, T).expand(V, T).clone()
            out.append(SceneResult(lat, r.video[None].expand(V, T, 3, H, W).clone(), r.trajectories, r.video_depth[0],
                                   times, r.video_depth))
        return out


def test_reversed_request_is_the_time_flip():
    item = FakeVideoSource().load([1])[0]
    fwd = item.request(5)
    rev = reversed_request(fwd)
    assert torch.equal(rev.video, fwd.video.flip(0)) and torch.equal(rev.video_depth, fwd.video_depth.flip(0))
    assert torch.equal(rev.image, fwd.video[-1]) and torch.equal(rev.depth, fwd.video_depth[-1])
    assert torch.equal(rev.times, 1 - torch.arange(T) / (T - 1.0))
    assert rev.trajectories is fwd.trajectories and rev.noise_seed == mix_seed(5, 1)
    assert torch.equal(rev.video_cameras.c2w, fwd.camera.c2w.expand(T, 4, 4))  # a static camera flips to itself
    with pytest.raises(ConfigError, match="dynamic"):
        reversed_request(SceneRequest(fwd.image, None, None, None, 0))


def test_dynamic_sdg_stores_both_directions(tmp_path):
    teacher = FakeVideoTeacher()
    rep = generate_sdg(tmp_path / "sdg", FakeVideoSource(), teacher, fake_depth, preset="fake", count=3, shard_size=2,
                       steps=1, progress=False, batch_size=2)
    assert rep.written == [0, 1] and rep.samples == 3
    assert [len(r.video) for r in teacher.requests] == [T] * 6  # two scenes forward, their reversals, then one more
    ds = ShardDataset(tmp_path / "sdg")
    assert ds.dynamic and ds.directions == ["forward", "reversed"] and len(ds) == 3
    s = ds[1]
    assert tuple(s["rgb"].shape) == (2 * V, T, 3, H, W) and tuple(s["times"].shape) == (2 * V, T)
    t = torch.arange(T) / (T - 1.0)
    assert torch.equal(s["times"][:V], t.expand(V, T)) and torch.equal(s["times"][V:], t.flip(0).expand(V, T))
    # frame f of a reversed trajectory is forward frame T-1-f (the fake teacher copies the input frame)
    assert torch.equal(s["rgb"][V:], s["rgb"][:V].flip(1))
    assert torch.equal(s["c2w"][V:], s["c2w"][:V]) and torch.equal(s["K"][V:], s["K"][:V])
    # the reversed half comes from its own noise seed
    assert not torch.equal(s["latents"][:V], s["latents"][V:])
    g = torch.Generator().manual_seed(mix_seed(mix_seed(0, 1), 1))
    assert torch.equal(s["latents"][V:], torch.randn(V, 16, 2, H // 8, W // 8, generator=g).half().float())
    # the input video (forward) and its depth are stored
    item = FakeVideoSource().load([1])[0]
    assert torch.allclose(s["input_video"], item.video, atol=0.5 / 255)
    assert torch.equal(s["input_video_depth"], item.video_depth) and torch.equal(s["input_depth"], item.video_depth[0])
    head = read_shard_header(tmp_path / "sdg" / "shard-000000.safetensors")
    assert head.format_version == 2 and head.dynamic and head.directions == ["forward", "reversed"]
    assert head.sample_ids == ["fake-dynamic:0:fake6+reversed", "fake-dynamic:1:fake6+reversed"]
    # rerun: nothing to do
    again = generate_sdg(tmp_path / "sdg", FakeVideoSource(), FakeVideoTeacher(), fake_depth, preset="fake", count=3,
                         shard_size=2, steps=1, progress=False)
    assert again.written == [] and again.skipped == [0, 1]


def test_merge_and_shard_checks():
    r = SceneResult(torch.zeros(V, 16, 2, 2, 4), torch.zeros(V, T, 3, H, W),
                    Cameras.from_fov(50.0, W, H, torch.eye(4).expand(V, T, 4, 4)), torch.ones(H, W))
    with pytest.raises(ConfigError, match="dynamic"):
        merge_directions(r, r)
    sample = SdgSample("a", 1, 2, torch.zeros(V, 16, 2, 2, 4), torch.zeros(V, T, H, W, 3, dtype=torch.uint8),
                       torch.eye(3).expand(V, T, 3, 3), torch.eye(4).expand(V, T, 4, 4), torch.ones(V, T, H, W),
                       torch.zeros(H, W, 3, dtype=torch.uint8), torch.ones(H, W), times=torch.zeros(V, T))
    with pytest.raises(ConfigError, match="input_video"):
        sample.tensors()


def test_version_1_static_shards_still_load(tmp_path):
    from safetensors.torch import load_file, save_file

    sample = SdgSample("s:1:x", 1, 2, torch.randn(V, 16, 2, 2, 4), torch.zeros(V, T, H, W, 3, dtype=torch.uint8),
                       torch.eye(3).expand(V, T, 3, 3), torch.eye(4).expand(V, T, 4, 4), torch.ones(V, T, H, W),
                       torch.zeros(H, W, 3, dtype=torch.uint8), torch.ones(H, W))
    path = write_shard(tmp_path / "shard-000000.safetensors", 0, [sample], {"x": 1})
    head, tensors = read_shard(path)
    assert head.format_version == 2 and not head.dynamic and head.directions == ["forward"]
    # the same shard as version 1 wrote it: no dynamic/directions in the header
    meta = json.loads(read_shard_header(path).to_json())
    for k in ("dynamic", "directions"):
        meta.pop(k)
    save_file(load_file(str(path)), str(path), metadata={HEADER_KEY: json.dumps(meta | {"format_version": 1})})
    old = read_shard_header(path)
    assert old.format_version == 1 and not old.dynamic and old.directions == ["forward"]
    ds = ShardDataset(tmp_path)
    assert not ds.dynamic and "times" not in ds[0] and torch.equal(ds[0]["latents"], tensors["latents"][0].float())
    # a dynamic header without its tensors is refused
    save_file(load_file(str(path)), str(path), metadata={HEADER_KEY: json.dumps(meta | {"dynamic": True})})
    with pytest.raises(FormatError, match="missing tensors"):
        read_shard_header(path)


def test_world_source_and_pipeline_teacher_on_a_micro_dynamic_world(tmp_path):
    from lyra.distill.sdg import PipelineTeacher
    from lyra.teacher.pipeline import TeacherPipeline
    from lyra.world import make_example

    src = WorldSource("test", "micro", gt_depth=True, store_gt=True, dynamic=True)
    assert src.settings()["dynamic"] and src.directions == ["forward", "reversed"] and src.name == "world-test-dynamic"
    (item,) = src.load([0])
    ex = make_example(0, "micro", dynamic=True, input_video=True)
    xs = slice(4, 84)
    Tm = 9
    assert torch.allclose(item.video, ex.input_video[..., xs], atol=1e-5)
    assert torch.allclose(item.video_depth, ex.input_depths[..., xs], rtol=1e-5)
    assert tuple(item.gt_depth.shape) == (12, Tm, 48, 80)
    assert torch.allclose(item.gt_depth[:6], ex.depths[..., xs], rtol=1e-5)  # forward: trajectory camera f at t_f
    # reversed frame 0: the input camera at time 1 = the last frame of the input video
    assert torch.allclose(item.gt_depth[6:, 0], ex.input_depths[-1, :, xs].expand(6, 48, 80), rtol=1e-5)
    pipe = TeacherPipeline.from_preset("tiny", dynamic=False)
    teacher = PipelineTeacher(pipe)
    req = item.request(mix_seed(0, 0))  # what generate_sdg draws for seed 0, world 0
    batch = teacher.generate([req, reversed_request(req)], steps=1)  # the batched path
    alone = teacher.generate([req], steps=1)[0]  # the pipeline call
    assert torch.allclose(batch[0].latents, alone.latents, atol=1e-4)
    assert torch.equal(batch[0].times, torch.arange(Tm).expand(6, Tm) / (Tm - 1.0))
    assert torch.equal(batch[1].times, batch[0].times.flip(1)) and torch.equal(alone.times, batch[0].times)
    rep = generate_sdg(tmp_path / "sdg", src, teacher, pipe.depth_estimator, preset="tiny", count=1, shard_size=1,
                       steps=1, progress=False)
    assert rep.samples == 1
    s = ShardDataset(tmp_path / "sdg")[0]
    assert tuple(s["latents"].shape) == (12, 16, 2, 6, 10)
    assert s["sample_id"] == "world-test-dynamic:0:world-gt+reversed"
    assert torch.allclose(s["latents"][:6], batch[0].latents.half().float(), atol=2e-3)
    assert torch.allclose(s["latents"][6:], batch[1].latents.half().float(), atol=2e-3)
    assert torch.allclose(s["gt_depth"], item.gt_depth.half().float(), rtol=1e-3)


def test_cli_dynamic_sdg(tmp_path, capsys):
    from lyra.cli import main

    out = tmp_path / "dyn"
    argv = ["sdg", str(out), "--dynamic", "--split", "test", "--count", "1", "--shard-size", "1", "--steps", "1",
            "--world-preset", "micro", "--gt-depth", "--no-progress", "--device", "cpu", "--no-motion-reversal"]
    assert main(argv) == 0
    assert "1 scenes in 1 new shards" in capsys.readouterr().out
    ds = ShardDataset(out)
    from lyra.distill.sdg import weights_digest
    from lyra.teacher.pipeline import dynamic_weights_dir

    # --dynamic picks the shipped dynamic teacher fine-tune (its hash is in the settings)
    assert ds.manifest["settings"]["weights"]["teacher"] == weights_digest(dynamic_weights_dir("tiny"))
    assert ds.dynamic and ds.directions == ["forward"] and ds.sample_ids == ["world-test-dynamic:0:world-gt"]
    s = ds[0]
    assert tuple(s["times"].shape) == (6, 9) and tuple(s["input_video"].shape) == (9, 3, 48, 80)
    assert ds.manifest["settings"]["source"] == {"kind": "world", "split": "test", "world_preset": "micro",
                                                 "trajectories": "world-gt", "dynamic": True,
                                                 "motion_reversal": False}
    assert main(["sdg", str(tmp_path / "x"), "--motion-reversal"]) == 2  # belongs with --dynamic
    assert main(["sdg", str(tmp_path / "x"), "--dynamic", "--images", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--motion-reversal belongs with --dynamic" in err and "drop --images" in err
