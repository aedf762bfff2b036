"""``lyra generate VIDEO -o DIR/``: the 4D branch end to end with fake dynamic models (files and values), the
"dynamic weights not found" message, and bad invocations that write nothing and load no model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lyra.pipeline as pd  # noqa: E402
from lyra.cli import main  # noqa: E402
from lyra.geometry.cameras import Cameras  # noqa: E402
from lyra.geometry.trajectories import camera_path_dict  # noqa: E402
from lyra.media import write_video  # noqa: E402
from lyra.scene import DynamicScene  # noqa: E402
from tests.dynamic_fakes import FakeStudent, FakeTeacher  # noqa: E402

SIZE = ("--size", "32x48")
N_SRC = 20  # frames in the test video; the tiny preset resamples to 17


def grey_video(path: Path, n: int = N_SRC) -> Path:
    """Frame i is flat grey 10 + 12·i (so a Gaussian's colour says which frame it came from)."""
    frames = np.stack([np.full((48, 64, 3), 10 + 12 * i, np.uint8) for i in range(n)])
    return write_video(frames, path, fps=10)


@pytest.fixture
def clip(tmp_path):
    return grey_video(tmp_path / "clip.mp4")


@pytest.fixture
def fakes(monkeypatch):
    teacher = FakeTeacher()
    student = FakeStudent(teacher, stride=4)

    def load(*args, **kwargs):
        return teacher, student

    monkeypatch.setattr(pd, "load_dynamic_models", load)
    return teacher, student


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def count_frames(path) -> int:
    import imageio.v2 as imageio

    with imageio.get_reader(path) as r:
        return sum(1 for _ in r)


def test_video_to_4d_folder_flythrough_and_cameras(tmp_path, capsys, clip, fakes):
    teacher, student = fakes
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = run_cli(capsys, "generate", str(clip), "-o", str(out / "scene4d"), "--times", "3", "--video",
                                str(out / "fly.mp4"), "--orbit-frames", "4", "--cameras", str(out / "cams.json"),
                                "--depth", "tiny", "--seed", "5", "--steps", "2", "--device", "cpu", *SIZE)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["cams.json", "fly.mp4", "scene4d"]
    assert sorted(p.name for p in (out / "scene4d").iterdir()) == ["cameras.json", "index.json", "t000.ply",
                                                                   "t001.ply", "t002.ply"]
    (call,) = teacher.calls
    assert call["frames"].shape == (17, 3, 32, 48) and call["seed"] == 5 and call["steps"] == 2
    assert student.asked == pytest.approx([0.0, 0.5, 1.0])
    scene = DynamicScene.load(out / "scene4d")
    assert scene.times.tolist() == [0.0, 0.5, 1.0] and scene.cameras.shape == (6, 17)
    # time 0 → the first video frame, time 1 → the last (grey 10 and 10 + 12·19), time 0.5 → the middle
    greys = [float(g.colors.mean()) * 255 for g in scene.gaussians]
    assert greys[0] == pytest.approx(10, abs=3) and greys[2] == pytest.approx(10 + 12 * 19, abs=3)
    assert greys[1] == pytest.approx(10 + 12 * 9.5, abs=8)
    m = json.loads((out / "scene4d" / "index.json").read_text())["metadata"]
    assert m["input"]["source_frames"] == N_SRC and len(m["input"]["indices"]) == 17 and m["seed"] == 5
    assert m["depth"] == "tiny" and m["input_cameras"].startswith("static")
    assert count_frames(out / "fly.mp4") == 6 * 17 + 4  # six trajectories, then the orbit
    cams = json.loads((out / "cams.json").read_text())
    assert len(cams["frames"]) == 6 * 17 and len(cams["camera_times"]) == 17
    assert "3 times ×" in stdout and "from 17 of 20 frames" in stdout and "time advancing" in stdout
    for stage in ("video", "depth", "teacher", "student"):
        assert any(line.split()[:1] == [stage] for line in err.splitlines()), stage

    # Again into the same folder, fewer times and another format: the old scene is replaced whole.
    code, _, err = run_cli(capsys, "generate", str(clip), "-o", str(out / "scene4d"), "--times", "0,1", "--format",
                           "spz", "--device", "cpu", "--no-progress", *SIZE)
    assert code == 0 and err == ""
    assert sorted(p.name for p in (out / "scene4d").iterdir()) == ["cameras.json", "index.json", "t000.spz",
                                                                   "t001.spz"]


def test_input_cameras_per_video_frame_are_resampled(tmp_path, capsys, clip, fakes):
    teacher, _ = fakes
    c2w = torch.eye(4).repeat(N_SRC, 1, 1)
    c2w[:, 0, 3] = torch.arange(N_SRC, dtype=torch.float32)  # camera i at x = i
    (tmp_path / "poses.json").write_text(json.dumps(camera_path_dict(Cameras.from_fov(50.0, 64, 48, c2w))))
    code, _, err = run_cli(capsys, "generate", str(clip), "-o", str(tmp_path / "s"), "--input-cameras",
                           str(tmp_path / "poses.json"), "--times", "2", "--device", "cpu", "--no-progress", *SIZE)
    assert code == 0, err
    cams = teacher.calls[0]["cameras"]
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert cams.c2w[:, 0, 3].tolist() == index["metadata"]["input"]["indices"]  # the poses of the chosen frames
    assert (cams.width, cams.height) == (48, 32) and index["metadata"]["input_cameras"] == "given"


def test_missing_dynamic_weights_is_one_line(tmp_path, capsys, clip, monkeypatch):
    monkeypatch.setattr(pd, "_weights_root", lambda: tmp_path / "no_weights")
    code, _, err = run_cli(capsys, "generate", str(clip), "-o", str(tmp_path / "scene4d"), "--device", "cpu",
                           "--no-progress", *SIZE)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("lyra generate: error: dynamic weights not found: no dynamic teacher and no dynamic student")
    assert not (tmp_path / "scene4d").exists()


def _boom(*a, **k):
    raise AssertionError("no model may be loaded for a bad invocation")


@pytest.mark.parametrize("case", ["ply_output", "file_output", "busy_folder", "video_ext", "cams_ext", "too_few",
                                  "not_video", "times_order", "times_text", "times_many", "trajectory",
                                  "teacher_videos", "depth_file", "cams_count", "size", "start", "no_out_dir",
                                  "image_with_times", "image_with_format", "empty_frames_dir"])
def test_bad_invocations_write_nothing(tmp_path, capsys, monkeypatch, clip, case):
    monkeypatch.setattr(pd, "load_dynamic_models", _boom)
    work = tmp_path / "work"
    work.mkdir()
    src = str(clip)
    out = ["-o", str(work / "scene4d")]
    extra: list[str] = []
    if case == "ply_output":
        out = ["-o", str(work / "scene.ply")]
    elif case == "file_output":
        (tmp_path / "taken").write_text("x")
        out = ["-o", str(tmp_path / "taken")]
    elif case == "busy_folder":
        (tmp_path / "photos").mkdir()
        (tmp_path / "photos" / "me.jpg").write_bytes(b"keep")
        out = ["-o", str(tmp_path / "photos")]
    elif case == "video_ext":
        extra = ["--video", str(work / "fly.avi")]
    elif case == "cams_ext":
        extra = ["--cameras", str(work / "cams.txt")]
    elif case == "too_few":
        src = str(grey_video(tmp_path / "short.mp4", 5))
    elif case == "not_video":
        (tmp_path / "junk.mp4").write_text("hello" * 100)
        src = str(tmp_path / "junk.mp4")
    elif case == "times_order":
        extra = ["--times", "0.5,0.2"]
    elif case == "times_text":
        extra = ["--times", "many"]
    elif case == "times_many":
        extra = ["--times", "18"]
    elif case == "trajectory":
        extra = ["--trajectory", str(tmp_path / "path.json")]
    elif case == "teacher_videos":
        extra = ["--teacher-videos", str(work / "tv")]
    elif case == "depth_file":
        extra = ["--depth", str(tmp_path / "d.npy")]
    elif case == "cams_count":
        (tmp_path / "poses.json").write_text(json.dumps(camera_path_dict(Cameras.from_fov(50.0, 64, 48,
                                                                                          torch.eye(4)[None]))))
        extra = ["--input-cameras", str(tmp_path / "poses.json")]
    elif case == "size":
        extra = ["--size", "50x80"]
    elif case == "start":
        extra = ["--start", "-1"]
    elif case == "no_out_dir":
        out = ["-o", str(work / "sub" / "scene4d")]
    elif case == "image_with_times":
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "p.png")
        src, out, extra = str(tmp_path / "p.png"), ["-o", str(work / "s.ply")], ["--times", "3"]
    elif case == "image_with_format":
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "p.png")
        src, out, extra = str(tmp_path / "p.png"), ["-o", str(work / "s.ply")], ["--format", "spz"]
    elif case == "empty_frames_dir":
        (tmp_path / "frames").mkdir()
        src = str(tmp_path / "frames")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    argv = ["generate", src, *out, *extra, "--no-progress", "--device", "cpu"]
    if case != "size":
        argv += list(SIZE)
    code, _, err = run_cli(capsys, *argv)
    assert code != 0
    assert err.startswith("lyra generate: error:") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written
    if case == "too_few":
        assert "5 frames; 17 are needed" in err
    if case == "ply_output":
        assert "give a folder such as scene4d/" in err


def test_help_teaches_the_video_input(capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for needle in ("video input (4D Gaussians)", "lyra generate clip.mp4 -o scene4d/", "--times", "--input-cameras",
                   "--format", "lyra view scene4d/", "timestamps"):
        assert needle in text, needle
