"""``lyra eval real``: a tiny synthetic data folder in the real layout (always runs), the real data subset (where
``../shared/data/real`` exists) and the clean skip without data."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from lyra.cli import main
from lyra.eval.real_benchmark import evaluate_real, markdown_report, stereo_right_camera
from lyra.eval.real_data import default_data_dir, load_fern, load_rgbd, load_stereo, read_points3d_bin
from lyra.geometry.cameras import Cameras
from lyra.teacher.depth import DepthResult

H, W = 48, 64
F_PX = 60.0
MARGIN = 24


def _texture(seed: int = 0) -> np.ndarray:
    """A smooth colour texture ``[H, W + 2·MARGIN, 3]`` uint8 with structure at several scales."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W + 2 * MARGIN].astype(np.float64)
    chans = [128 + 60 * np.sin(xx / (3 + 2 * c) + c) * np.cos(yy / (4 + c)) + 30 * np.sin((xx + yy) / 7.0 + c)
             for c in range(3)]
    a = np.stack(chans, -1) + rng.normal(0, 3, (H, W + 2 * MARGIN, 3))
    return np.clip(a, 0, 255).astype(np.uint8)


def _view(tex: np.ndarray, shift_px: int) -> np.ndarray:
    """The plane seen by a camera moved so that the image content moves left by ``shift_px``."""
    return np.ascontiguousarray(tex[:, MARGIN + shift_px:MARGIN + shift_px + W])


