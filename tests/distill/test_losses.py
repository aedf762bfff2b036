"""Student losses: closed forms, invariances, the SSIM fallback and LPIPS(VGG) weight loading / parity."""

from __future__ import annotations

import math
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from lyra.distill.losses import (
    LPIPS_ENV,
    LPIPSVGG,
    LossWeights,
    PerceptualLoss,
    depth_loss,
    find_lpips_weights,
    load_lpips,
    normalize_depth,
    opacity_loss,
    student_losses,
)
from lyra.errors import ConfigError, WeightsError
from lyra.eval.metrics import ssim


def test_normalize_depth_closed_form_and_mask():
    d = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    valid = torch.ones(2, 2, dtype=torch.bool)
    # lower median 2, mean absolute deviation (1 + 0 + 1 + 2) / 4 = 1
    assert torch.allclose(normalize_depth(d, valid, eps=0.0), torch.tensor([[-1.0, 0.0], [1.0, 2.0]]))
    # invalid pixels are ignored (whatever they hold) and come out as 0
    d2 = torch.tensor([[1.0, 2.0, 99.0], [3.0, 4.0, -5.0]])
    v2 = torch.tensor([[True, True, False], [True, True, False]])
    out = normalize_depth(d2, v2, eps=0.0)
    assert torch.allclose(out[:, :2], torch.tensor([[-1.0, 0.0], [1.0, 2.0]])) and (out[:, 2] == 0).all()


def test_depth_loss_closed_form():
    r = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # normalised: -1, 0, 1, 2
    t = torch.tensor([[4.0, 3.0], [2.0, 1.0]])  # median 2, MAD 1: 2, 1, 0, -1
    # differences -3, -1, 1, 3 -> smooth-L1 (beta 1): 2.5, 0.5, 0.5, 2.5 -> mean 1.5
    assert depth_loss(r, t, eps=0.0).item() == pytest.approx(1.5)
    # small differences are quadratic: 0.5 x^2
    t2 = torch.tensor([[1.0, 2.0], [3.0, 4.5]])  # median 2, MAD (1 + 0 + 1 + 2.5)/4 = 1.125
    expect = ((torch.tensor([-1.0, 0.0, 1.0, 2.0]) - torch.tensor([-1.0, 0.0, 1.0, 2.5]) / 1.125) ** 2 * 0.5).mean()
    assert depth_loss(r, t2, eps=0.0).item() == pytest.approx(float(expect), rel=1e-6)


def test_depth_loss_invariant_to_scale_and_shift_and_zero_for_affine_depths():
    g = torch.Generator().manual_seed(0)
    rendered = torch.rand(3, 16, 20, generator=g) * 5 + 0.5
    target = torch.rand(3, 16, 20, generator=g) * 10 + 1.0
    base = depth_loss(rendered, target)
    for a, b in ((2.0, 0.0), (0.3, 7.0), (10.0, -0.4)):
        assert depth_loss(a * rendered + b, target).item() == pytest.approx(base.item(), rel=1e-4)
        assert depth_loss(rendered, a * target + b + 1.0).item() == pytest.approx(base.item(), rel=1e-4)
    # an affinely related pair (positive scale) costs nothing
    assert depth_loss(3.0 * target + 2.0, target).item() == pytest.approx(0.0, abs=1e-6)


