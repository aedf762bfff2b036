"""``lyra generate``: files and values at 48 × 80 with a random tiny student; bad inputs write nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import lyra.pipeline as lp
from lyra.cli import main
from lyra.gaussians.io import load_gaussians

SIZE = ("--size", "48x80")
KEPT = int(6 * 17 * 6 * 10 * (1.0 - 0.8))  # 6120 Gaussians before pruning → 1223 kept


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    from lyra.student import LatentDecoder, decoder_config

    torch.manual_seed(0)
    cfg = decoder_config("tiny")
    return LatentDecoder(cfg).save_pretrained(tmp_path_factory.mktemp("s") / "student",
                          {"preset": "tiny", "tokenizer": "tiny", "single_view": False})


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (48, 88, 3), dtype=np.uint8)).save(path)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def count_frames(path) -> int:
    import imageio.v2 as imageio

    with imageio.get_reader(path) as r:
        return sum(1 for _ in r)


def test_generate_writes_scene_video_cameras_and_teacher_videos(tmp_path, capsys, student, photo):
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = run_cli(
        capsys, "generate", str(photo), "-o", str(out / "scene.ply"), "--video", str(out / "fly.mp4"),
        "--orbit-frames", "6", "--cameras", str(out / "cams.json"), "--teacher-videos", str(out / "teacher"),
        "--student", str(student), "--steps", "1", "--seed", "2", "--device", "cpu", *SIZE)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["cams.json", "fly.mp4", "scene.ply", "teacher"]
    g = load_gaussians(out / "scene.ply")
    meta = json.loads((out / "teacher" / "generate.json").read_text())
    iv = meta["input_view"]  # the tiny default: one Gaussian per pixel of the (48 × 80) photo in front
    assert iv["size"] == [48, 80] and iv["latent_kept"] + iv["latent_dropped"] == KEPT == 1223
    assert len(g) == iv["gaussians"] + iv["latent_kept"] == meta["gaussians"]
    assert count_frames(out / "fly.mp4") == 6 * 17 + 6  # six trajectories, then the orbit
    cams = json.loads((out / "cams.json").read_text())
    assert (cams["format"], cams["width"], cams["height"], len(cams["frames"])) == ("lyra-camera-path", 80, 48, 102)
    assert [t["name"] for t in cams["trajectories"]] == ["left", "right", "up", "zoom_out", "zoom_in", "spiral"]
    assert np.allclose(cams["frames"][0]["c2w"], np.eye(4), atol=1e-6)  # frame 0: the input view at the origin
    tv = sorted(p.name for p in (out / "teacher").iterdir())
    assert tv == ["generate.json"] + sorted(f"traj_{t['name']}.mp4" for t in cams["trajectories"])
    assert count_frames(out / "teacher" / "traj_left.mp4") == 17
    assert json.loads((out / "teacher" / "generate.json").read_text())["seed"] == 2
    for stage in ("load", "depth", "denoise", "plucker", "student", "decode_videos"):
        assert any(line.split()[:1] == [stage] for line in err.splitlines()), stage
    assert f"{len(g):,} Gaussians ({iv['latent_kept']:,} generated of 6,120" in stdout
    assert f"{iv['gaussians']:,} input-view Gaussians at 80x48" in stdout and "centre-crop 80x48" in stdout

    # the same seed gives the same scene
    code, _, err = run_cli(capsys, "generate", str(photo), "-o", str(tmp_path / "again.ply"), "--student",
                           str(student), "--steps", "1", "--seed", "2", "--device", "cpu", "--no-progress", *SIZE)
    assert code == 0, err
    assert err == ""  # --no-progress: silent stderr
    assert torch.equal(load_gaussians(tmp_path / "again.ply").means, g.means)


def _boom(*a, **k):
    raise AssertionError("no model may be loaded for a bad invocation")


@pytest.mark.parametrize("case", ["missing", "empty", "text", "dir", "corrupt", "ext", "video_ext", "cams_ext",
                                  "size", "no_input", "both", "prompt_no_model", "prompt_bad_model", "t2i_alone",
                                  "no_out_dir", "official_no_weights"])
def test_bad_invocations_write_nothing(tmp_path, capsys, monkeypatch, photo, case):
    monkeypatch.setattr(lp.ScenePipeline, "from_preset", _boom)
    work = tmp_path / "work"
    work.mkdir()
    img = str(photo)
    out = ["-o", str(work / "scene.ply")]
    extra: list[str] = []
    if case == "missing":
        img = str(work / "nope.png")
    elif case == "empty":
        (work / "e.png").write_bytes(b"")
        img = str(work / "e.png")
    elif case == "text":
        (work / "t.jpg").write_text("hello")
        img = str(work / "t.jpg")
    elif case == "dir":
        img = str(work)
    elif case == "corrupt":
        data = photo.read_bytes()
        (work / "c.png").write_bytes(data[:len(data) // 2])
        img = str(work / "c.png")
    elif case == "ext":
        out = ["-o", str(work / "scene.obj")]
    elif case == "video_ext":
        extra = ["--video", str(work / "v.avi")]
    elif case == "cams_ext":
        extra = ["--cameras", str(work / "c.txt")]
    elif case == "size":
        extra = ["--size", "50x80"]
    elif case == "no_input":
        img = None
    elif case == "both":
        extra = ["--prompt", "a room"]
    elif case == "prompt_no_model":
        img, extra = None, ["--prompt", "a room"]
    elif case == "prompt_bad_model":
        (work / "m").mkdir()
        (work / "m" / "model_index.json").write_text("{}")
        img, extra = None, ["--prompt", "a room", "--t2i-model", str(work / "m")]
    elif case == "t2i_alone":
        extra = ["--t2i-model", str(work)]
    elif case == "no_out_dir":
        out = ["-o", str(work / "sub" / "scene.ply")]
    elif case == "official_no_weights":
        extra = ["--preset", "official"]
    before = sorted(p.name for p in work.iterdir())
    argv = ["generate", *([img] if img else []), *out, *extra, "--no-progress", "--device", "cpu"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code != 0
    assert err.startswith("lyra generate: error:") and err.count("\n") == 1, err
    if case == "prompt_no_model":
        assert "--t2i-model DIR" in err
    assert sorted(p.name for p in work.iterdir()) == before  # nothing written


def test_missing_student_is_one_line(tmp_path, capsys, monkeypatch, photo):
    monkeypatch.setattr(lp, "student_weights_dir", lambda preset="tiny": tmp_path / "student_tiny")
    code, _, err = run_cli(capsys, "generate", str(photo), "-o", str(tmp_path / "s.ply"), "--no-progress", *SIZE)
    assert code == 2 and err.count("\n") == 1
    assert "student weights are missing" in err and "lyra train student" in err and "--student DIR" in err
    assert not (tmp_path / "s.ply").exists()


def test_help_teaches(capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for needle in ("Examples:", "lyra generate photo.jpg -o scene.ply", "--video", "--teacher-videos", "--t2i-model",
                   "--preset official --weights", "20 % most opaque"):
        assert needle in text, needle


def test_quantize_reaches_the_pipeline_and_is_image_only(tmp_path, capsys, monkeypatch, photo):
    """Issue 22's memory mode: --quantize goes to ScenePipeline.from_preset; a video input refuses it."""
    from lyra.errors import WeightsError

    seen = {}

    def capture(*a, **k):
        seen.update(k)
        raise WeightsError("stop here")

    monkeypatch.setattr(lp.ScenePipeline, "from_preset", capture)
    code, _, err = run_cli(capsys, "generate", str(photo), "-o", str(tmp_path / "s.ply"), "--quantize", "fp8",
                           "--device", "cpu", "--no-progress")
    assert code != 0 and "stop here" in err
    assert seen["quantize"] == "fp8"
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.full((48, 80, 3), 40 * i, np.uint8)).save(frames / f"{i:03d}.png")
    code, _, err = run_cli(capsys, "generate", str(frames), "-o", str(tmp_path / "out4d"), "--quantize", "int8",
                           "--device", "cpu", "--no-progress")
    assert code != 0 and "--quantize applies to image inputs" in err and err.count("\n") == 1
    assert not (tmp_path / "out4d").exists()
