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
    assert s["groups"] == {"input": [0], "near": [1, 2], "far": [3, 4, 5, 6, 7, 8]}
    assert not s["student"].startswith("/")  # reports name files relative to the repo, never absolute
    (row,) = res["worlds"]
    table = row["table"]
    assert set(table) == {"input", "near", "far"}
    for group in ("input", "near", "far"):
        assert set(table[group]) == {"student", "latent", "filled_warp", "warp", "teacher"}
        for name, m in table[group].items():
            for k in ("ssim", "ms_ssim", "gmsd", "sharpness"):
                assert math.isfinite(m[k]), (group, name, k)
                assert res["mean"][group][name][k] == pytest.approx(m[k])  # one world: the mean is that world
            assert "lpips" not in m
            assert -1.0 < m["ssim"] <= 1.0 and m["gmsd"] >= 0.0 and m["sharpness"] > 0.0
        for name in ("student", "filled_warp", "warp"):  # systems with geometry have depth and coverage
            m = table[group][name]
            assert 0.0 <= m["coverage"] <= 1.0 and m["abs_rel"] >= 0.0 and 0.0 <= m["delta1"] <= 1.0
        assert "abs_rel" not in table[group]["teacher"]
        assert table[group]["filled_warp"]["coverage"] == 1.0
    for group in ("near", "far"):  # disoccluded pixels are reported off the input camera only
        assert 0.0 < table[group]["student"]["disoccluded_fraction"] < 1.0
    assert "psnr_disoccluded" not in table["input"]["student"]
    # exact depth: warp-only is the input exactly at the input camera (up to splatting), so its depth is right
    assert table["input"]["warp"]["abs_rel"] < 0.05
    assert res["winners"]["near"]["coverage"] == "filled_warp"
    assert row["max_camera_offset"] == pytest.approx(0.0, abs=1e-5)  # the teacher followed the GT cameras
    sc = row["scene"]
    lat = row["latent_scene"]  # the latent head's part: at most V·T·h·w pruned to 20 %
    assert lat["count"] == sc["count"] - 48 * 80 == row["input_view"]["latent_kept"]
    assert lat["count"] + row["input_view"]["latent_dropped"] == int(6 * 9 * 6 * 10 * (1 - lp.PRUNE_RATIO))
    assert row["input_view"]["gaussians"] == 48 * 80  # exact depth: no sky in this world, one per pixel
    # the input-view Gaussians reproduce the input far better than the latent head alone
    assert table["input"]["student"]["psnr"] > table["input"]["latent"]["psnr"] + 5.0
    assert 0.0 <= sc["at_scale_cap"] <= 1.0 and sc["scale_p05"] <= sc["scale_p50"] <= sc["scale_p95"]
    assert sc["input_depth_p05"] <= sc["input_depth_p50"] <= sc["input_depth_p95"]
    md = (out / "scene_eval_depth-exact.md").read_text()
    assert "**Input view" in md and "**Near views" in md and "**Far views" in md and "LPIPS omitted" in md
    assert "| filled warp |" in md and "Which system wins" in md and "| 0 | " in md
    assert f"{table['near']['warp']['ssim']:.3f}" in md
    assert "](scene_eval_depth-exact.png)" in md and "/root/" not in md and "/work/" not in md
    sheet = Image.open(out / "scene_eval_depth-exact.png")
    assert sheet.size == (7 * 80 + 6 * 2, 14 + 3 * (48 + 2))  # input | 5 systems | GT; 3 rows per world


def _micro_world():
    from lyra.world import make_example

    ex = make_example(0, "micro")
    left = (88 - 80) // 2  # the centre crop to multiples of 16
    return (ex.image[:, :, left:left + 80], ex.depth[:, left:left + 80], ex.cameras.crop(left, 0, 80, 48),
            ex.videos[..., left:left + 80])


