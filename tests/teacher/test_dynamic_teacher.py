"""Dynamic teacher: the input video of dynamic worlds, the dynamic 3D cache (frame f warps input frame f),
the pipeline's video entry and its output file."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lyra.errors import ConfigError
from lyra.geometry.cameras import Cameras
from lyra.teacher.conditioning import warp_conditions, warp_conditions_dynamic

T, H, W = 9, 48, 80
DEPTH = 2.0


@pytest.fixture(scope="module")
def tokenizer():
    from lyra.tokenizer import Tokenizer

    return Tokenizer.from_preset("tiny")


def moving_square_video(step: int = 4, x0: int = 20, size: int = 8) -> torch.Tensor:
    """``[T, 3, H, W]``: a grey wall with a red ``size``-pixel square whose left edge is at ``x0 + step·f``."""
    video = torch.full((T, 3, H, W), 0.5)
    for f in range(T):
        x = x0 + step * f
        video[f, :, 20:20 + size, x:x + size] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    return video


def red_centroid_x(rgb: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean column of the valid red pixels of ``rgb [3, H, W]``."""
    red = (rgb[0] > 0.8) & (rgb[1] < 0.2) & mask
    assert red.any()
    return float(torch.nonzero(red)[:, 1].float().mean())


def test_dynamic_warp_takes_each_frame_from_its_own_input_frame(tokenizer):
    video = moving_square_video()
    depths = torch.full((T, H, W), DEPTH)
    cam = Cameras.from_fov(50.0, W, H)
    fx = float(cam.K[0, 0])
    inputs = Cameras(cam.K.expand(T, 3, 3), cam.c2w.expand(T, 4, 4), W, H)  # a static input camera
    # two trajectories: the input camera itself, and one moved 0.1 world units to the right at every frame
    c2w = torch.eye(4).expand(2, T, 4, 4).clone()
    c2w[1, :, 0, 3] = 0.1
    traj = Cameras(cam.K.expand(2, T, 3, 3), c2w, W, H)
    cond = warp_conditions_dynamic(video, depths, inputs, traj, tokenizer)
    assert tuple(cond.latents.shape) == (2, 16, 2, 6, 10) and tuple(cond.rgb.shape) == (2, T, 3, H, W)
    shift = fx * 0.1 / DEPTH  # a camera moved right sees the wall move left by f_x·b/z pixels
    for f in range(T):
        expected = 20 + 4 * f + 3.5  # centroid of the square's columns in input frame f
        assert red_centroid_x(cond.rgb[0, f], cond.mask[0, f]) == pytest.approx(expected, abs=0.05)
        assert red_centroid_x(cond.rgb[1, f], cond.mask[1, f]) == pytest.approx(expected - shift, abs=0.6)
    # the same camera at every frame reproduces the video itself (where valid)
    m = cond.mask[0]
    assert m.float().mean() > 0.95
    assert torch.allclose(cond.rgb[0].permute(1, 0, 2, 3)[:, m], video.permute(1, 0, 2, 3)[:, m], atol=1e-5)
    # the static cache (frame 0's points) keeps the square where frame 0 has it
    static = warp_conditions(video[0], depths[0], cam, traj, tokenizer)
    assert red_centroid_x(static.rgb[0, T - 1], static.mask[0, T - 1]) == pytest.approx(23.5, abs=0.05)
    # frame 0 of the dynamic cache is the static one
    assert torch.allclose(cond.rgb[:, 0], static.rgb[:, 0]) and torch.equal(cond.mask[:, 0], static.mask[:, 0])


def test_dynamic_warp_checks_shapes(tokenizer):
    video = moving_square_video()
    cam = Cameras.from_fov(50.0, W, H)
    inputs = Cameras(cam.K.expand(T, 3, 3), cam.c2w.expand(T, 4, 4), W, H)
    traj = Cameras(cam.K.expand(2, T, 3, 3), cam.c2w.expand(2, T, 4, 4), W, H)
    with pytest.raises(ValueError, match="per-frame depth"):
        warp_conditions_dynamic(video, torch.ones(T, H, W - 1), inputs, traj, tokenizer)
    with pytest.raises(ValueError, match="one per video frame"):
        warp_conditions_dynamic(video, torch.ones(T, H, W), inputs[:3], traj, tokenizer)
    with pytest.raises(ValueError, match="trajectories' frames"):
        warp_conditions_dynamic(video[:5], torch.ones(5, H, W), inputs[:5], traj, tokenizer)


