"""Weight-only 8-bit linear layers (lyra.teacher.quant): the memory mode of issue 22, item 4."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lyra.errors import ConfigError
from lyra.teacher.denoiser import TeacherDenoiser
from lyra.teacher.quant import QuantLinear, quantize_linears
from tests.teacher.test_denoiser import inputs, small_config


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize(("mode", "low", "high"), [("fp8", 5e-3, 4e-2), ("int8", 1e-4, 1e-2)])
def test_one_layer_error_and_storage(mode, low, high):
    torch.manual_seed(0)
    lin = nn.Linear(512, 384)
    x = torch.randn(7, 512)
    q = QuantLinear(lin, mode)
    assert q.weight_q.dtype == (torch.float8_e4m3fn if mode == "fp8" else torch.int8)
    assert q.weight_q.shape == (384, 512) and q.scale.shape == (384, 1)
    with torch.no_grad():
        err = rel_l2(q(x), lin(x))
    assert low < err < high  # rounded (not a copy), but close
    # per-row scales: a row 1000× larger than the others does not wash the others out
    with torch.no_grad():
        lin.weight[0] *= 1000
    q = QuantLinear(lin, mode)
    with torch.no_grad():
        assert rel_l2(q(x)[:, 1:], lin(x)[:, 1:]) < high


def test_activations_dtype_is_kept():
    lin = nn.Linear(64, 32)
    q = QuantLinear(lin, "fp8")
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    with torch.no_grad():
        y = q(x)
    assert y.dtype == torch.bfloat16 and y.shape == (3, 32)


def test_quantized_denoiser_stays_close_and_smaller():
    torch.manual_seed(0)
    model = TeacherDenoiser.from_config(small_config(layers=2)).eval()
    x, t, c = inputs()
    with torch.no_grad():
        ref = model(x, t, c)
    big = [m for m in model.modules() if isinstance(m, nn.Linear) and m.weight.numel() >= 1 << 16]
    for mode, tol in (("int8", 1e-2), ("fp8", 5e-2)):
        m = TeacherDenoiser.from_config(small_config(layers=2)).eval()
        m.load_state_dict(model.state_dict())
        stats = quantize_linears(m, mode)
        assert stats.layers == len(big) > 0
        assert stats.bytes_after < stats.bytes_before / 3.5  # float32 → 8 bits (+ a scale per row)
        assert not any(isinstance(mod, nn.Linear) and mod.weight.numel() >= 1 << 16 for mod in m.modules())
        with torch.no_grad():
            out = m(x, t, c)
        err = rel_l2(out, ref)
        assert 0 < err < tol, (mode, err)


def test_unknown_mode():
    with pytest.raises(ConfigError, match="quantisation"):
        quantize_linears(nn.Linear(4, 4), "int4")
