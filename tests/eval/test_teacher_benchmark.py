"""Teacher benchmark metrics: closed forms of the trainer's validation metrics and of the benchmark's world table."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.eval.metrics import psnr_pooled
from lyra.eval.teacher_benchmark import teacher_metrics, world_table


def test_psnr_and_teacher_metrics_on_hand_built_tensors():
    gt = torch.zeros(1, 3, 3, 4, 4)
    pred = gt + 0.1  # MSE 0.01 -> 20 dB
    assert psnr_pooled(pred, gt) == pytest.approx(20.0)
    mask = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    assert math.isnan(psnr_pooled(pred, gt, mask))
    assert psnr_pooled(gt, gt) == math.inf

    # warp valid on the left half (exact), holes on the right; teacher off by 0.1 everywhere
    warp_mask = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    warp_mask[..., :2] = True
    gt = torch.zeros(1, 3, 3, 4, 4)
    gt[..., 2:] = 0.5
    warped = torch.where(warp_mask[:, :, None], gt, torch.zeros(()))
    m = teacher_metrics(gt + 0.1, warped, gt, warp_mask)
    assert m["psnr_teacher"] == pytest.approx(20.0)
    assert m["psnr_teacher_disoccluded"] == pytest.approx(20.0)
    # holes filled with the left value 0 against GT 0.5: MSE 0.25 on half the pixels
    assert m["psnr_warp_disoccluded"] == pytest.approx(-10 * math.log10(0.25))
    assert m["psnr_warp"] == pytest.approx(-10 * math.log10(0.125))
    assert m["disoccluded_fraction"] == pytest.approx(0.5)


def test_world_table_closed_forms():
    g = torch.Generator().manual_seed(0)
    V, T, H, W = 2, 5, 24, 32
    gt = torch.rand(V, T, 3, H, W, generator=g) * 0.5 + 0.25
    mask = torch.ones(V, T, H, W, dtype=torch.bool)
    mask[:, 1:, 12:, :] = False  # bottom half disoccluded off the input camera
    warped = torch.where(mask[:, :, None], gt, torch.zeros(()))
    teacher = gt + 0.1
    table, frames = world_table(teacher, warped, mask, gt, gt)
    assert set(table) == {"input", "near", "far"}
    assert set(frames) == {"teacher", "composite", "filled_warp", "warp", "ceiling"}
    far = table["far"]
    # the ceiling equal to GT: SSIM 1, no finite PSNR; a constant offset c: PSNR −20·log10(c) everywhere
    assert far["ceiling"]["ssim"] == pytest.approx(1.0) and far["ceiling"]["psnr_visible"] == math.inf
    assert far["teacher"]["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert far["teacher"]["psnr_visible"] == pytest.approx(20.0, abs=1e-3)
    assert far["teacher"]["psnr_disoccluded"] == pytest.approx(20.0, abs=1e-3)
    assert far["teacher"]["disoccluded_fraction"] == pytest.approx(0.5)
    # warp-only: exact where it sees, white (1.0) in the holes, pooled MSE over the hole pixels
    assert far["warp"]["psnr_visible"] == math.inf
    expect = psnr_pooled(torch.ones_like(gt[:, 2:]), gt[:, 2:], ~mask[:, 2:])  # far: frames 2..4 of 5
    assert far["warp"]["psnr_disoccluded"] == pytest.approx(expect, abs=1e-4)
    assert torch.equal(frames["warp"][:, 1:][~mask[:, 1:, None].expand(-1, -1, 3, -1, -1)],
                       torch.ones(int((~mask[:, 1:]).sum()) * 3))
    # the filled warp keeps the visible pixels and fills the holes with image content (not white)
    assert far["filled_warp"]["psnr_visible"] > 45
    assert far["filled_warp"]["psnr_disoccluded"] > far["warp"]["psnr_disoccluded"]
    # the composite: the warp where it sees (exact here), the teacher in the holes
    assert far["composite"]["psnr_visible"] == math.inf
    assert far["composite"]["psnr_disoccluded"] == pytest.approx(20.0, abs=1e-3)
    assert torch.equal(frames["composite"][:, 1:, :, 12:], teacher[:, 1:, :, 12:])
    # the input view has no holes: no disoccluded keys there
    assert "psnr_disoccluded" not in table["input"]["teacher"]
    # no holes at all: disoccluded values are NaN, not errors
    full, _ = world_table(teacher, gt, torch.ones_like(mask), gt, gt)
    assert math.isnan(full["far"]["teacher"]["psnr_disoccluded"])
    assert math.isnan(full["far"]["warp"]["ssim_disoccluded"])
