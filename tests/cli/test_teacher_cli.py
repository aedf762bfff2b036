"""``lyra teacher``: the output folder's files and values, determinism, camera paths, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lyra.cli import main
from lyra.errors import LyraError
from lyra.geometry.trajectories import TRAJECTORY_NAMES
from lyra.teacher import TeacherOutput
from lyra.teacher.denoiser import TeacherDenoiser

SIZE = ("--size", "48x80")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A randomly initialised tiny teacher in the diffusers layout (stands in for the shipped weights)."""
    folder = tmp_path_factory.mktemp("w") / "teacher_tiny"
    TeacherDenoiser.from_config("tiny", seed=0).save_pretrained(folder, torch.float16)
    return folder


@pytest.fixture
def photo(tmp_path):
    """A 210 × 120 RGB photo (wider than 80:48 → centre-cropped) and a matching z-depth .npy."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (120, 210, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "photo.png")
    depth = np.linspace(2.0, 5.0, 210, dtype=np.float32)[None].repeat(120, 0)
    np.save(tmp_path / "depth.npy", depth)
    return tmp_path / "photo.png", tmp_path / "depth.npy"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_video(path) -> np.ndarray:
    import imageio.v2 as imageio

    with imageio.get_reader(path) as r:
        return np.stack([np.asarray(f) for f in r])


def test_teacher_writes_videos_latents_and_record(tmp_path, capsys, weights, photo):
    image, depth = photo
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "teacher", str(image), "-o", str(out), "--weights", str(weights),
                                "--depth", str(depth), "--steps", "2", "--seed", "5", "--no-progress", *SIZE)
    assert code == 0, err
    names = {f"traj_{n}.mp4" for n in TRAJECTORY_NAMES}
    assert {p.name for p in out.iterdir()} == names | {"side_by_side.mp4", "latents.safetensors", "input.png",
                                                        "depth.png", "teacher.json"}
    assert "photo.png: 210x120, resized 210x120 → 80x48 (centre-crop 200x120)" in stdout
    for stage in ("load", "depth", "warp+encode", "denoise", "decode", "write"):
        assert f"  {stage}" in stdout

    rec = json.loads((out / "teacher.json").read_text())
    assert (rec["seed"], rec["steps"], rec["size"], rec["frames"]) == (5, 2, [48, 80], 17)
    assert rec["trajectories"] == list(TRAJECTORY_NAMES) and rec["peak_rss_mib"] > 0
    assert set(rec["timings_s"]) >= {"load", "depth", "trajectories", "warp_encode", "denoise", "decode", "total"}
    assert "diffusion_pytorch_model.safetensors" in rec["model"]["weights_sha256"]
    assert rec["versions"]["torch"] == torch.__version__

    lat = TeacherOutput.load(out / "latents.safetensors")
    assert lat.latents.shape == (6, 16, 3, 6, 10) and (lat.seed, lat.steps) == (5, 2)
    # input.png and the latents' image: the centre crop 200x120 resized to 80x48; the depth: the same crop
    from lyra.inputs import fit_depth_to_size, fit_to_size, load_image

    want, _ = fit_to_size(load_image(image), 48, 80)
    png = torch.from_numpy(np.array(Image.open(out / "input.png"))).permute(2, 0, 1).float() / 255
    assert torch.allclose(png, want, atol=0.5 / 255 + 1e-6)
    assert torch.allclose(lat.image, want)
    d = fit_depth_to_size(torch.from_numpy(np.load(depth)), 48, 80)
    assert torch.equal(lat.depth, d)
    assert np.array_equal(np.asarray(Image.open(out / "depth.png")).astype(np.float64),
                          np.round(d.numpy().astype(np.float64) * 1000))

    sbs = read_video(out / "side_by_side.mp4")
    assert sbs.shape == (17, 6 * 48, 2 * 80, 3)
    assert read_video(out / "traj_left.mp4").shape == (17, 48, 80, 3)

    # same seed → bit-identical latents
    out2 = tmp_path / "out2"
    assert run_cli(capsys, "teacher", str(image), "-o", str(out2), "--weights", str(weights), "--depth", str(depth),
                   "--steps", "2", "--seed", "5", "--no-progress", *SIZE)[0] == 0
    assert torch.equal(TeacherOutput.load(out2 / "latents.safetensors").latents, lat.latents)


def test_teacher_with_a_camera_path_and_the_depth_net(tmp_path, capsys, weights, photo):
    image, _ = photo
    eye = np.zeros((9, 3))
    eye[:, 0] = np.linspace(0, 0.4, 9)
    frames = []
    for e in eye:
        c2w = np.eye(4)
        c2w[:3, 3] = e
        frames.append({"c2w": c2w.tolist(), "fov_y_deg": 50.0})
    path = tmp_path / "slide.json"  # 160x96 intrinsics: the same 5:3 aspect, scaled to 80x48
    path.write_text(json.dumps({"format": "lyra-camera-path", "version": 1, "width": 160, "height": 96,
                                "frames": frames}))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "teacher", str(image), "-o", str(out), "--weights", str(weights),
                           "--trajectory", str(path), "--steps", "1", "--no-progress", *SIZE)
    assert code == 0, err
    assert (out / "traj_slide.mp4").is_file() and not (out / "traj_left.mp4").exists()
    lat = TeacherOutput.load(out / "latents.safetensors")
    assert lat.latents.shape == (1, 16, 2, 6, 10) and lat.names == ("slide",)
    assert torch.allclose(lat.input_camera.c2w, torch.eye(4)) and lat.cameras.shape == (1, 9)
    assert torch.allclose(lat.cameras.centers[0, :, 0], torch.linspace(0, 0.4, 9), atol=1e-6)
    assert abs(float(lat.cameras.fov_y_deg[0, 0]) - 50.0) < 1e-3
    assert read_video(out / "side_by_side.mp4").shape == (9, 48, 160, 3)


def test_bad_inputs_exit_non_zero_with_one_line_and_write_nothing(tmp_path, capsys, weights, photo):
    image, depth = photo
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    full = tmp_path / "full"
    full.mkdir()
    (full / "x.txt").write_text("keep me")
    np.save(tmp_path / "small_depth.npy", np.ones((10, 10), np.float32))
    bad_path = tmp_path / "ten.json"
    bad_path.write_text(json.dumps({"width": 80, "height": 48,
                                    "frames": [{"c2w": np.eye(4).tolist(), "fov_y_deg": 50}] * 10}))
    common = ["--weights", str(weights), "--depth", str(depth), "--steps", "1", "--no-progress"]
    cases = [
        ([str(tmp_path / "broken.jpg"), *common, *SIZE], "broken.jpg"),
        ([str(tmp_path / "nope.png"), *common, *SIZE], "no such file"),
        ([str(image), *common, "--size", "50x80"], "multiples of 16"),
        ([str(image), *common, "--size", "big"], "HEIGHTxWIDTH"),
        ([str(image), *common, *SIZE, "--steps", "0"], "--steps"),
        ([str(image), "--weights", str(tmp_path / "none"), "--depth", str(depth), *SIZE], "teacher weights"),
        ([str(image), "--weights", str(weights), "--depth", str(tmp_path / "small_depth.npy"), *SIZE], "10x10"),
        ([str(image), *common, *SIZE, "--trajectory", str(bad_path)], "1 + 8k"),
        ([str(image), "--weights", str(weights), "--depth", "hf:" + str(tmp_path / "nomodel"), *SIZE], "not a folder"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, words in cases:
        code, _, err = run_cli(capsys, "teacher", *argv[:1], "-o", str(tmp_path / "out"), *argv[1:])
        lines = err.strip().splitlines()
        assert code == LyraError.exit_code and len(lines) == 1, (argv, err)
        assert lines[0].startswith("lyra teacher: error:") and words in lines[0], (words, lines)
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temp folder left
    code, _, err = run_cli(capsys, "teacher", str(image), "-o", str(full), *common, *SIZE)
    assert code == LyraError.exit_code and "not an empty folder" in err
    assert [p.name for p in full.iterdir()] == ["x.txt"]
