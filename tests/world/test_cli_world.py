"""``lyra world``: the promised files, their contents, and clean refusals."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from lyra.cli import main
from lyra.geometry.cameras import Cameras
from lyra.world import make_example


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_world_writes_every_file(tmp_path, capsys):
    out = tmp_path / "w"
    code, text, _ = run(capsys, "world", "--seed", "3", "-o", str(out), "--preset", "micro", "--device", "cpu")
    assert code == 0 and "world seed 3" in text
    names = {p.name for p in out.iterdir()}
    videos = [f"traj{i}_{n}.mp4" for i, n in enumerate(("left", "right", "up", "zoom_out", "zoom_in", "spiral"))]
    assert names == {"input.png", "input_depth.png", "input_depth.npy", "cameras.json", *videos}
    ref = make_example(3, "micro")
    img = np.asarray(Image.open(out / "input.png"))
    assert img.shape == (48, 88, 3) and img.dtype == np.uint8
    assert np.abs(img.astype(float) / 255 - ref.image.permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6
    depth = np.load(out / "input_depth.npy")
    assert np.array_equal(depth, ref.depth.numpy())
    meta = json.loads((out / "cameras.json").read_text())
    assert meta["seed"] == 3 and meta["family"] == ref.family and meta["frames"] == 9
    assert meta["center_depth"] == pytest.approx(ref.center_depth)
    png = np.asarray(Image.open(out / "input_depth.png"))
    assert png.dtype == np.uint16
    scale = meta["input_depth_png"]["units_per_metre"]
    fin = np.isfinite(depth)
    assert np.all(png[~fin] == 0) and np.all(png[fin] > 0)
    assert np.abs(png[fin] / scale - depth[fin]).max() <= 0.5 / scale + 1e-6
    cams = Cameras.from_dict(meta["cameras"])
    assert cams.shape == (6, 9) and torch.allclose(cams.c2w, ref.cameras.c2w)
    assert meta["input_camera"]["c2w"] == ref.cameras.c2w[0, 0].tolist()
    frames = iio.imread(out / "traj5_spiral.mp4")
    assert frames.shape == (9, 48, 88, 3)
    # lossy H.264, but close to the ground truth
    assert np.abs(frames.astype(float) / 255 - ref.videos[5].permute(0, 2, 3, 1).numpy()).mean() < 0.05
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_world_dynamic_records_times(tmp_path, capsys):
    out = tmp_path / "d"
    code, _, _ = run(capsys, "world", "--seed", "4", "-o", str(out), "--preset", "micro", "--dynamic",
                     "--family", "outdoor", "--device", "cpu")
    assert code == 0
    meta = json.loads((out / "cameras.json").read_text())
    assert meta["dynamic"] and meta["family"] == "outdoor"
    assert meta["times"] == pytest.approx([f / 8 for f in range(9)])


def test_world_refuses_bad_output_paths(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "dir"
    code, _, err = run(capsys, "world", "--seed", "1", "-o", str(missing), "--preset", "micro")
    assert code != 0 and "does not exist" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    code, _, err = run(capsys, "world", "--seed", "1", "-o", str(afile), "--preset", "micro")
    assert code != 0 and "not a folder" in err and afile.read_text() == "x"
    code, _, err = run(capsys, "world", "--seed", "-5", "-o", str(tmp_path / "n"), "--preset", "micro")
    assert code != 0 and "--seed" in err and not (tmp_path / "n").exists()
