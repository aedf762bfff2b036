"""``lyra tokenizer roundtrip``: reading videos and frame folders, frame-count errors, output video."""

from __future__ import annotations

import re

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from lyra.cli import main
from lyra.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tok"
    Tokenizer.from_config("tiny").save_pretrained(path)
    return path


def _frames(n, h=20, w=28):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return [np.roll(base, k, axis=1) for k in range(n)]


def test_roundtrip_gif_trim_and_output(tmp_path, weights, capsys):
    src = tmp_path / "clip.gif"
    imageio.mimsave(src, _frames(10), duration=40, loop=0)
    rc = main(["tokenizer", "roundtrip", str(src), "--weights", str(weights), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "10 frames" in err and "--trim" in err and "first 9" in err
    out = tmp_path / "rec.gif"
    rc = main(["tokenizer", "roundtrip", str(src), "--weights", str(weights), "--trim", "-o", str(out),
               "--device", "cpu"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "not a multiple of 8" in text and "latents (16, 2, 3, 4)" in text
    m = re.search(r"PSNR (\d+\.\d+) dB", text)
    assert m and 0 < float(m.group(1)) < 40  # untrained weights reconstruct poorly, but finitely
    rec = imageio.mimread(out)
    assert len(rec) == 9 and rec[0].shape[:2] == (20, 28)


def test_roundtrip_frame_folder(tmp_path, weights, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, f in enumerate(_frames(9, 16, 16)):
        imageio.imwrite(folder / f"f{k:03d}.png", f)
    assert main(["tokenizer", "roundtrip", str(folder), "--weights", str(weights), "--device", "cpu"]) == 0
    assert "9 frames 16×16" in capsys.readouterr().out


def test_roundtrip_errors(tmp_path, weights, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert main(["tokenizer", "roundtrip", str(bad), "--weights", str(weights)]) == 2
    assert "cannot read it as a video" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["tokenizer", "roundtrip", str(tmp_path / "empty"), "--weights", str(weights)]) == 2
    assert "no image frames" in capsys.readouterr().err
    assert main(["tokenizer", "roundtrip", str(tmp_path / "empty"), "--weights", str(tmp_path / "none")]) == 2
    assert main(["tokenizer", "roundtrip", str(bad), "-o", str(tmp_path / "x.txt")]) == 2
    assert "video file name" in capsys.readouterr().err
