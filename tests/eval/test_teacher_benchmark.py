"""Teacher benchmark metrics: closed forms on hand-built tensors, parity of world_metrics with teacher_metrics."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.eval.metrics import psnr_pooled
from lyra.eval.teacher_benchmark import teacher_metrics, world_metrics


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


def test_world_metrics_closed_forms_and_parity():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 3, 16, 20, generator=g)
    mask = torch.ones(2, 3, 16, 20, dtype=torch.bool)
    mask[..., 8:, :] = False  # bottom half disoccluded
    warped = torch.where(mask[:, :, None], gt, torch.zeros(()))
    teacher = (gt + 0.1).clamp(0, 1)
    m = world_metrics(teacher, warped, mask, gt, gt)
    # the ceiling equal to GT: infinite PSNR, SSIM 1
    assert m["psnr_ceiling"] == math.inf and m["psnr_ceiling_disoccluded"] == math.inf
    assert m["ssim_ceiling"] == pytest.approx(1.0) and m["ssim_ceiling_disoccluded"] == pytest.approx(1.0)
    # same definitions as the trainer's teacher_metrics
    ref = teacher_metrics(teacher, warped, gt, mask)
    for k, v in ref.items():
        assert m[k] == pytest.approx(v, rel=1e-9), k
    assert m["disoccluded_fraction"] == pytest.approx(0.5)
    # the warp is exact where valid: disoccluded SSIM is lower than overall for warp-only
    assert m["ssim_warp_disoccluded"] < m["ssim_warp"] <= 1.0
    # a constant offset c on every pixel: PSNR = −20·log10(c) (no clamping here)
    off = world_metrics(gt * 0.5 + 0.25, warped, mask, gt * 0.5 + 0.15, gt)
    assert off["psnr_teacher"] == pytest.approx(20.0, abs=1e-4)
    assert off["psnr_teacher_disoccluded"] == pytest.approx(20.0, abs=1e-4)
    # no holes: disoccluded values are NaN, not errors
    full = world_metrics(teacher, gt, torch.ones_like(mask), gt, gt)
    assert math.isnan(full["psnr_teacher_disoccluded"]) and math.isnan(full["ssim_teacher_disoccluded"])
