"""One ScenePipeline for images and videos: its video run on injected models (ScenePipeline.for_video /
.video) is generate_dynamic's, the shipped tiny video models load through from_preset(dynamic=True), and a pipeline
refuses the kind of input its models do not take."""

from __future__ import annotations

import pytest
import torch

from lyra.pipeline import ScenePipeline, generate_dynamic
from lyra.scene import DynamicScene
from tests.dynamic_fakes import FakeStudent, FakeTeacher

T, H, W = 9, 32, 48


def video() -> tuple[torch.Tensor, torch.Tensor]:
    frames = (torch.arange(T, dtype=torch.float32) / 10).reshape(T, 1, 1, 1).expand(T, 3, H, W).contiguous()
    return frames, torch.linspace(0, 1, T)


def test_video_method_is_generate_dynamic():
    frames, times = video()
    depth = torch.full((T, H, W), 3.0)
    teacher = FakeTeacher()
    pipe = ScenePipeline.for_video(teacher, FakeStudent(teacher), device="cpu")
    assert pipe.dynamic and pipe.device == torch.device("cpu")
    a = pipe.video(frames, times, depth_maps=depth, output_times=3, seed=2, steps=1, progress=False)
    teacher2 = FakeTeacher()
    b = generate_dynamic(frames, times, teacher=teacher2, student=FakeStudent(teacher2), depth_maps=depth,
                         output_times=3, seed=2, steps=1, progress=False, device="cpu")
    assert isinstance(a, DynamicScene) and len(a) == len(b) == 3
    for ga, gb in zip(a.gaussians, b.gaussians, strict=True):
        torch.testing.assert_close(ga.means, gb.means)
        torch.testing.assert_close(ga.colors, gb.colors)
    drop = ("timings_s",)
    assert {k: v for k, v in a.metadata.items() if k not in drop} == {k: v for k, v in b.metadata.items()
                                                                       if k not in drop}
    stages: list[str] = []
    pipe.video(frames, times, depth_maps=depth, output_times=2, progress=lambda s, _: stages.append(s))
    assert stages == ["inputs", "depth", "teacher", "student", "input_view"]


def test_a_pipeline_refuses_the_other_kind_of_input():
    teacher = FakeTeacher()
    video_pipe = ScenePipeline.for_video(teacher, FakeStudent(teacher), device="cpu")
    with pytest.raises(TypeError, match="video"):
        video_pipe(torch.rand(3, H, W))
    image_pipe = ScenePipeline(object(), torch.nn.Linear(1, 1), None, dynamic=False)
    frames, times = video()
    with pytest.raises(TypeError, match="image models"):
        image_pipe.video(frames, times, depth_maps=torch.ones(T, H, W), progress=False)


def test_from_preset_loads_the_shipped_video_models():
    pipe = ScenePipeline.from_preset("tiny", dynamic=True, device="cpu")
    assert pipe.dynamic and pipe.preset == "tiny" and pipe.load_seconds > 0
    frames = torch.rand(9, 3, 48, 80)
    scene = pipe.video(frames, torch.linspace(0, 1, 9), output_times=2, steps=1, progress=False)
    assert len(scene) == 2 and scene.cameras.shape == (6, 9)
    n = 6 * 9 * 6 * 10  # V·T·h·w per time before pruning, 20 % kept
    assert scene.metadata["gaussians_before_prune"] == [n, n]
    assert [len(g) for g in scene.gaussians] == scene.metadata["gaussians"]
    # the tiny preset's default: the pixels of the nearest input frame (first and last) in front of the student's
    iv = scene.metadata["input_view"]
    assert iv["frames"] == [0, 8] and iv["gaussians"] == [48 * 80] * 2
    assert all(48 * 80 < len(g) <= 48 * 80 + 0.2 * n + 1 for g in scene.gaussians)
    # the two times show their own frames: rendered at the input camera, each is its frame
    from lyra.eval.baselines import render_views
    from lyra.eval.metrics import psnr
    from lyra.pipeline_inputs import static_cameras

    cam = static_cameras(9, 48, 80)[:1].reshape(1, 1)
    first, last = (render_views(g, cam, backend="torch").rgb[0, 0] for g in scene.gaussians)
    # (random-noise frames: the refitted colours cannot undo all of the splats' spill on white noise)
    assert float(psnr(first, frames[0])) > float(psnr(first, frames[8])) + 3
    assert float(psnr(last, frames[8])) > float(psnr(last, frames[0])) + 3


def test_models_breaking_their_protocol_are_bugs_not_user_errors():
    frames, times = video()
    depth = torch.ones(T, H, W)

    class NoOutput(FakeTeacher):
        def __call__(self, *a, **k):
            super().__call__(*a, **k)
            return "latents"

    class NotGaussians(FakeStudent):
        def __call__(self, out, t):
            return torch.zeros(3)

    with pytest.raises(TypeError, match="DynamicTeacherOutput"):
        ScenePipeline.for_video(NoOutput(), FakeStudent(FakeTeacher()), device="cpu").video(
            frames, times, depth_maps=depth, progress=False)
    teacher = FakeTeacher()
    with pytest.raises(TypeError, match="Gaussians"):
        ScenePipeline.for_video(teacher, NotGaussians(teacher), device="cpu").video(
            frames, times, depth_maps=depth, progress=False)
