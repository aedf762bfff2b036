"""Teacher training entry point: end-to-end run/resume/export, depth augmentation, the training pool."""

from __future__ import annotations

import json
import math

import torch

from lyra.train.recipes.teacher import augment_depth, main


def test_augment_depth_scale_and_noise():
    depth = torch.full((64, 64), 2.0)
    depth[0, 0] = math.inf
    out = augment_depth(depth, torch.Generator().manual_seed(0), noise=0.0)
    s = float(out[1, 1] / 2.0)
    assert 0.8 <= s <= 1.25 and torch.allclose(out[1:], depth[1:] * s) and math.isinf(out[0, 0])
    # same generator: same scale; the smooth field has std ~ sigma and small neighbour differences
    noisy = augment_depth(depth, torch.Generator().manual_seed(0), noise=0.05)
    log_ratio = (noisy[1:] / (depth[1:] * s)).log()
    assert 0.02 < float(log_ratio.std()) < 0.08
    iid = augment_depth(depth, torch.Generator().manual_seed(0), noise=0.0, pixel_noise=0.05)
    iid_log = (iid[1:] / (depth[1:] * s)).log()
    assert abs(float(iid_log.std()) - 0.05) < 0.01
    # smooth: neighbour steps are a small fraction of i.i.d. ones (which would read as depth edges)
    assert float(log_ratio.diff(dim=1).abs().mean()) < 0.2 * float(iid_log.diff(dim=1).abs().mean())


def test_train_resume_export_end_to_end(tmp_path):
    out, export = tmp_path / "run", tmp_path / "export"
    common = ["--out", str(out), "--steps", "2", "--cpu", "--no-progress", "--world-preset", "micro",
              "--batch-size", "1", "--pool-worlds", "1", "--test-worlds", "1", "--eval-steps", "1",
              "--warmup", "1", "--ckpt-every", "1", "--log-every", "1", "--export-to", str(export)]
    assert main([*common, "--until", "1", "--no-export"]) == 0
    assert not export.exists()
    assert main([*common, "--resume"]) == 0
    record = json.loads((export / "training_record.json").read_text())
    assert record["steps"] == 2 and record["complete"]
    assert "--resume" in record["command"]
    t = record["test"]
    for k in ("psnr_teacher", "psnr_warp", "psnr_teacher_disoccluded", "psnr_warp_disoccluded"):
        assert math.isfinite(t[k]) and 0 < t[k] < 100
    from safetensors.torch import load_file

    from lyra.teacher.denoiser import TeacherDenoiser

    weights = load_file(export / "diffusion_pytorch_model.safetensors")
    assert weights and all(v.dtype == torch.float16 for v in weights.values())
    model = TeacherDenoiser.from_pretrained(export)
    assert model.num_parameters() == record["parameters"]
    # the export says which tokenizer it reads (default: the tiny preset's), and its channel count
    assert model.tokenizer_name == "tiny" and model.latent_channels == 16
    assert record["data"]["tokenizer"] == "tiny" and record["data"]["latent_channels"] == 16
    # a second export replaces the first one in place
    assert main([*common, "--resume"]) == 0
    assert json.loads((export / "training_record.json").read_text())["steps"] == 2


def test_pool_batches_are_deterministic_and_conditioned():
    from lyra.tokenizer import Tokenizer
    from lyra.train.recipes.teacher import TeacherPool

    tok = Tokenizer.from_preset("tiny")
    a = TeacherPool(batch_size=2, tokenizer=tok, preset="micro", pool_worlds=1)
    b = TeacherPool(batch_size=2, tokenizer=tok, preset="micro", pool_worlds=1)
    assert b.prefill(3) == 1 and b.prefill(3) == 0  # prepared once, then held
    x, y = a(3), b(3)
    assert x["noise_seed"] == y["noise_seed"]
    for k in ("latents", "cond", "mask"):
        assert torch.equal(x[k], y[k])
    # micro 48x88 frames are centre-cropped to 48x80: latents [B, 16, 2, 6, 10]
    assert tuple(x["latents"].shape) == (2, 16, 2, 6, 10) and tuple(x["mask"].shape) == (2, 1, 2, 6, 10)
    # the augmented depth keeps (almost) all of the warp coverage that the exact depth gives
    from lyra.train.recipes.teacher import prepare_example
    from lyra.world import load_example

    _, exact = prepare_example(load_example(a._pool[0][0], "micro", "cpu"), tok)
    assert float(a._pool[0][3].float().mean()) > 0.95 * float(exact.mask_latents.mean())
    assert 0.0 <= float(x["mask"].min()) and float(x["mask"].max()) <= 1.0
    # fill: the same worlds, masks and targets, the conditions encoded from the filled warp (a "filled" teacher's)
    f = TeacherPool(batch_size=2, tokenizer=tok, preset="micro", pool_worlds=1, fill=True)(3)
    assert torch.equal(f["latents"], x["latents"]) and torch.equal(f["mask"], x["mask"])
    assert not torch.allclose(f["cond"], x["cond"], atol=1e-2)
    _, filled = prepare_example(load_example(a._pool[0][0], "micro", "cpu"), tok, fill=True)
    assert torch.equal(filled.mask_latents, exact.mask_latents) and torch.equal(filled.rgb, exact.rgb)