def test_world_input_video():
    from lyra.world import make_example

    dyn = make_example(1_000_000, "micro", dynamic=True, input_video=True)
    plain = make_example(1_000_000, "micro", dynamic=True)
    assert plain.input_video is None and plain.input_depths is None
    assert torch.equal(dyn.videos, plain.videos) and torch.equal(dyn.depths, plain.depths)  # same batch render
    assert tuple(dyn.input_video.shape) == (T, 3, H, 88) and tuple(dyn.input_depths.shape) == (T, H, 88)
    assert torch.equal(dyn.input_video[0], dyn.image) and torch.equal(dyn.input_depths[0], dyn.depth)
    assert float((dyn.input_video[-1] - dyn.image).abs().amax()) > 0.1  # something moves in front of the camera
    static = make_example(1_000_000, "micro", input_video=True)
    assert torch.equal(static.input_video, static.image.expand(T, 3, H, 88))  # nothing moves in a static world


def test_pipeline_video_entry_and_file_round_trip(tmp_path, monkeypatch):
    import lyra.teacher.pipeline as tp
    from lyra.teacher.cache3d import PointCache, warp
    from lyra.teacher.pipeline import TeacherOutput, TeacherPipeline
    from lyra.world import make_example

    ex = make_example(1_000_000, "micro", dynamic=True, input_video=True)
    xs = slice(4, 84)
    video, depth, cams = ex.input_video[..., xs], ex.input_depths[..., xs], ex.cameras.crop(4, 0, W, H)
    shipped = tp.dynamic_weights_dir("tiny")
    assert shipped is not None and shipped.name == "teacher_tiny_dynamic"  # the shipped dynamic fine-tune
    assert TeacherPipeline.from_preset("tiny", dynamic=True).weights == shipped
    monkeypatch.setattr(tp, "dynamic_weights_dir", lambda preset="tiny": None)  # not shipped: static + warning
    with pytest.warns(UserWarning, match="no dynamic"):
        pipe = TeacherPipeline.from_preset("tiny", dynamic=True)
    assert pipe.weights == tp.teacher_weights_dir("tiny")
    out = pipe(video=video, video_depth=depth, trajectories=cams, steps=1, progress=False)
    assert out.dynamic and torch.equal(out.times, torch.arange(T) / (T - 1.0))
    assert tuple(out.latents.shape) == (6, 16, 2, 6, 10) and tuple(out.frame_times.shape) == (6, T)
    assert torch.equal(out.image, video[0]) and torch.equal(out.video_depth, depth)
    assert torch.equal(out.video_cameras.c2w, cams[0, 0].c2w.expand(T, 4, 4))  # static camera by default
    f = 6  # the conditions of frame f are input frame f's cache warped into the trajectories' camera f
    ref = warp(PointCache.from_depth(video[f], depth[f], cams[0, 0]), cams[:, f])
    assert torch.equal(out.conditions.mask[:, f], ref.mask)
    assert torch.allclose(out.conditions.rgb[:, f], ref.rgb.clamp(0, 1))
    # time-reversed input: frame f of every trajectory now warps input frame T - 1 - f
    rev = pipe(video=video.flip(0), video_depth=depth.flip(0), trajectories=cams, times=out.times.flip(0), steps=1,
               progress=False)
    assert torch.equal(rev.times, 1 - torch.arange(T) / (T - 1.0))
    ref = warp(PointCache.from_depth(video[T - 1 - f], depth[T - 1 - f], cams[0, 0]), cams[:, f])
    assert torch.equal(rev.conditions.mask[:, f], ref.mask)
    path = out.save(tmp_path / "dyn.safetensors")
    back = TeacherOutput.load(path)
    assert back.dynamic and torch.equal(back.times, out.times) and torch.equal(back.video, out.video)
    assert torch.equal(back.video_cameras.c2w, out.video_cameras.c2w) and torch.equal(back.latents, out.latents)
    with pytest.raises(ConfigError, match="not both"):
        pipe(video[0], video=video)
    with pytest.raises(ConfigError, match="trajectories have 9 frames but the video 5"):
        pipe(video=video[:5], video_depth=depth[:5], trajectories=cams)
    with pytest.raises(ConfigError, match="monotonic"):
        pipe(video=video, video_depth=depth, trajectories=cams, times=torch.rand(T))