def test_baselines_match_an_independent_computation(runs):
    import cv2
    import numpy as np

    from lyra.eval.metrics import psnr, ssim
    from lyra.gaussians.from_depth import gaussians_from_depth
    from lyra.render import render

    img, depth, cams, videos = _micro_world()
    g = gaussians_from_depth(img[None], depth[None], cams[0, 0].reshape(1))
    out = render(g, cams[:, 3:], backend="torch")  # the far group: frames 3..8
    rgb = out.rgb.clamp(0, 1).permute(0, 1, 4, 2, 3)  # [6, 6, 3, 48, 80]
    gt = videos[:, 3:]
    (row,) = runs[0][1]["worlds"]
    far = row["table"]["far"]
    assert far["warp"]["psnr"] == pytest.approx(float(psnr(rgb, gt).mean()), abs=1e-4)
    assert far["warp"]["ssim"] == pytest.approx(float(ssim(rgb, gt).mean()), abs=1e-5)
    assert row["warp_gaussians"] == int(torch.isfinite(depth).sum())
    # the filled warp: each frame inpainted with cv2 Telea (radius 3) where alpha < 0.5
    filled = []
    for f, a in zip(rgb.reshape(-1, 3, 48, 80), out.alpha.reshape(-1, 48, 80), strict=True):
        u8 = (f.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        hole = (a < 0.5).numpy()
        inp = cv2.inpaint(u8, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA) if hole.any() and not hole.all() else u8
        filled.append(torch.where(torch.from_numpy(hole), torch.from_numpy(inp).permute(2, 0, 1) / 255.0, f))
    filled = torch.stack(filled).reshape(rgb.shape)
    assert far["filled_warp"]["psnr"] == pytest.approx(float(psnr(filled, gt).mean()), abs=1e-3)
    assert far["filled_warp"]["psnr"] > far["warp"]["psnr"]  # inpainting beats white holes


def test_student_column_follows_the_student_weights(runs):
    (a,), (b,) = runs[0][1]["worlds"], runs[1][1]["worlds"]
    for grp in ("near", "far"):
        for name in ("warp", "filled_warp", "teacher"):  # same teacher, seed and depth
            assert a["table"][grp][name] == b["table"][grp][name], (grp, name)
        assert abs(a["table"][grp]["student"]["psnr"] - b["table"][grp]["student"]["psnr"]) > 1e-3
        assert a["table"][grp]["student"]["ssim"] != b["table"][grp]["student"]["ssim"]


def _boom(*a, **k):
    raise AssertionError("models must not be loaded for a bad option")


@pytest.mark.parametrize("extra, match", [
    (["--worlds", "0"], "--worlds must be >= 1"),
    (["--worlds", "100000"], "the test split holds"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--seed", "-1"], "--seed must be"),
    (["--depth", "sharp"], "--depth must be"),
    (["--sheet-trajectory", "sideways"], "--sheet-trajectory must be one of"),
    (["--sheet-worlds", "0"], "--sheet-worlds must be >= 1"),
    (["--first", "-1"], "--first must be >= 0"),
    (["--first", "100000"], "the test split holds"),
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


def test_markdown_of_a_synthetic_result_with_lpips():
    from lyra.eval.baselines import Views
    from lyra.eval.groups import group_metrics, winners
    from lyra.eval.scene_benchmark import markdown_report

    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 5, 3, 24, 32, generator=g) * 0.5 + 0.25
    systems = {"student": Views(gt + 0.1), "filled_warp": Views(gt - 0.01), "warp": Views(gt - 0.02),
               "teacher": Views(gt.clone())}
    table = group_metrics(systems, gt, lpips=lambda x, y: (x - y).abs().mean(dim=(1, 2, 3)))
    assert table["near"]["student"]["psnr"] == pytest.approx(20.0, abs=1e-3)  # constant offset c: −20·log10(c)
    assert table["far"]["filled_warp"]["psnr"] == pytest.approx(40.0, abs=1e-3)
    assert table["far"]["student"]["lpips"] == pytest.approx(0.1, abs=1e-5)
    stats = {k: 1.0 for k in ("count", "scale_p05", "scale_p50", "scale_p95", "at_scale_cap", "depth_p05",
                              "depth_p50", "depth_p95", "input_depth_p05", "input_depth_p50", "input_depth_p95",
                              "opacity_p50")}
    row = {"seed": 0, "family": "indoor", "table": table, "scene": stats}
    res = {"setting": {"worlds": 1, "seeds": [0], "depth": "estimate", "steps": 1, "seed": 0, "world_preset": "micro",
                       "frames": 5, "height": 24, "width": 32, "sheet_trajectory": "left", "lpips": True},
           "mean": table, "winners": winners(table), "scene": stats, "worlds": [row]}
    md = markdown_report(res)
    assert "LPIPS ↓" in md and "LPIPS omitted" not in md and "median-scaled" in md
    assert "| teacher | – | **1.000** |" in md  # identical frames: no finite PSNR, the best SSIM in bold
    # the winners table names the best system per metric (identical frames have no finite PSNR to compete with)
    assert "| far | filled warp | teacher | teacher | teacher |" in md


def test_merge_joins_parts_of_a_split_run(runs, tmp_path, capsys):
    import copy
    import shutil

    from lyra.errors import ConfigError
    from lyra.eval.scene_benchmark import merge_results

    out, res = runs[0]
    part_b = copy.deepcopy(res)
    (row,) = part_b["worlds"]
    row["seed"] = 1
    row["table"]["near"]["student"]["psnr"] += 2.0
    merged = merge_results([part_b, res])  # any order: rows come out in seed order
    assert [r["seed"] for r in merged["worlds"]] == [0, 1] and merged["setting"]["worlds"] == 2
    assert merged["mean"]["near"]["student"]["psnr"] == pytest.approx(
        res["worlds"][0]["table"]["near"]["student"]["psnr"] + 1.0)
    assert merged["winners"] and merged["scene"]["count"] == res["scene"]["count"]
    with pytest.raises(ConfigError, match="overlap"):
        merge_results([res, res])
    with pytest.raises(ConfigError, match="student_sha256"):
        merge_results([res, runs[1][1]])  # another student: not one benchmark
    # the CLI: --merge DIR DIR → one report in --out, the first part's sheet kept
    b = tmp_path / "b"
    shutil.copytree(out, b)
    (b / "scene_eval_depth-exact.json").write_text(json.dumps(part_b))
    joined = tmp_path / "joined"
    code = main(["eval", "scene", "--depth", "exact", "--merge", str(out), str(b), "--out", str(joined)])
    assert code == 0, capsys.readouterr().err
    got = json.loads((joined / "scene_eval_depth-exact.json").read_text())
    assert got["setting"]["seeds"] == [0, 1] and "joined with --merge" in got["setting"]["command"]
    assert (joined / "scene_eval_depth-exact.png").read_bytes() == (out / "scene_eval_depth-exact.png").read_bytes()
    code = main(["eval", "scene", "--depth", "exact", "--merge", str(tmp_path / "none"), "--out", str(joined)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "no scene_eval_depth-exact.json" in err
