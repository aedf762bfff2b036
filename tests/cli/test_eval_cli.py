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
    t = row["table"]
    for group in ("input", "near", "far"):
        assert set(t[group]) == {"teacher", "composite", "filled_warp", "warp", "ceiling"}
        for name, m in t[group].items():
            for k, v in m.items():  # one world: the mean is that world
                assert res["mean"][group][name][k] == pytest.approx(v, nan_ok=True), (group, name, k)
    g = res["gain_db"]
    near, far = t["near"], t["far"]
    expect = ((near["teacher"]["psnr_disoccluded"] - near["warp"]["psnr_disoccluded"])
              + (far["teacher"]["psnr_disoccluded"] - far["warp"]["psnr_disoccluded"])) / 2
    assert g["disoccluded_vs_warp"] == pytest.approx(expect)
    # frames are 48 × 80 (micro, cropped to multiples of 16); the ceiling is a real tokenizer round trip
    assert (res["setting"]["height"], res["setting"]["width"], res["setting"]["frames"]) == (48, 80, 9)
    assert 10.0 < far["ceiling"]["psnr"] < 60.0 and 0.0 < far["ceiling"]["ssim"] < 1.0
    assert 0.0 < far["teacher"]["disoccluded_fraction"] < 1.0
    # the warp is the truth where it sees (up to splatting): far better there than in its holes
    assert far["warp"]["psnr_visible"] > far["warp"]["psnr_disoccluded"] + 3
    assert far["filled_warp"]["psnr_disoccluded"] > far["warp"]["psnr_disoccluded"]  # inpainting beats white
    assert far["filled_warp"]["psnr_visible"] == pytest.approx(far["warp"]["psnr_visible"], abs=0.05)
    # the composite is the warp where it sees and the teacher in the holes
    assert far["composite"]["psnr_visible"] == pytest.approx(far["warp"]["psnr_visible"], abs=1e-6)
    assert far["composite"]["psnr_disoccluded"] == pytest.approx(far["teacher"]["psnr_disoccluded"], abs=1e-6)
    md = (out / "teacher_eval.md").read_text()
    assert "| 0 | " in md and "**Near views" in md and "Which system wins" in md and "| tokenizer ceiling |" in md
    sheet = Image.open(out / "teacher_eval.png")
    assert sheet.size == (7 * 80 + 6 * 2, 14 + 3 * (48 + 2))
    assert "PSNR teacher" in stdout and "holes: teacher - warp-only" in stdout

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
    far = row["table"]["far"]
    assert 5.0 < far["warp"]["psnr"] < 60.0 and 10.0 < far["ceiling"]["psnr"] < 60.0
    assert 0.0 < far["teacher"]["disoccluded_fraction"] < 1.0
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