def test_depth_loss_validity_per_image_and_gradient():
    g = torch.Generator().manual_seed(1)
    rendered = (torch.rand(2, 8, 8, generator=g) + 0.5).requires_grad_()
    target = torch.rand(2, 8, 8, generator=g) + 0.5
    target[0, :4] = math.inf  # sky
    target[0, 4, :3] = 0.0
    target[1, 0, :5] = float("nan")
    target[1, 1, :2] = -1.0
    loss = depth_loss(rendered, target)
    # values of rendered depth at invalid target pixels do not matter
    changed = rendered.detach().clone()
    changed[0, :4] = 1e3
    changed[1, 0, :5] = -7.0
    assert depth_loss(changed, target).item() == pytest.approx(loss.item(), rel=1e-6)
    # images count equally, whatever their number of valid pixels
    per = [depth_loss(rendered[i:i + 1].detach(), target[i:i + 1]).item() for i in range(2)]
    assert loss.item() == pytest.approx(sum(per) / 2, rel=1e-6)
    loss.backward()
    assert torch.isfinite(rendered.grad).all() and rendered.grad[0, :4].abs().sum() == 0
    # no valid pixel anywhere: zero (and still differentiable)
    empty = depth_loss(rendered, torch.full_like(target, math.inf))
    assert empty.item() == 0.0 and empty.requires_grad


def test_opacity_and_weighted_total():
    op = torch.tensor([[0.1, 0.2, 0.3, 0.6]])
    assert opacity_loss(op).item() == pytest.approx(0.3)
    g = torch.Generator().manual_seed(2)
    pred = torch.rand(2, 16, 16, 3, generator=g)
    tgt = torch.rand(2, 16, 16, 3, generator=g)
    pd = torch.rand(2, 16, 16, generator=g) + 1
    td = torch.rand(2, 16, 16, generator=g) + 1
    perc = PerceptualLoss()
    total, parts = student_losses(pred, tgt, pd, td, op, ["mse", "perceptual", "depth", "opacity"], perc)
    mse = ((pred - tgt) ** 2).mean()
    s = 1 - ssim(pred.permute(0, 3, 1, 2), tgt.permute(0, 3, 1, 2)).mean()
    expect = mse + 0.5 * s + 0.05 * depth_loss(pd, td) + 0.1 * 0.3
    assert total.item() == pytest.approx(expect.item(), rel=1e-5)
    assert parts["mse"].item() == pytest.approx(mse.item()) and parts["perceptual"].item() == pytest.approx(s.item())
    only, parts2 = student_losses(pred, tgt, None, None, None, ["mse"], None, LossWeights(mse=2.0))
    assert set(parts2) == {"mse"} and only.item() == pytest.approx(2 * mse.item())
    with pytest.raises(ConfigError, match="unknown loss"):
        student_losses(pred, tgt, None, None, None, ["mse", "lpips"])
    with pytest.raises(ConfigError, match="depth"):
        student_losses(pred, tgt, None, None, None, ["depth"])


def test_ssim_fallback_when_no_weights(monkeypatch):
    monkeypatch.delenv(LPIPS_ENV, raising=False)
    assert find_lpips_weights(None) is None
    perc = PerceptualLoss.from_weights(None)
    assert perc.kind == "ssim" and "SSIM" in perc.describe()
    x = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(3))
    assert perc(x, x).item() == pytest.approx(0.0, abs=1e-6)
    small = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(4))  # below the 11-px window
    assert 0.0 < perc(small, small.flip(-1)).item() < 2.0
    monkeypatch.setenv(LPIPS_ENV, "/nonexistent/vgg16.pth")
    with pytest.raises(WeightsError, match=LPIPS_ENV):
        PerceptualLoss.from_weights(None)
    with pytest.raises(WeightsError, match="--lpips-weights"):
        find_lpips_weights("/nonexistent/other.pth")


def _random_lpips_weights(seed: int) -> tuple[dict, dict]:
    """A torchvision-layout VGG16 ``features`` state dict and lpips-layout linear layers (random, seeded)."""
    torch.manual_seed(seed)
    net = LPIPSVGG()
    feats = {}
    for k, v in net.features.state_dict().items():
        feats[f"features.{k}"] = torch.randn_like(v) * (0.05 if v.ndim > 1 else 0.01)
    feats["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision's head: ignored
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}
    return feats, lins


