"""``lyra generate --depth hf:DIR`` end to end, offline, with tiny random transformers depth models built here
(Depth Anything relative and metric, DPT), and how their output becomes the depth the teacher warps with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("transformers")

from lyra.cli import main  # noqa: E402
from lyra.gaussians.io import load_gaussians  # noqa: E402
from lyra.teacher.depth import TransformersDepth, disparity_to_depth  # noqa: E402

SIZE = (48, 80)


def _save(model, folder, size: int) -> None:
    from transformers import DPTImageProcessor

    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": size, "width": size}, keep_aspect_ratio=False).save_pretrained(folder)


def _depth_anything(folder, metric: bool) -> None:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(1 if metric else 0)
    bb = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      patch_size=14, image_size=56, out_features=["stage1", "stage2"], reshape_hidden_states=False)
    extra = {"depth_estimation_type": "metric", "max_depth": 20} if metric else {}
    cfg = DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[16, 32],
                              fusion_hidden_size=16, head_hidden_size=8, patch_size=14, reassemble_factors=[2, 1],
                              **extra)
    _save(DepthAnythingForDepthEstimation(cfg).eval(), folder, 56)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    _depth_anything(root / "da_relative", metric=False)
    _depth_anything(root / "da_metric", metric=True)
    return root


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:160]
    a = np.stack([xx * 1.5, yy * 2.5, 128 + 60 * np.sin(xx / 6.0)], -1) + rng.normal(0, 6, (96, 160, 3))
    p = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(p)
    return p


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    from lyra.student import LatentDecoder, decoder_config

    torch.manual_seed(0)
    cfg = decoder_config("tiny")
    return LatentDecoder(cfg).save_pretrained(tmp_path_factory.mktemp("s") / "student",
                                                {"preset": "tiny", "tokenizer": "tiny", "single_view": False})


@pytest.mark.parametrize("kind", ["da_relative", "da_metric"])
def test_generate_cli_with_a_local_transformers_model(models, photo, student, tmp_path, monkeypatch, capsys, kind):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing may be downloaded
    monkeypatch.setenv("HOME", str(models))  # hf:~/... is expanded (the shell does not expand ~ after 'hf:')
    out = tmp_path / "scene.ply"
    code = main(["generate", str(photo), "-o", str(out), "--depth", f"hf:~/{kind}", "--steps", "1", "--size",
                 f"{SIZE[0]}x{SIZE[1]}", "--student", str(student), "--device", "cpu", "--no-progress",
                 "--teacher-videos", str(tmp_path / "tv"), "--input-resolution", "0"])
    assert code == 0, capsys.readouterr().err
    g = load_gaussians(out)
    assert len(g) == int(6 * 17 * 6 * 10 * (1.0 - 0.8)) and torch.isfinite(g.means).all()
    import json

    meta = json.loads((tmp_path / "tv" / "generate.json").read_text())
    assert meta["weights"]["depth"] == f"hf:~/{kind}"


def test_metric_and_relative_depth_reach_the_teacher_as_intended(models, photo, student):
    """A metric model's depth is used as it is; a relative (disparity) model's output is inverted and scaled so
    its median depth is 1 (the trajectories scale with the centre depth, so the scale does not matter)."""
    from lyra.pipeline import ScenePipeline

    for kind in ("da_metric", "da_relative"):
        pipe = ScenePipeline.from_preset("tiny", student=student, depth=f"hf:{models / kind}", device="cpu")
        scene = pipe(str(photo), seed=0, steps=1, size=SIZE, progress=False)
        est = TransformersDepth(models / kind, device="cpu")
        raw = est.raw(scene.image[None])[0]  # the model's own output at the working size
        if kind == "da_metric":
            assert est.kind == "depth"
            assert (raw > 0).all() and (raw <= 20.0).all()  # sigmoid · max_depth: metres
            assert torch.allclose(scene.depth, raw, rtol=1e-4, atol=1e-5)
        else:
            assert est.kind == "disparity"
            want = disparity_to_depth(raw[None], median_depth=1.0).depth[0]
            assert torch.allclose(scene.depth, want, rtol=1e-4, atol=1e-5)
            pos = raw[raw > 0]
            valid = raw > 1e-3 * pos.median()  # near-zero disparity (a random ReLU head gives many): sky, far
            assert bool(valid.any()) and float(scene.depth[valid].median()) == pytest.approx(1.0, rel=0.05)
            assert torch.allclose(scene.depth[~valid], torch.tensor(100.0))  # capped far, as the sky
            # larger disparity = nearer: the order is inverted, not copied
            hi, lo = raw.argmax(), raw.argmin()
            assert scene.depth.flatten()[hi] < scene.depth.flatten()[lo]


def test_hf_spec_errors(tmp_path, photo, capsys):
    code = main(["generate", str(photo), "-o", str(tmp_path / "s.ply"), "--depth", f"hf:{tmp_path / 'nothing'}",
                 "--steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a folder" in err[0]
    (tmp_path / "empty").mkdir()
    code = main(["generate", str(photo), "-o", str(tmp_path / "s.ply"), "--depth", f"hf:{tmp_path / 'empty'}",
                 "--steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "config.json" in err[0]
