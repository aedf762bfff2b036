"""Degenerate cameras and bad options are one-line errors, not tracebacks or wrong output (issue 23, 5 and 6)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import make_scene, one_line_error, run_cli

from lyra.errors import FormatError
from lyra.gaussians.io import save_gaussians
from lyra.geometry.trajectories import camera_path_dict, load_camera_path, orbit


@pytest.fixture
def splat(tmp_path):
    p = tmp_path / "scene.ply"
    save_gaussians(make_scene(), p)
    return p


def _path_file(tmp_path, c2w=None, K=None, name="path.json"):
    cams = orbit(torch.zeros(3), 3.0, 3, 48, 32)
    data = camera_path_dict(cams)
    if c2w is not None:
        data["frames"][1]["c2w"] = c2w
    if K is not None:
        data["frames"][1]["K"] = K
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


BAD_CAMERAS = {
    "singular": dict(c2w=[[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]),
    "scaled": dict(c2w=[[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]),
    "sheared": dict(c2w=[[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
    "mirrored": dict(c2w=[[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
    "bad last row": dict(c2w=[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]),
    "zero intrinsics": dict(K=[[0, 0, 0], [0, 0, 0], [0, 0, 0]]),
    "negative focal": dict(K=[[-40, 0, 24], [0, 40, 16], [0, 0, 1]]),
    "projective K": dict(K=[[40, 0, 24], [0, 40, 16], [0.1, 0, 1]]),
}


@pytest.mark.parametrize("case", list(BAD_CAMERAS))
def test_degenerate_cameras_are_refused(tmp_path, splat, case):
    path = _path_file(tmp_path, **BAD_CAMERAS[case])
    with pytest.raises(FormatError, match="camera 1"):
        load_camera_path(path)
    code, stdout, stderr = run_cli(["render", str(splat), "-o", str(tmp_path / "r.mp4"), "--trajectory", str(path),
                                    "--device", "cpu"])
    assert code == 2 and one_line_error(stderr) and "camera 1" in stderr
    assert not (tmp_path / "r.mp4").exists()


def test_valid_camera_paths_still_load(tmp_path):
    cams = load_camera_path(_path_file(tmp_path))
    assert len(cams) == 3
    # A nerfstudio file (OpenGL axes, a proper rotation) loads too.
    ns = {"w": 48, "h": 32, "fl_x": 40.0, "frames": [{"transform_matrix": torch.eye(4).tolist()}]}
    (tmp_path / "transforms.json").write_text(json.dumps(ns))
    assert len(load_camera_path(tmp_path / "transforms.json")) == 1


@pytest.mark.parametrize("payload", [
    {"width": 48, "height": 32, "frames": [{"c2w": torch.eye(4).tolist(), "fov_y_deg": "wide"}]},
    {"width": 48, "height": 32, "frames": [{"c2w": torch.eye(4).tolist(), "fov_y_deg": None}]},
    {"width": 100000, "height": 32, "frames": [{"c2w": torch.eye(4).tolist(), "fov_y_deg": 50}]},
    {"frames": [{"transform_matrix": torch.eye(4).tolist(), "w": "x", "h": 3, "fl_x": 1}]},
    {"frames": [{"transform_matrix": torch.eye(4).tolist(), "w": 4, "h": 3, "camera_angle_x": 0}]},
])
def test_malformed_camera_values_are_format_errors(tmp_path, payload):
    p = tmp_path / "p.json"
    p.write_text(json.dumps(payload))
    with pytest.raises(FormatError):
        load_camera_path(p)


@pytest.mark.parametrize("argv, words", [
    (["--fps", "0"], "--fps"),
    (["--fps", "-5"], "--fps"),
    (["--fps", "nan"], "--fps"),
    (["--radius", "nan"], "--radius"),
    (["--radius", "-1"], "--radius"),
    (["--elevation", "inf"], "--elevation"),
    (["--size", "20000x20000"], "--size"),
    (["--center", "0,nan,0"], "--center"),
    (["--up", "0,0,0"], "--up"),
    (["--device", "bogus"], "--device"),
    (["--device", "cuda:99"], "--device"),
])
def test_bad_render_options_are_one_line_errors(tmp_path, splat, argv, words):
    out = tmp_path / "r.mp4"
    code, stdout, stderr = run_cli(["render", str(splat), "-o", str(out), "--num-frames", "2"] + argv)
    assert code == 2 and one_line_error(stderr) and words in stderr, stderr
    assert not out.exists()


def test_fps_is_honoured_not_silently_replaced(tmp_path, splat):
    from lyra.media import probe_video

    out = tmp_path / "r.mp4"
    code, _, stderr = run_cli(["render", str(splat), "-o", str(out), "--num-frames", "3", "--size", "32x48", "--fps",
                               "10", "--device", "cpu"])
    assert code == 0, stderr
    assert math.isclose(probe_video(out).fps, 10.0)


def test_train_out_that_is_a_file(tmp_path):
    from lyra.errors import ConfigError
    from lyra.train import TrainConfig, Trainer
    from lyra.train.data import IndexedBatches

    f = tmp_path / "afile"
    f.write_text("x")
    model = torch.nn.Linear(2, 1)
    trainer = Trainer(model, lambda m, b: (m(b).sum(), {}), IndexedBatches(lambda i: torch.ones(1, 2)),
                      TrainConfig(out_dir=str(f), steps=1, progress=False, cpu=True))
    with pytest.raises(ConfigError, match="is a file"):
        trainer.fit()


def test_broken_pipe_is_quiet(tmp_path, splat):
    import subprocess
    import sys

    from helpers import SRC

    code = f"from lyra.cli import main; import sys; sys.exit(main(['info', {str(splat)!r}]))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    proc.stdout.close()  # the reader has gone before lyra writes (as `| head -3` leaves early): EPIPE
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err
