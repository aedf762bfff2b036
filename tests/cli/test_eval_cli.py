"""``lyra eval teacher``: files, dynamic worlds, bad inputs (metrics: tests/eval/test_teacher_benchmark.py)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from lyra.cli import main
from lyra.errors import LyraError
from lyra.teacher.denoiser import TeacherDenoiser


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("w") / "teacher_tiny"
    TeacherDenoiser.from_config("tiny", seed=0).save_pretrained(folder, torch.float16)
    return folder


def test_eval_teacher_writes_table_json_and_sheet(tmp_path, capsys, weights):
    out = tmp_path / "docs" / "teacher_eval"
    (tmp_path / "docs").mkdir()
    code = main(["eval", "teacher", "--worlds", "1", "--steps", "1", "--weights", str(weights), "--world-preset",
                 "micro", "--out", str(out), "--no-progress", "--device", "cpu"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["teacher_eval.json", "teacher_eval.md", "teacher_eval.png"]
    res = json.loads((out / "teacher_eval.json").read_text())
    assert res["setting"]["seeds"] == [0] and res["setting"]["depth"] == "exact"
    (row,) = res["worlds"]
    assert row["seed"] == 0
    for k, v in res["mean"].items():  # one world: the mean is that world
        assert v == pytest.approx(row[k]), k
    assert res["gain_db"]["overall"] == pytest.approx(row["psnr_teacher"] - row["psnr_warp"])
    # frames are 48 × 80 (micro, cropped to multiples of 16); the ceiling is a real tokenizer round trip
    assert (res["setting"]["height"], res["setting"]["width"], res["setting"]["frames"]) == (48, 80, 9)
    assert 10.0 < row["psnr_ceiling"] < 60.0 and 0.0 < row["ssim_ceiling"] < 1.0
    assert 0.0 < row["disoccluded_fraction"] < 1.0
    md = (out / "teacher_eval.md").read_text()
    assert "| 0 | " in md and "**mean**" in md and "Teacher − warp-only" in md
    sheet = Image.open(out / "teacher_eval.png")
    assert sheet.size == (4 * 80 + 3 * 2, 14 + 1 * (48 + 2))
    assert "mean PSNR teacher" in stdout

    # estimated depth: a separate set of files beside the first
    code = main(["eval", "teacher", "--worlds", "1", "--steps", "1", "--weights", str(weights), "--world-preset",
                 "micro", "--out", str(out), "--no-progress", "--depth", "tiny", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert (out / "teacher_eval_depth-tiny.md").is_file() and (out / "teacher_eval.md").read_text() == md
    assert json.loads((out / "teacher_eval_depth-tiny.json").read_text())["setting"]["depth"] == "tiny"


def test_eval_teacher_dynamic_worlds(tmp_path, capsys, weights):
    """--dynamic: dynamic test worlds through the video path (input camera's video, dynamic 3D cache); files
    suffixed _dynamic; the GT is the dynamic world's (its frames advance in time)."""
    out = tmp_path / "ev"
    code = main(["eval", "teacher", "--worlds", "1", "--steps", "1", "--weights", str(weights), "--world-preset",
                 "micro", "--out", str(out), "--no-progress", "--device", "cpu", "--dynamic"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["teacher_eval_dynamic.json", "teacher_eval_dynamic.md",
                                                    "teacher_eval_dynamic.png"]
    res = json.loads((out / "teacher_eval_dynamic.json").read_text())
    assert res["setting"]["dynamic"] is True and "--dynamic" in res["setting"]["command"]
    (row,) = res["worlds"]
    assert 5.0 < row["psnr_warp"] < 60.0 and 10.0 < row["psnr_ceiling"] < 60.0
    assert 0.0 < row["disoccluded_fraction"] < 1.0
    assert "dynamic test worlds" in stdout


def test_eval_bad_inputs(tmp_path, capsys, weights):
    cases = [
        (["--worlds", "0", "--weights", str(weights)], "--worlds"),
        (["--worlds", "5000", "--weights", str(weights)], "test split"),
        (["--steps", "0", "--weights", str(weights)], "--steps"),
        (["--weights", str(tmp_path / "none")], "teacher weights"),
        (["--weights", str(weights), "--world-preset", "huge"], "world preset"),
        (["--weights", str(weights), "--sheet-trajectory", "sideways"], "sheet-trajectory"),
        (["--weights", str(weights), "--out", str(tmp_path / "a" / "b")], "does not exist"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, words in cases:
        argv = [*argv, "--world-preset", "micro"] if "--world-preset" not in argv else argv
        out = ["--out", str(tmp_path / "out")] if "--out" not in argv else []
        code = main(["eval", "teacher", *argv, *out, "--no-progress"])
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == LyraError.exit_code and len(lines) == 1 and words in lines[0], (argv, err)
        assert lines[0].startswith("lyra eval: error:")
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert main(["eval"]) == 2  # no sub-command: help
    capsys.readouterr()
