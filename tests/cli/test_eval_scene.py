"""``lyra eval scene``: files written with finite values, warp-only parity with an independent computation,
the student column follows the student weights, bad options fail in one line before anything is written.

Micro world preset (9 frames, 48 × 88 cropped to 48 × 80), one world, one sampler step, random tiny students.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

import lyra.pipeline as lp
from lyra.cli import main
from lyra.distill.losses import LPIPS_ENV

ARGS = ["eval", "scene", "--worlds", "1", "--steps", "1", "--world-preset", "micro", "--no-progress", "--device",
        "cpu"]


def _export_student(folder, torch_seed: int):
    from lyra.student import LatentDecoder, decoder_config

    torch.manual_seed(torch_seed)
    cfg = decoder_config("tiny")
    return LatentDecoder(cfg).save_pretrained(folder,
                          {"preset": "tiny", "tokenizer": "tiny", "single_view": False})


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    root = tmp_path_factory.mktemp("students")
    return _export_student(root / "a", 0), _export_student(root / "b", 1)


@pytest.fixture(scope="module")
def runs(students, tmp_path_factory):
    """Two exact-depth runs on test world 0 that differ only in the student; (out dir, JSON) each."""
    mp = pytest.MonkeyPatch()
    mp.delenv(LPIPS_ENV, raising=False)  # no LPIPS column here, whatever the machine has
    res = []
    try:
        for i, s in enumerate(students):
            out = tmp_path_factory.mktemp(f"run{i}") / "scene_eval"
            code = main([*ARGS, "--depth", "exact", "--student", str(s), "--out", str(out)])
            assert code == 0
            res.append((out, json.loads((out / "scene_eval_depth-exact.json").read_text())))
    finally:
        mp.undo()
    return res


def test_writes_table_json_and_sheet(runs, capsys):
    out, res = runs[0]
    assert sorted(p.name for p in out.iterdir()) == ["scene_eval_depth-exact.json", "scene_eval_depth-exact.md",
                                                     "scene_eval_depth-exact.png"]
    s = res["setting"]
    assert (s["seeds"], s["depth"], s["world_preset"], s["steps"]) == ([0], "exact", "micro", 1)
    assert (s["frames"], s["height"], s["width"], s["lpips"]) == (9, 48, 80, False)
    (row,) = res["worlds"]
    for k in ("psnr_student", "psnr_warp", "psnr_teacher", "ssim_student", "ssim_warp", "ssim_teacher"):
        assert math.isfinite(row[k]), k
        assert res["mean"][k] == pytest.approx(row[k]), k  # one world: the mean is that world
    assert not any(k.startswith("lpips_") for k in row)
    for w in ("student", "warp", "teacher"):
        assert 0.0 < row[f"psnr_{w}"] < 60.0 and -1.0 < row[f"ssim_{w}"] < 1.0
    assert row["gain_db"] == pytest.approx(row["psnr_student"] - row["psnr_warp"])
    g = res["gain_db"]
    assert g["student_vs_warp"] == pytest.approx(row["gain_db"]) and g["target"] == 3.0
    assert g["met"] == (row["gain_db"] >= 3.0)
    assert row["max_camera_offset"] == pytest.approx(0.0, abs=1e-5)  # the teacher followed the GT cameras
    assert row["gaussians"] == int(6 * 9 * 6 * 10 * (1 - lp.PRUNE_RATIO))  # V·T·h·w pruned to 20 %
    md = (out / "scene_eval_depth-exact.md").read_text()
    assert "| 0 | " in md and "**mean**" in md and "LPIPS omitted" in md
    assert ("+ 3 dB: met**" in md) == g["met"] and ("+ 3 dB: missed**" in md) == (not g["met"])
    assert f"{row['psnr_warp']:.2f}" in md and f"{row['psnr_student']:.2f}" in md
    sheet = Image.open(out / "scene_eval_depth-exact.png")
    assert sheet.size == (5 * 80 + 4 * 2, 14 + 1 * (48 + 2))


def test_warp_only_matches_an_independent_computation(runs):
    from lyra.eval.metrics import psnr, ssim
    from lyra.gaussians.from_depth import gaussians_from_depth
    from lyra.render import render
    from lyra.world import make_example

    ex = make_example(0, "micro")
    left = (88 - 80) // 2  # the centre crop to multiples of 16
    img, depth = ex.image[:, :, left:left + 80], ex.depth[:, left:left + 80]
    cams = ex.cameras.crop(left, 0, 80, 48)
    gt = ex.videos[:, 1:, :, :, left:left + 80]
    g = gaussians_from_depth(img[None], depth[None], cams[0, 0].reshape(1))
    rgb = render(g, cams[:, 1:], backend="torch").rgb.clamp(0, 1).permute(0, 1, 4, 2, 3)  # [6, 8, 3, 48, 80]
    p = psnr(rgb, gt)
    assert torch.isfinite(p).all()
    (row,) = runs[0][1]["worlds"]
    assert row["psnr_warp"] == pytest.approx(float(p.mean()), abs=1e-4)
    assert row["ssim_warp"] == pytest.approx(float(ssim(rgb, gt).mean()), abs=1e-5)
    assert row["warp_gaussians"] == int(torch.isfinite(depth).sum())


def test_student_column_follows_the_student_weights(runs):
    (a,), (b,) = runs[0][1]["worlds"], runs[1][1]["worlds"]
    for k in ("psnr_warp", "ssim_warp", "psnr_teacher", "ssim_teacher"):  # same teacher, seed and depth
        assert a[k] == b[k], k
    assert abs(a["psnr_student"] - b["psnr_student"]) > 1e-3
    assert a["ssim_student"] != b["ssim_student"]


def _boom(*a, **k):
    raise AssertionError("models must not be loaded for a bad option")


@pytest.mark.parametrize("extra, match", [
    (["--worlds", "0"], "--worlds must be >= 1"),
    (["--worlds", "100000"], "the test split holds"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--seed", "-1"], "--seed must be"),
    (["--depth", "sharp"], "--depth must be"),
    (["--sheet-trajectory", "sideways"], "--sheet-trajectory must be one of"),
    (["--world-preset", "huge"], "unknown world preset"),
])
def test_bad_options_fail_in_one_line(tmp_path, capsys, monkeypatch, extra, match):
    monkeypatch.setattr(lp.ScenePipeline, "from_preset", _boom)
    out = tmp_path / "out"
    code = main([*ARGS, "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and match in err, err
    assert not out.exists()


def test_bad_paths_and_missing_student(tmp_path, capsys, monkeypatch):
    code = main([*ARGS, "--out", str(tmp_path / "missing" / "out")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "does not exist" in err
    assert not (tmp_path / "missing").exists()
    # no shipped student and none given: the clear error of the pipeline, nothing written
    monkeypatch.setattr(lp, "student_weights_dir", lambda preset="tiny": tmp_path / "student_tiny")
    out = tmp_path / "out"
    code = main([*ARGS, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "lyra train student" in err, err
    code = main([*ARGS, "--out", str(out), "--student", str(tmp_path / "nope")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "no such file" in err, err
    assert not out.exists()


def test_scene_metrics_closed_forms_and_lpips_column():
    from lyra.eval.scene_benchmark import markdown_report, scene_metrics

    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 3, 16, 20, generator=g) * 0.5 + 0.25
    preds = {"student": gt + 0.1, "warp": gt - 0.01, "teacher": gt.clone()}
    m = scene_metrics(preds, gt, lpips=lambda x, y: (x - y).abs().mean(dim=(1, 2, 3)))
    assert m["psnr_student"] == pytest.approx(20.0, abs=1e-3)  # constant offset c: −20·log10(c)
    assert m["psnr_warp"] == pytest.approx(40.0, abs=1e-3)
    assert math.isnan(m["psnr_teacher"]) and m["ssim_teacher"] == pytest.approx(1.0)  # identical: no finite PSNR
    assert m["lpips_student"] == pytest.approx(0.1, abs=1e-5) and m["lpips_teacher"] == 0.0
    row = {"seed": 0, "family": "indoor", **m, "gain_db": m["psnr_student"] - m["psnr_warp"]}
    res = {"setting": {"worlds": 1, "seeds": [0], "depth": "estimate", "steps": 1, "seed": 0, "world_preset": "micro",
                       "frames": 3, "height": 16, "width": 20, "sheet_trajectory": "left", "lpips": True},
           "mean": dict(row), "gain_db": {"student_vs_warp": -20.0, "target": 3.0, "met": False}, "worlds": [row]}
    md = markdown_report(res)
    assert "LPIPS student | LPIPS warp-only | LPIPS teacher |" in md and "LPIPS omitted" not in md
    assert "| 0 | indoor | 20.00 | 40.00 | – | -20.00 |" in md and "+ 3 dB: missed**" in md