def test_user_errors_fail_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--out", str(out), "--cpu", "--world-preset", "nope"]) == 2
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert main(["--out", str(out), "--cpu", "--export-to", str(taken)]) != 0
    err = capsys.readouterr().err
    assert "unknown world preset" in err and "not a teacher export" in err
    assert not out.exists() and (taken / "notes.txt").read_text() == "mine"
    # --init-from a teacher of another latent channel count than the tokenizer's
    from lyra.teacher.denoiser import TeacherDenoiser

    c8 = TeacherDenoiser.from_config("tiny", latent_channels=8).save_pretrained(tmp_path / "c8")
    assert main(["--out", str(tmp_path / "run8"), "--cpu", "--world-preset", "micro", "--init-from", str(c8)]) == 2
    assert f"--init-from {c8}: a teacher of 8-channel latents, tokenizer tiny makes 16" in capsys.readouterr().err
    # --anchor / --prediction other than what the --init-from export was trained with
    warp = TeacherDenoiser.from_config("tiny").set_anchor("warp").save_pretrained(tmp_path / "warp")
    assert main(["--out", str(tmp_path / "runw"), "--cpu", "--world-preset", "micro", "--init-from", str(warp),
                 "--anchor", "none"]) == 2
    assert f"--anchor none: --init-from {warp} was trained with anchor warp" in capsys.readouterr().err


def test_few_step_distillation_exports_a_four_step_teacher(tmp_path):
    from lyra.teacher.denoiser import TeacherDenoiser

    base = TeacherDenoiser.from_config("tiny", seed=2)
    src = base.save_pretrained(tmp_path / "base")
    out, export = tmp_path / "run", tmp_path / "export"
    args = ["--out", str(out), "--steps", "2", "--cpu", "--no-progress", "--world-preset", "micro",
            "--batch-size", "1", "--pool-worlds", "1", "--test-worlds", "1", "--warmup", "1", "--log-every", "1",
            "--export-to", str(export), "--distill-from", str(src), "--distill-steps", "2",
            "--distill-teacher-steps", "4"]
    assert main(args) == 0
    student = TeacherDenoiser.from_pretrained(export)
    assert student.default_steps == 2 and '"steps": 2' in (export / "teacher.json").read_text()
    record = json.loads((export / "training_record.json").read_text())
    assert record["test"]["sample_steps"] == 2 and record["test_distilled_from_35_steps"]["sample_steps"] == 35
    assert "few-step distillation" in record["objective"] and record["default_steps"] == 2
    assert math.isfinite(record["test"]["psnr_teacher"])
    rows = (out / "metrics.csv").read_text().splitlines()
    assert "mse_secant" in rows[0] and len(rows) == 3
    # the student started from the teacher and moved
    a, b = base.state_dict(), student.state_dict()
    assert any(not torch.allclose(a[k].half().float(), b[k].float()) for k in a if k in b)
    # the step counts must nest
    bad = [*args[:-4], "--distill-steps", "3", "--distill-teacher-steps", "4", "--out", str(tmp_path / "r2")]
    assert main(bad) == 2


def test_a_pipeline_uses_its_teacher_s_step_count_by_default():
    from types import SimpleNamespace

    from lyra.pipeline import ScenePipeline

    pipe = ScenePipeline.__new__(ScenePipeline)
    pipe.teacher = SimpleNamespace(denoiser=SimpleNamespace(default_steps=4))
    assert pipe.default_steps == 4
    pipe.teacher = SimpleNamespace(denoiser=SimpleNamespace(default_steps=None))
    assert pipe.default_steps is None