def _write_points3d(path, xyz: np.ndarray) -> None:
    out = [struct.pack("<Q", len(xyz))]
    for i, (x, y, z) in enumerate(xyz):
        out.append(struct.pack("<QdddBBBdQ", i + 1, x, y, z, 1, 2, 3, 0.5, 1) + struct.pack("<ii", 1, i))
    path.write_bytes(b"".join(out))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A real-layout folder: one TUM RGB-D pair, one Middlebury pair (disparity 4 px everywhere), a 4-view LLFF
    set of a fronto-parallel plane at depth 10 (cameras 0.5 apart along x) with its sparse points."""
    root = tmp_path_factory.mktemp("real")
    tex = _texture()
    tum = root / "rgbd" / "slambook2_ch7_tum_fr2"
    tum.mkdir(parents=True)
    Image.fromarray(_view(tex, 0)).save(tum / "1.png")
    depth = np.tile(np.linspace(1.0, 3.0, W), (H, 1))
    depth[:4] = 0  # unknown rows
    Image.fromarray((depth * 5000).astype(np.uint16)).save(tum / "1_depth.png")
    venus = root / "stereo" / "middlebury_2001_2003" / "venus"
    venus.mkdir(parents=True)
    Image.fromarray(_view(tex, 0)).save(venus / "im2.png")
    Image.fromarray(_view(tex, 4)).save(venus / "im6.png")  # right camera: content moves left by d = 4 px
    Image.fromarray(np.full((H, W), 32, np.uint8)).save(venus / "disp2.pgm")  # 32 / 8 = 4 px
    fern = root / "multiview" / "llff_fern"
    (fern / "images_8").mkdir(parents=True)
    (fern / "sparse" / "0").mkdir(parents=True)
    z0, rows = 10.0, []
    for k in range(4):
        dx = 0.5 * (k - 1)  # centres -0.5, 0, 0.5, 1.0: view 1 is nearest the mean (0.25)
        Image.fromarray(_view(tex, int(round(F_PX * dx / z0)))).save(fern / "images_8" / f"image{k:03d}.png")
        c2w = np.eye(4)
        c2w[0, 3] = dx
        llff = np.stack([c2w[:3, 1], c2w[:3, 0], -c2w[:3, 2], c2w[:3, 3], [H, W, F_PX]], 1)  # [down, right, back]
        rows.append(np.concatenate([llff.reshape(-1), [z0 * 0.9, z0 * 1.1]]))
    np.save(fern / "poses_bounds.npy", np.array(rows))
    uu, vv = np.meshgrid(np.linspace(-0.4, 0.4, 7), np.linspace(-0.3, 0.3, 5))
    _write_points3d(fern / "sparse" / "0" / "points3D.bin",
                    np.stack([uu.ravel() * z0 * W / F_PX / 2, vv.ravel() * z0 * H / F_PX / 2,
                              np.full(uu.size, z0)], 1))
    return root


class ConstantDepth:
    """A depth estimator of depth 2 everywhere (so the geometry of the baselines is exact on the synthetic data)."""

    def __call__(self, image):
        b, _, h, w = image.shape
        return DepthResult(torch.full((b, h, w), 2.0), torch.ones(b, h, w))


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from lyra.pipeline import ScenePipeline
    from lyra.student import LatentDecoder, decoder_config

    torch.manual_seed(0)
    cfg = decoder_config("tiny")
    folder = LatentDecoder(cfg).save_pretrained(tmp_path_factory.mktemp("s") / "student",
                                                {"preset": "tiny", "tokenizer": "tiny", "single_view": False})
    return ScenePipeline.from_preset("tiny", student=folder, depth=ConstantDepth(), device="cpu")


def test_readers_of_the_layout(data):
    (rgbd,) = load_rgbd(data)
    assert rgbd.name == "tum_fr2/1" and rgbd.K is not None and float(rgbd.K[0, 0]) == pytest.approx(520.9)
    assert float(rgbd.depth[0, 0]) == 0 and float(rgbd.depth[10, -1]) == pytest.approx(3.0, rel=1e-3)
    (pair,) = load_stereo(data)
    assert torch.allclose(pair.disparity, torch.full((H, W), 4.0))
    assert torch.allclose(pair.left.depth, 1 / pair.disparity)
    fern = load_fern(data)
    assert fern.images.shape == (4, 3, H, W) and float(fern.K[0, 0]) == pytest.approx(F_PX)
    # LLFF [down, right, back] → OpenCV: identity rotations, centres along +x
    assert torch.allclose(fern.c2w[:, :3, :3], torch.eye(3).expand(4, 3, 3))
    assert torch.allclose(fern.c2w[:, 0, 3], torch.tensor([-0.5, 0.0, 0.5, 1.0]))
    pts = read_points3d_bin(data / "multiview" / "llff_fern" / "sparse" / "0" / "points3D.bin")
    assert pts.shape == (35, 3) and torch.allclose(pts[:, 2], torch.full((35,), 10.0, dtype=pts.dtype))


def test_stereo_baseline_and_fern_scale():
    cam = Cameras(torch.tensor([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]), torch.eye(4), W, H)
    right, b = stereo_right_camera(cam, torch.full((H, W), 5.0), torch.full((H, W), 3.0))
    assert b == pytest.approx(5.0 * 3.0 / 50.0)
    assert torch.allclose(right.c2w[:3, 3], torch.tensor([b, 0.0, 0.0]))
    # a point at depth 3 on the optical axis of the left camera lands 5 px left of the centre in the right one
    uv, _ = right.project(torch.tensor([[0.0, 0.0, 3.0]]))
    assert float(uv[0, 0]) == pytest.approx(32 - 5.0, abs=1e-4)


def test_synthetic_benchmark_geometry(data, pipe, tmp_path):
    result, sheet = evaluate_real(pipe, data, steps=1, seed=0, reference_size=(H, W))
    s = result["setting"]
    assert s["counts"] == {"rgbd": 1, "stereo": 1, "fern": 1, "scannet": 0}
    # depth: a constant estimate scores exactly the constant baseline after median scaling
    d = result["depth"]["mean"]["rgbd_all"]
    assert d["depth_net"]["abs_rel"] == pytest.approx(d["constant"]["abs_rel"], rel=1e-6)
    assert d["depth_net"]["abs_rel"] > 0.1 and math.isfinite(d["scene"]["abs_rel"])
    stereo = result["depth"]["mean"]["middlebury"]  # GT 1/d is constant: a constant estimate is exact
    assert stereo["depth_net"]["abs_rel"] == pytest.approx(0.0, abs=1e-6) and stereo["depth_net"]["delta1"] == 1.0
    # stereo novel view: baseline fitted to the GT disparity (4 px at depth 2 with the default 50° camera)
    nv = result["novel_views"]["stereo"]["images"][0]
    f = 0.5 * H / math.tan(math.radians(25.0))
    assert nv["baseline"] == pytest.approx(4.0 * 2.0 / f, rel=1e-4)
    left, right = (torch.from_numpy(np.array(Image.open(data / "stereo/middlebury_2001_2003/venus" / f)))
                   .permute(2, 0, 1).float() / 255 for f in ("im2.png", "im6.png"))
    from lyra.eval.metrics import psnr

    unmoved = float(psnr(left, right))  # the input itself as the right view: what no baseline scores
    assert nv["metrics"]["filled_warp"]["psnr"] > unmoved + 6.0  # the warp lands on the true right view
    # fern: similarity alignment (scale = our depth 2 / COLMAP depth 10) makes the filled warp land on the views
    assert s["fern"]["input"] == "image001.png" and s["fern"]["scale"] == pytest.approx(0.2, rel=1e-4)
    assert s["fern"]["targets"] == ["image000.png", "image002.png", "image003.png"]
    for row in result["novel_views"]["fern"]["images"]:
        assert row["metrics"]["filled_warp"]["psnr"] > unmoved + 6.0, row["name"]
    # every photo has an input-view row (the filled warp at the input view is near-perfect by construction)
    iv = result["input_view"]
    assert [r["kind"] for r in iv["images"]] == ["rgbd", "stereo", "fern"]
    # ours: a random student, but the input-view Gaussians reproduce the photo at its own camera
    assert iv["mean"]["filled_warp"]["psnr"] > 28.0 and iv["mean"]["ours"]["psnr"] > 35.0
    assert math.isfinite(iv["mean"]["ours"]["sharpness"])
    assert len(sheet) == 3 + 1 + 3 and all(len(imgs) == 4 for _, imgs in sheet)
    md = markdown_report(result)
    assert "Middlebury" in md and "LLFF fern" in md and "| constant" not in md.split("**Input view**")[1]


def test_cli_skips_without_data(tmp_path, capsys):
    assert main(["eval", "real", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "no real data" in out[0] and "skipped" in out[0]
    assert not (tmp_path / "out").exists()


def test_cli_bad_options(data, tmp_path, capsys):
    assert main(["eval", "real", "--data", str(data), "--max-images", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--max-images" in capsys.readouterr().err


REAL = default_data_dir()


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "README.md").is_file(), reason=f"no real data at {REAL}")
def test_real_data_subset(tmp_path, capsys):
    """The CI subset: one photo of each kind, one sampler step."""
    out = tmp_path / "real"
    assert main(["eval", "real", "--max-images", "1", "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "real_eval.json").read_text())
    assert result["setting"]["counts"] == {"rgbd": 1, "stereo": 1, "fern": 1, "scannet": 1}
    dn = result["depth"]["mean"]["rgbd_all"]["depth_net"]
    assert 0 < dn["abs_rel"] < 5 and 0 <= dn["delta1"] <= 1
    assert set(result["novel_views"]) == {"stereo", "fern"}
    assert len(result["input_view"]["images"]) == 4
    with Image.open(out / "real_eval.png") as im:
        assert im.width >= 4 * 200  # full size: four columns of working-size images
    assert "real_eval.png" in (out / "real_eval.md").read_text()