def test_lpips_loading_layouts_and_files(tmp_path):
    from safetensors.torch import save_file

    feats, lins = _random_lpips_weights(0)
    a = LPIPSVGG().load_weights(feats, lins)
    # the lpips.LPIPS state dict layout (net.sliceK.N.*, linK.model.1.weight) gives the same network
    sliced = {}
    bounds = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]
    for k, v in feats.items():
        if k.startswith("features."):
            idx = int(k.split(".")[1])
            s = next(i for i, (lo, hi) in enumerate(bounds) if lo <= idx < hi)
            sliced[f"net.slice{s + 1}.{idx}.{k.split('.')[2]}"] = v
    b = LPIPSVGG().load_weights({**sliced, **lins, "scaling_layer.shift": torch.zeros(1, 3, 1, 1)})
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    dx = a(x, y)
    assert torch.allclose(dx, b(x, y)) and (dx > 0).all()
    assert torch.allclose(a(x, x), torch.zeros(2), atol=1e-7)
    # symmetric, and gradients reach the images but not the frozen weights
    assert torch.allclose(dx, a(y, x), rtol=1e-5)
    xr = x.clone().requires_grad_()
    a(xr, y).sum().backward()
    assert xr.grad.abs().sum() > 0 and all(p.grad is None for p in a.parameters())

    backbone = tmp_path / "vgg16.safetensors"
    save_file({k: v.contiguous() for k, v in feats.items()}, str(backbone))
    lin_file = tmp_path / "vgg.pth"
    torch.save(lins, lin_file)
    perc = PerceptualLoss.from_weights(backbone, lin_file)
    assert perc.kind == "lpips_vgg" and perc(x, y).item() == pytest.approx(dx.mean().item(), rel=1e-5)
    with pytest.raises(WeightsError, match="linear layers"):
        LPIPSVGG().load_weights(feats, None)
    with pytest.raises(WeightsError, match="VGG16"):
        LPIPSVGG().load_weights({"features.0.weight": feats["features.0.weight"]}, lins)
    if os.environ.get("LYRA_LPIPS_LIN") is None and not _lpips_src():
        with pytest.raises(WeightsError, match="linear layers"):
            load_lpips(backbone)


def _lpips_src() -> Path | None:
    """A folder holding the ``lpips`` package sources (``$LYRA_LPIPS_SRC``: an unzipped lpips wheel)."""
    src = os.environ.get("LYRA_LPIPS_SRC")
    return Path(src) if src and (Path(src) / "lpips" / "lpips.py").is_file() else None


def test_lpips_matches_the_lpips_package(monkeypatch):
    """Parity with the reference implementation (``pip download lpips --no-deps``, unzip, set LYRA_LPIPS_SRC).

    torchvision is not installed here: a stand-in module hands the lpips package the same (random) VGG16.
    """
    src = _lpips_src()
    if src is None:
        pytest.skip("set LYRA_LPIPS_SRC to an unzipped lpips wheel to compare with the reference")
    feats, _ = _random_lpips_weights(1)
    net = LPIPSVGG()
    net.features.load_state_dict({k.removeprefix("features."): v for k, v in feats.items()
                                  if k.startswith("features.")})
    tv, models = types.ModuleType("torchvision"), types.ModuleType("torchvision.models")

    class _VGG:
        def __init__(self) -> None:
            import copy

            self.features = copy.deepcopy(net.features)

    models.vgg16 = lambda *a, **k: _VGG()
    tv.models = models
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    monkeypatch.syspath_prepend(str(src))
    for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
        monkeypatch.delitem(sys.modules, name)
    import lpips

    ref = lpips.LPIPS(net="vgg", pretrained=True, verbose=False).eval()
    mine = load_lpips_from_state(ref.state_dict())
    g = torch.Generator().manual_seed(6)
    x = torch.rand(3, 3, 40, 56, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        expect = ref(2 * x - 1, 2 * y - 1).flatten()
    assert torch.allclose(mine(x, y), expect, rtol=1e-5, atol=1e-7)


def load_lpips_from_state(state: dict) -> LPIPSVGG:
    return LPIPSVGG().load_weights(state)
