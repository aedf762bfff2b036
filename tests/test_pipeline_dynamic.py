"""lyra.pipeline.generate_dynamic with injected fake models: stage wiring, per-frame depth and its scale
alignment, output times, pruning, input checks before any model runs, and the dynamic-weights errors."""

from __future__ import annotations

import pytest
import torch

import lyra.pipeline as pd
from lyra.errors import ConfigError, WeightsError
from lyra.geometry.cameras import Cameras
from lyra.pipeline import (
    DynamicWeightsMissing,
    align_depth_scales,
    generate_dynamic,
    output_time_grid,
    resolve_dynamic_weights,
    static_cameras,
)
from lyra.pipeline import generate_dynamic as reexported
from lyra.scene import DynamicScene
from lyra.teacher.depth import DepthResult
from tests.dynamic_fakes import FakeStudent, FakeTeacher

T, H, W = 9, 32, 48


def video() -> tuple[torch.Tensor, torch.Tensor]:
    """Frame f is flat grey level f/10 (so a Gaussian's colour tells which frame it came from)."""
    frames = (torch.arange(T, dtype=torch.float32) / 10).reshape(T, 1, 1, 1).expand(T, 3, H, W).contiguous()
    return frames, torch.linspace(0, 1, T)


class DriftingDepth:
    """A depth 'estimator' whose scale drifts: frame with grey g gets depth (2 + x) · (1 + 10 g)."""

    def __call__(self, image: torch.Tensor) -> DepthResult:
        b = image.shape[0]
        ramp = 2.0 + torch.linspace(0, 1, image.shape[-1]).expand(b, image.shape[-2], -1)
        depth = ramp * (1 + 10 * image[:, 0, :1, :1])
        return DepthResult(depth, torch.ones_like(depth))


def run(**kw):
    teacher = FakeTeacher()
    student = FakeStudent(teacher)
    frames, times = video()
    args = {"teacher": teacher, "student": student, "depth": DriftingDepth(), "progress": False,
            "output_times": 5, "seed": 4, "steps": 2, "input_view": False, **kw}
    return generate_dynamic(frames, times, **args), teacher, student


