"""Frame groups, the per-group metric table and its winners, and the filled-warp baseline (Telea inpainting)."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.eval.baselines import Views, filled_warp, inpaint_holes, render_views, warp_only_gaussians
from lyra.eval.groups import frame_groups, group_metrics, mean_tables, winners


def test_frame_groups():
    assert frame_groups(17) == {"input": [0], "near": [1, 2, 3, 4], "far": list(range(5, 17))}
    g = frame_groups(121)
    assert g["near"] == list(range(1, 31)) and g["far"][0] == 31 and g["far"][-1] == 120
    assert frame_groups(2) == {"input": [0], "near": [1], "far": []}
    with pytest.raises(ValueError):
        frame_groups(0)


def _ramp(h: int = 48, w: int = 64) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([x, y, 0.5 * (x + y)])


def test_inpaint_fills_holes_plausibly_and_keeps_the_rest():
    img = _ramp()
    holes = torch.zeros(48, 64, dtype=torch.bool)
    holes[20:28, 30:40] = True
    broken = img.clone()
    broken[:, holes] = 1.0  # white, as warp-only paints its holes
    filled = inpaint_holes(broken, holes)
    assert torch.equal(filled[:, ~holes], broken[:, ~holes])
    # a smooth ramp is recovered to a few per cent (white would be off by ~0.5)
    assert float((filled - img)[:, holes].abs().mean()) < 0.03
    assert float((broken - img)[:, holes].abs().mean()) > 0.3
    # batched [V, T, 3, H, W] with per-frame masks; a frame that is all holes is left as it is
    vids = torch.stack([broken, torch.ones_like(broken)])[None]
    masks = torch.stack([holes, torch.ones_like(holes)])[None]
    out = inpaint_holes(vids, masks)
    assert out.shape == vids.shape
    assert torch.allclose(out[0, 0], filled)
    assert torch.equal(out[0, 1], vids[0, 1])


def test_inpaint_depth_is_float_and_fills_non_finite():
    depth = 2.0 + _ramp()[0] * 3.0  # 2 … 5
    holes = torch.zeros(48, 64, dtype=torch.bool)
    holes[10:14, 10:20] = True
    broken = depth.clone()
    broken[holes] = 0.0
    broken[40, 5] = math.inf
    out = inpaint_holes(broken, holes)
    assert torch.isfinite(out).all()
    assert float((out - depth)[holes].abs().max()) < 0.15
    assert abs(float(out[40, 5]) - float(depth[40, 5])) < 0.15


def test_filled_warp_covers_everything_and_needs_alpha():
    rgb = _ramp()[None, None].repeat(2, 3, 1, 1, 1)
    alpha = torch.ones(2, 3, 48, 64)
    alpha[:, 1:, 5:15, 5:15] = 0.2
    fw = filled_warp(Views(rgb, torch.full((2, 3, 48, 64), 4.0), alpha))
    assert fw.alpha is not None and bool((fw.alpha == 1).all())
    assert fw.depth is not None and torch.allclose(fw.depth, torch.full_like(fw.depth, 4.0), atol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        filled_warp(Views(rgb))


def _blur3(x: torch.Tensor) -> torch.Tensor:
    k = torch.ones(3, 1, 5, 5) / 25
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate"), k, groups=3)


def test_group_metrics_rank_a_perfect_system_above_a_blurred_one():
    g = torch.Generator().manual_seed(0)
    V, T, H, W = 2, 9, 48, 64
    gt = torch.rand(V, T, 3, H, W, generator=g)
    depth = 1 + 4 * torch.rand(V, T, H, W, generator=g)
    blurred = _blur3(gt.reshape(-1, 3, H, W)).reshape(gt.shape)
    holes = torch.zeros(V, T, H, W, dtype=torch.bool)
    holes[..., 10:30, 10:30] = True
    systems = {"perfect": Views(gt.clone(), depth.clone(), torch.ones(V, T, H, W)),
               "blurred": Views(blurred, 2 * depth, torch.full((V, T, H, W), 0.4)),
               "teacher": Views(blurred)}
    table = group_metrics(systems, gt, depth, holes=holes)
    assert set(table) == {"input", "near", "far"}
    p, b = table["near"]["perfect"], table["near"]["blurred"]
    assert math.isinf(p["psnr"]) or math.isnan(p["psnr"])  # identical frames: no finite PSNR
    assert p["ssim"] == pytest.approx(1.0) and p["gmsd"] == pytest.approx(0.0, abs=1e-6)
    assert p["sharpness"] == pytest.approx(1.0) and p["abs_rel"] == pytest.approx(0.0) and p["coverage"] == 1.0
    assert b["sharpness"] < 0.6 and b["gmsd"] > 0.1 and b["abs_rel"] == pytest.approx(1.0) and b["coverage"] == 0
    assert b["disoccluded_fraction"] == pytest.approx(400 / (48 * 64))
    assert "abs_rel" not in table["far"]["teacher"] and "coverage" not in table["far"]["teacher"]
    assert "psnr_disoccluded" not in table["input"]["blurred"]  # no holes at the input camera
    # median alignment forgives the blurred system's global depth scale
    aligned = group_metrics(systems, gt, depth, depth_align="median", groups=("far",))
    assert aligned["far"]["blurred"]["abs_rel"] == pytest.approx(0.0, abs=1e-9)
    win = winners(table)
    assert win["near"]["ssim"] == "perfect" and win["near"]["gmsd"] == "perfect"
    assert win["near"]["sharpness"] == "perfect" and win["far"]["abs_rel"] == "perfect"
    # a custom input reference
    t2 = group_metrics(systems, gt, input_image=gt[0, 0] * 0.5, groups=("input",))
    assert t2["input"]["perfect"]["psnr"] < 20


def test_mean_tables_skip_nan_and_missing():
    a = {"near": {"s": {"psnr": 20.0, "lpips": math.nan}}}
    b = {"near": {"s": {"psnr": 30.0, "lpips": 0.2}}, "far": {"s": {"psnr": 10.0}}}
    m = mean_tables([a, b])
    assert m["near"]["s"] == {"psnr": 25.0, "lpips": 0.2}
    assert m["far"]["s"] == {"psnr": 10.0}


def test_render_views_of_warp_only_reproduce_the_input_view():
    from lyra.geometry.cameras import Cameras

    H, W = 32, 48
    img = _ramp(H, W)
    depth = torch.full((H, W), 3.0)
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]])
    cam = Cameras(K, torch.eye(4), width=W, height=H)
    gs = warp_only_gaussians(img, depth, cam)
    v = render_views(gs, cam.reshape(1, 1))
    assert v.rgb.shape == (1, 1, 3, H, W) and v.depth.shape == (1, 1, H, W)
    assert float((v.rgb[0, 0] - img).abs().mean()) < 0.05
    assert float(v.alpha.min()) > 0.9
    assert torch.allclose(v.depth[0, 0][4:-4, 4:-4], torch.full((H - 8, W - 8), 3.0), atol=0.05)
    empty = render_views(gs[torch.zeros(len(gs), dtype=torch.bool)], cam.reshape(1, 1))
    assert bool((empty.rgb == 1).all()) and bool((empty.alpha == 0).all())
