"""Depth sources: user files, transformers models (tiny random ones built here), conversions."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lyra.errors import ConfigError, FormatError, InputFileError, WeightsError
from lyra.teacher.depth import (
    DepthEstimator,
    FileDepth,
    TransformersDepth,
    align_scale_shift,
    disparity_to_depth,
    load_depth_estimator,
    read_depth_file,
    write_depth_png,
)

H, W = 24, 40


def ramp_depth() -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    return 1.5 + 3.0 * x + 2.0 * y  # 1.5 .. 6.5 m


# --------------------------------------------------------------------------- files
def test_npy_round_trip_and_batch(tmp_path):
    z = ramp_depth()
    np.save(tmp_path / "d.npy", z.numpy())
    np.save(tmp_path / "d1.npy", z.numpy()[None])
    est = FileDepth(tmp_path / "d.npy")
    assert isinstance(est, DepthEstimator)
    out = est(torch.rand(2, 3, H, W))
    assert out.depth.shape == (2, H, W) and torch.equal(out.depth[1], z)
    assert torch.equal(out.confidence, torch.ones(2, H, W))
    assert torch.equal(read_depth_file(tmp_path / "d1.npy"), z)


def test_png_millimetres_round_trip(tmp_path):
    z = ramp_depth()
    write_depth_png(tmp_path / "d.png", z)
    with Image.open(tmp_path / "d.png") as im:
        assert im.mode.startswith("I;16") or im.mode == "I"
        raw = np.array(im)
    assert raw.dtype == np.uint16 and raw[0, 0] == 1500  # millimetres
    back = read_depth_file(tmp_path / "d.png")
    assert (back - z).abs().max() <= 0.0005 + 1e-6  # quantised to 1 mm
    # another scale: centimetres
    write_depth_png(tmp_path / "cm.png", z, png_scale=0.01)
    assert (read_depth_file(tmp_path / "cm.png", png_scale=0.01) - z).abs().max() <= 0.005 + 1e-6


@pytest.mark.parametrize("case", ["nan", "zero", "negative", "8bit", "rgb", "shape3d", "ext", "missing", "text"])
def test_bad_depth_files(tmp_path, case):
    z = ramp_depth().numpy()
    p = tmp_path / "d.npy"
    err = FormatError
    if case == "nan":
        z[3, 4] = np.nan
        np.save(p, z)
    elif case == "zero":
        z[0, 0] = 0
        np.save(p, z)
    elif case == "negative":
        np.save(p, -z)
    elif case == "8bit":
        p = tmp_path / "d.png"
        Image.fromarray((z * 10).astype(np.uint8)).save(p)
    elif case == "rgb":
        p = tmp_path / "d.png"
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(p)
    elif case == "shape3d":
        np.save(p, np.stack([z, z, z]))
    elif case == "ext":
        p = tmp_path / "d.exr"
        p.write_bytes(b"xx")
        err = InputFileError
    elif case == "missing":
        p = tmp_path / "none.npy"
        err = InputFileError
    elif case == "text":
        p.write_text("not numpy")
    with pytest.raises(err) as e:
        FileDepth(p)
    assert str(p.name) in str(e.value)


def test_file_depth_size_must_match(tmp_path):
    np.save(tmp_path / "d.npy", ramp_depth().numpy())
    with pytest.raises(ConfigError, match="40x24 but the image is 41x24"):
        FileDepth(tmp_path / "d.npy")(torch.rand(1, 3, H, W + 1))


# --------------------------------------------------------------------------- conversions
def test_align_scale_shift_closed_form():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, H, W, generator=g)
    target = torch.stack([3.0 * pred[0] - 0.5, 0.25 * pred[1] + 2.0])
    mask = torch.rand(2, H, W, generator=g) > 0.3
    target = torch.where(mask, target, torch.full_like(target, 1e6))  # outliers outside the mask
    s, b = align_scale_shift(pred, target, mask)
    assert torch.allclose(s, torch.tensor([3.0, 0.25]), atol=1e-4)
    assert torch.allclose(b, torch.tensor([-0.5, 2.0]), atol=1e-4)


def test_disparity_to_depth_with_and_without_reference():
    z = ramp_depth()[None]
    disp = 0.7 / z + 0.05  # affine-invariant disparity: unknown scale and shift
    aligned = disparity_to_depth(disp, reference=z)
    assert torch.allclose(aligned.depth, z, rtol=1e-4)
    # sparse reference: 20 pixels are enough
    sparse = torch.zeros_like(z, dtype=torch.bool)
    sparse.view(-1)[torch.randperm(H * W, generator=torch.Generator().manual_seed(1))[:20]] = True
    assert torch.allclose(disparity_to_depth(disp, reference=z, reference_mask=sparse).depth, z, rtol=1e-3)
    # no reference, zero shift: depth ∝ z, median scaled to median_depth
    plain = disparity_to_depth(0.7 / z, median_depth=2.0)
    ratio = plain.depth / z
    assert torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-5)
    assert plain.depth.median().item() == pytest.approx(2.0, rel=1e-3)
    # sky: disparity ~0 -> capped far depth, confidence 0
    sky = (0.7 / z).clone()
    sky[0, :3] = 0.0
    out = disparity_to_depth(sky, median_depth=1.0)
    assert torch.equal(out.confidence[0, :3], torch.zeros(3, W))
    assert torch.allclose(out.depth[0, :3], torch.full((3, W), 100.0))
    assert out.confidence[0, 3:].min() == 1


# --------------------------------------------------------------------------- transformers models
def _save_tiny(model, folder, size):
    from transformers import DPTImageProcessor

    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": size, "width": size}, keep_aspect_ratio=False).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_depth_anything(tmp_path_factory):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(0)
    bb = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      patch_size=14, image_size=56, out_features=["stage1", "stage2"], reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[16, 32],
                              fusion_hidden_size=16, head_hidden_size=8, patch_size=14, reassemble_factors=[2, 1])
    model = DepthAnythingForDepthEstimation(cfg).eval()
    folder = tmp_path_factory.mktemp("depth_anything")
    _save_tiny(model, folder, 56)
    return folder, model


def test_transformers_depth_anything_relative(tiny_depth_anything):
    folder, model = tiny_depth_anything
    est = TransformersDepth(folder, median_depth=3.0, device="cpu")
    assert est.kind == "disparity"  # Depth Anything (relative) predicts inverse depth
    image = torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(2))
    out = est(image)
    assert out.depth.shape == (2, H, W) and out.confidence.shape == (2, H, W)
    assert torch.isfinite(out.depth).all() and (out.depth > 0).all()
    # the same numbers by hand: processor -> model -> bilinear resize -> disparity_to_depth
    px = est.processor(images=[im.permute(1, 2, 0).numpy() for im in image], return_tensors="pt",
                       do_rescale=False)["pixel_values"]
    with torch.no_grad():
        pred = model(pixel_values=px).predicted_depth
    pred = torch.nn.functional.interpolate(pred[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
    ref = disparity_to_depth(pred, median_depth=3.0)
    assert torch.allclose(out.depth, ref.depth, rtol=1e-5)
    assert torch.equal(out.confidence, ref.confidence)
    # aligning to a reference depth recovers it exactly when the model's output is affine in 1/z
    z = ramp_depth().expand(2, H, W)
    assert torch.allclose(disparity_to_depth(0.3 / z + 0.1, reference=z).depth, z, rtol=1e-4)
    # through the spec resolver
    assert isinstance(load_depth_estimator(str(folder), device="cpu"), TransformersDepth)


def test_transformers_dpt_and_metric(tmp_path):
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTConfig,
        DPTForDepthEstimation,
    )

    torch.manual_seed(0)
    cfg = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=32,
                    patch_size=8, neck_hidden_sizes=[8, 16, 16, 32], fusion_hidden_size=16,
                    backbone_out_indices=[0, 1, 2, 3], reassemble_factors=[4, 2, 1, 0.5])
    _save_tiny(DPTForDepthEstimation(cfg), tmp_path / "dpt", 32)
    dpt = TransformersDepth(tmp_path / "dpt", device="cpu")
    assert dpt.kind == "disparity"
    assert dpt(torch.rand(1, 3, H, W)).depth.shape == (1, H, W)

    bb = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      patch_size=14, image_size=28, out_features=["stage1", "stage2"], reshape_hidden_states=False)
    mcfg = DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[16, 32],
                               fusion_hidden_size=16, head_hidden_size=8, patch_size=14, reassemble_factors=[2, 1],
                               depth_estimation_type="metric", max_depth=20)
    _save_tiny(DepthAnythingForDepthEstimation(mcfg), tmp_path / "metric", 28)
    met = TransformersDepth(tmp_path / "metric", device="cpu")
    assert met.kind == "depth"
    raw = met.raw(torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3)))
    out = met(torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3)))
    assert (raw > 0).all() and (raw <= 20.0).all()  # sigmoid · max_depth
    assert torch.allclose(out.depth, raw)  # metric output is used as it is
    scaled = TransformersDepth(tmp_path / "metric", median_depth=5.0, device="cpu")(
        torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3)))
    assert scaled.depth.median().item() == pytest.approx(5.0, rel=1e-3)


def test_transformers_errors(tmp_path):
    with pytest.raises(WeightsError):
        TransformersDepth(tmp_path)  # no config.json
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(WeightsError):
        TransformersDepth(tmp_path)


def test_load_depth_estimator_specs(tmp_path):
    np.save(tmp_path / "d.npy", ramp_depth().numpy())
    assert isinstance(load_depth_estimator(str(tmp_path / "d.npy")), FileDepth)
    with pytest.raises(ConfigError):
        load_depth_estimator(str(tmp_path / "d.txt"))
    assert not math.isnan(FileDepth(tmp_path / "d.npy").depth.sum().item())