def test_dynamic_fine_tune_starts_from_the_static_weights_and_records_it(tmp_path):
    import json

    from safetensors.torch import load_file

    from lyra.teacher.pipeline import teacher_weights_dir
    from lyra.train.recipes.teacher import main

    static = teacher_weights_dir("tiny")
    export = tmp_path / "export"
    common = ["--cpu", "--no-progress", "--world-preset", "micro", "--batch-size", "1",
              "--pool-worlds", "1", "--test-worlds", "1", "--eval-steps", "1", "--warmup", "1", "--ckpt-every", "1",
              "--log-every", "1", "--export-to", str(export), "--dynamic", "--init-from", str(static)]
    # learning rate 0: the export is the initial weights, so they came from --init-from
    assert main([*common, "--out", str(tmp_path / "a"), "--steps", "1", "--lr", "0"]) == 0
    a = load_file(static / "diffusion_pytorch_model.safetensors")
    b = load_file(export / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rec = json.loads((export / "training_record.json").read_text())
    assert rec["dynamic"] is True and rec["test"]["dynamic"] is True and rec["init_from"]["path"] == str(static)
    assert rec["init_from"]["weights_sha256"]["diffusion_pytorch_model.safetensors"]
    assert 0 < rec["test"]["psnr_teacher"] < 100
    # the weights it started from, tested on the same dynamic worlds: here the same weights, so the same figures
    assert rec["test_init"]["path"] == str(static) and rec["test_init"]["worlds"] == 1
    for key in ("psnr_teacher", "psnr_teacher_disoccluded", "psnr_warp"):
        assert rec["test_init"][key] == pytest.approx(rec["test"][key], abs=1e-6)
    # a real step: the weights move
    assert main([*common, "--out", str(tmp_path / "b"), "--steps", "1"]) == 0
    c = load_file(export / "diffusion_pytorch_model.safetensors")
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert main(["--out", str(tmp_path / "x"), "--cpu", "--init-from", str(tmp_path)]) != 0  # not a teacher


def test_dynamic_pool_conditions_on_the_input_video(tokenizer):
    from lyra.train.recipes.teacher import TeacherPool, prepare_example
    from lyra.world import load_example

    pool = TeacherPool(batch_size=1, tokenizer=tokenizer, preset="micro", pool_worlds=1, dynamic=True,
                       depth_scale=(1.0, 1.0), depth_noise=0.0)
    batch = pool(0)
    seed = pool._pool[0][0]
    ex = load_example(seed, "micro", "cpu", dynamic=True)
    assert ex.dynamic and tuple(ex.input_video.shape) == (T, 3, H, W)  # cropped to 48 x 80 like the frames
    target, cond = prepare_example(ex, tokenizer)
    # no augmentation: the pool holds exactly the dynamic conditions (in fp16) of the example
    assert torch.allclose(pool._pool[0][2].float(), cond.latents, atol=2e-3)
    _, static = prepare_example(dataclasses.replace(ex, input_video=None, input_depths=None), tokenizer)
    assert not torch.allclose(static.latents, cond.latents, atol=1e-2)  # frame 0's cache differs from the video's
    v = batch["latents"][0]
    assert any(torch.allclose(v, target[k], atol=2e-3) for k in range(6))