def test_stages_are_wired_and_values_follow_time():
    scene, teacher, student = run()
    assert isinstance(scene, DynamicScene) and reexported is generate_dynamic
    torch.testing.assert_close(scene.times, torch.linspace(0, 1, 5))
    assert student.asked == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    (call,) = teacher.calls
    assert call["seed"] == 4 and call["steps"] == 2 and call["frames"].shape == (T, 3, H, W)
    # Static camera: identity poses, the default 50° camera, one per frame.
    torch.testing.assert_close(call["cameras"].c2w, torch.eye(4).expand(T, 4, 4))
    torch.testing.assert_close(call["cameras"].K, static_cameras(T, H, W).K)
    # Depth per frame, its drifting scale aligned to frame 0: every frame now has frame 0's depth.
    torch.testing.assert_close(call["depth"], call["depth"][:1].expand(T, H, W), rtol=1e-5, atol=1e-5)
    assert scene.metadata["depth_scales"] == pytest.approx([1 / (1 + f) for f in range(T)], rel=1e-5)
    # Output time k shows the frame nearest to it (grey f/10 with f = 0, 2, 4, 6, 8), pruned to the 20 % most opaque.
    n = (H // 2) * (W // 2)
    for k, g in enumerate(scene.gaussians):
        assert len(g) == int(n * 0.2) == scene.metadata["gaussians"][k]
        torch.testing.assert_close(g.colors, torch.full_like(g.colors, 2 * k / 10))
        assert float(g.opacities.min()) >= 0.05 + 0.9 * (1 - 0.2) - 1e-3  # the most opaque fifth
    assert scene.metadata["gaussians_before_prune"] == [n] * 5
    # The teacher's trajectories and frame times become the scene's cameras.
    assert scene.cameras.shape == (6, T) and scene.names[0] == "left"
    torch.testing.assert_close(scene.camera_times, torch.linspace(0, 1, T))
    m = scene.metadata
    assert (m["kind"], m["frames"], m["size"], m["input_cameras"]) == ("dynamic", T, [H, W],
                                                                       "static (identity pose, 50° FoV)")
    assert m["weights"] == {"teacher": "fake"} and {"inputs", "depth", "teacher", "student", "total"} <= set(
        m["timings_s"])


def test_input_view_gaussians_of_the_nearest_frame_at_every_time():
    """With input-view Gaussians (the tiny preset's default) each output time starts with one Gaussian per pixel of
    its nearest input frame, at that frame's depth and in its colours, so the 4D scene shows the video's changes
    (here each frame is another grey); the student's Gaussians follow, none in front of the frame's surface."""
    frames, _ = video()
    depth = torch.full((T, H, W), 3.0)
    depth[8] = 5.0
    scene, _, _ = run(depth_maps=depth, input_view=None)  # None: the preset's default (tiny: on)
    iv = scene.metadata["input_view"]
    assert iv["frames"] == [0, 2, 4, 6, 8] and iv["gaussians"] == [H * W] * 5 and iv["size"] == [H, W]
    assert scene.metadata["gaussians"] == [len(g) for g in scene.gaussians]
    cam = static_cameras(T, H, W)[0]
    for k, g in enumerate(scene.gaussians):
        pixels = g[: H * W]
        _, z = cam.project(pixels.means)
        torch.testing.assert_close(z, torch.full_like(z, 5.0 if k == 4 else 3.0), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(pixels.colors.mean(0), torch.full((3,), 2 * k / 10), atol=0.02, rtol=0)
        _, z_rest = cam.project(g[H * W:].means)
        assert bool((z_rest > (5.0 if k == 4 else 3.0)).all())
    off, _, _ = run(depth_maps=depth, input_view=False)
    assert off.metadata["input_view"] is None and len(off.gaussians[0]) < len(scene.gaussians[0])


def test_given_depth_cameras_times_and_no_pruning(tmp_path):
    frames, _ = video()
    depth = torch.full((T, H, W), 3.0)
    depth[4] = 6.0  # given depth is used as it is (no alignment)
    cams = Cameras.from_fov(60.0, W, H, torch.eye(4).expand(T, 4, 4).clone())
    cams.c2w[:, 0, 3] = torch.linspace(0, 0.8, T)  # a camera sliding right
    scene, teacher, _ = run(depth_maps=depth, input_cameras=cams, output_times=[0.1, 0.5], prune_ratio=0.0,
                            metadata={"input": {"source": "clip.mp4"}})
    call = teacher.calls[0]
    assert torch.equal(call["depth"], depth) and torch.equal(call["cameras"].c2w, cams.c2w)
    assert scene.metadata["input_cameras"] == "given" and scene.metadata["depth"] == "given"
    assert scene.metadata["depth_scales"] is None and scene.metadata["input"] == {"source": "clip.mp4"}
    assert len(scene.gaussians[0]) == (H // 2) * (W // 2)  # prune_ratio 0 keeps all
    torch.testing.assert_close(scene.times, torch.tensor([0.1, 0.5]))
    back = DynamicScene.load(scene.save(tmp_path / "s"))
    torch.testing.assert_close(back.gaussians[1].means, scene.gaussians[1].means)


def test_real_depth_net_runs_on_every_frame():
    scene, teacher, _ = run(depth="tiny", output_times=2)
    d = teacher.calls[0]["depth"]
    assert d.shape == (T, H, W) and torch.isfinite(d).all() and (d > 0).all()
    assert scene.metadata["depth"] == "tiny" and len(scene.metadata["depth_scales"]) == T


@pytest.mark.parametrize("case", ["shape", "times_len", "times_order", "times_range", "too_many_times",
                                  "bad_times", "cameras", "depth_shape", "steps", "seed", "prune"])
def test_bad_inputs_fail_before_any_model_runs(case):
    frames, times = video()
    kw: dict = {}
    if case == "shape":
        frames = frames[:, :2]
    elif case == "times_len":
        times = times[:-1]
    elif case == "times_order":
        times = times.flip(0)
    elif case == "times_range":
        times = times * 2
    elif case == "too_many_times":
        kw["output_times"] = T + 1
    elif case == "bad_times":
        kw["output_times"] = [0.5, 0.2]
    elif case == "cameras":
        kw["input_cameras"] = static_cameras(T - 1, H, W)
    elif case == "depth_shape":
        kw["depth_maps"] = torch.ones(T, H, W + 1)
    elif case == "steps":
        kw["steps"] = 0
    elif case == "seed":
        kw["seed"] = -1
    elif case == "prune":
        kw["prune_ratio"] = 1.0
    teacher = FakeTeacher()
    with pytest.raises(ConfigError):
        generate_dynamic(frames, times, teacher=teacher, student=FakeStudent(teacher), depth=DriftingDepth(),
                         progress=False, **kw)
    assert teacher.calls == []


def test_output_time_grid_and_depth_alignment():
    assert output_time_grid(1).tolist() == [0.0] and output_time_grid(3).tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(ConfigError, match="at most 2"):
        output_time_grid(3, num_frames=2)
    d = torch.rand(3, 4, 5) + 1
    aligned, s = align_depth_scales(torch.stack([d[0], 2 * d[0], 0.5 * d[0]]))
    torch.testing.assert_close(s, torch.tensor([1.0, 0.5, 2.0]))
    torch.testing.assert_close(aligned, d[0].expand(3, 4, 5))
    sky = d.clone()
    sky[1] = float("inf")  # no shared valid pixel: the frame keeps its scale
    assert align_depth_scales(sky)[1][1] == 1.0


def test_missing_dynamic_weights_say_so(monkeypatch, tmp_path):
    monkeypatch.setattr(pd, "_weights_root", lambda: tmp_path / "weights")
    frames, times = video()
    with pytest.raises(DynamicWeightsMissing, match="dynamic weights not found: no dynamic teacher and no dynamic "
                                                    "student") as e:
        generate_dynamic(frames, times, depth=DriftingDepth(), progress=False)
    assert "teacher_tiny_dynamic" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DynamicWeightsMissing, match="official preset needs --weights"):
        resolve_dynamic_weights("official")
    # Folders present but not valid weights: a different error (the loader reads them).
    (tmp_path / "weights" / "teacher_tiny_dynamic").mkdir(parents=True)
    (tmp_path / "weights" / "teacher_tiny_dynamic" / "config.json").write_text("{}")
    with pytest.raises(DynamicWeightsMissing, match="no dynamic student"):
        resolve_dynamic_weights("tiny")
    (tmp_path / "weights" / "student_tiny_dynamic").mkdir()
    (tmp_path / "weights" / "student_tiny_dynamic" / "student.json").write_text("{}")
    found = resolve_dynamic_weights("tiny")
    assert found.teacher.name == "teacher_tiny_dynamic" and found.student.name == "student_tiny_dynamic"
    with pytest.raises(WeightsError, match="not 'lyra-student'") as e:
        generate_dynamic(frames, times, depth=DriftingDepth(), progress=False)
    assert not isinstance(e.value, DynamicWeightsMissing)


def test_tiny_falls_back_to_the_static_teacher(monkeypatch, tmp_path):
    monkeypatch.setattr(pd, "_weights_root", lambda: tmp_path)
    (tmp_path / "teacher_tiny").mkdir()
    (tmp_path / "teacher_tiny" / "config.json").write_text("{}")
    (tmp_path / "student_tiny_dynamic").mkdir()
    (tmp_path / "student_tiny_dynamic" / "student.json").write_text("{}")
    found = resolve_dynamic_weights("tiny")
    assert found.teacher.name == "teacher_tiny" and found.static_teacher  # it reads the static tokenizer
    (tmp_path / "teacher_tiny_dynamic").mkdir()  # a dynamic fine-tune, when shipped, wins
    (tmp_path / "teacher_tiny_dynamic" / "config.json").write_text("{}")
    found = resolve_dynamic_weights("tiny")
    assert found.teacher.name == "teacher_tiny_dynamic" and not found.static_teacher


def test_weights_folder_layouts(tmp_path):
    root = tmp_path / "official"
    (root / "teacher").mkdir(parents=True)
    (root / "teacher" / "config.json").write_text("{}")
    with pytest.raises(DynamicWeightsMissing, match=r"no dynamic student in .*lyra_dynamic.pt"):
        resolve_dynamic_weights("official", root)
    (root / "lyra_dynamic.pt").write_bytes(b"x")
    (root / "tokenizer").mkdir()
    found = resolve_dynamic_weights("official", root)
    assert (found.teacher, found.tokenizer, found.student) == (root / "teacher", root / "tokenizer",
                                                              root / "lyra_dynamic.pt")
    with pytest.raises(DynamicWeightsMissing, match="does not exist"):
        resolve_dynamic_weights("official", root, student=tmp_path / "nope.pt")
    with pytest.raises(DynamicWeightsMissing, match="not a folder"):
        resolve_dynamic_weights("tiny", tmp_path / "missing")


def test_load_dynamic_models_runs_the_real_models(tmp_path):
    """load_dynamic_models with a weights folder (the shipped static teacher as teacher/, a seeded tiny decoder
    exported as a dynamic student) → generate_dynamic end to end: one Gaussian set per output time, pixel-aligned
    counts, finite values; the student output moves with the target time (its time embedding is not zero)."""
    import shutil

    from lyra.student import LatentDecoder, decoder_config
    from lyra.teacher.pipeline import teacher_weights_dir

    root = tmp_path / "w"
    root.mkdir()
    shutil.copytree(teacher_weights_dir("tiny"), root / "teacher")
    torch.manual_seed(0)
    model = LatentDecoder(decoder_config("tiny"))
    with torch.no_grad():  # the time embeddings are zero-initialised: give them a value so time matters
        for p in model.patch_time_embed_tgt.parameters():
            p.normal_(0, 0.05)
    model.save_pretrained(root / "student_dynamic",
                   {"preset": "tiny", "tokenizer": "tiny", "single_view": False, "dynamic": True})
    teacher, student = pd.load_dynamic_models("tiny", weights=root, device="cpu")
    frames = torch.rand(9, 3, 48, 80)
    scene = generate_dynamic(frames, torch.linspace(0, 1, 9), teacher=teacher, student=student,
                             depth_maps=torch.full((9, 48, 80), 3.0), output_times=[0.0, 1.0], steps=1,
                             prune_ratio=0.0, progress=False, input_view=False)  # the student's own output
    assert len(scene.gaussians) == 2 and scene.cameras.shape == (6, 9)
    n = 6 * 9 * (48 // 8) * (80 // 8)  # one Gaussian per latent pixel of every frame of every view
    assert [len(g) for g in scene.gaussians] == [n, n]
    a, b = scene.gaussians
    assert torch.isfinite(a.means).all() and torch.isfinite(b.means).all()
    assert (a.means - b.means).abs().max() > 1e-4  # the target time changes the scene
    assert scene.metadata["student_path"] == {"ssd": "torch", "attention": "sdpa"}  # what the decoder ran (CPU)
    # A static export is refused with a one-line reason.
    model.save_pretrained(root / "static", {"preset": "tiny", "tokenizer": "tiny"})
    with pytest.raises(WeightsError, match="static student"):
        pd.load_dynamic_models("tiny", weights=root, student=root / "static", device="cpu")
    # A student of another latent channel count than the teacher's tokenizer is refused in one line at load time.
    from dataclasses import replace

    LatentDecoder(replace(decoder_config("tiny"), latent_channels=8)).save_pretrained(
        root / "c8", {"preset": "tiny", "tokenizer": "tiny", "single_view": False, "dynamic": True})
    with pytest.raises(WeightsError, match=r"^the student reads 8-channel latents, the dynamic teacher's tokenizer "
                                           r"\(.*c8\) makes 16$"):
        pd.load_dynamic_models("tiny", weights=root, student=root / "c8", device="cpu")
