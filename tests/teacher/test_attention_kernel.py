"""The denoiser's self-attention through a chosen kernel (lyra.teacher.attention) and the fp8 linear product
(lyra.teacher.quant.fp8_linear): issue 22, item 3."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lyra.errors import ConfigError
from lyra.teacher.attention import KernelSelfAttention, use_attention_kernel
from lyra.teacher.denoiser import TeacherDenoiser
from lyra.teacher.quant import QuantLinear, fp8_linear, fp8_linear_reference, fp8_matmul_available, quantize_rows
from tests.teacher.test_denoiser import inputs, small_config
from tests.teacher.test_quant import rel_l2

FP8_GPU = torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


def test_processor_reproduces_diffusers_self_attention():
    """Same projections, QK norms, RoPE and product as diffusers' Cosmos processor: the same output."""
    torch.manual_seed(0)
    model = TeacherDenoiser.from_config(small_config(layers=2)).eval()
    x, t, c = inputs()
    with torch.no_grad():
        ref = model(x, t, c)
        assert use_attention_kernel(model, "sdpa") == 2
        ours = model(x, t, c)
    assert torch.allclose(ours, ref, atol=1e-6, rtol=1e-5)
    procs = {type(b.attn1.processor).__name__ for b in model.transformer.transformer_blocks}
    assert procs == {"KernelSelfAttention"}
    assert all(type(b.attn2.processor).__name__ != "KernelSelfAttention" for b in model.transformer.transformer_blocks)


def test_triton_kernels_fall_back_to_sdpa_where_they_cannot_run():
    torch.manual_seed(0)
    model = TeacherDenoiser.from_config(small_config(layers=2)).eval()
    x, t, c = inputs()
    with torch.no_grad():
        ref = model(x, t, c)
        use_attention_kernel(model, "triton_fp8")
        out = model(x, t, c)  # float32 on the CPU: the kernel does not apply
    proc = model.transformer.transformer_blocks[0].attn1.processor
    assert proc.last_kernel == "sdpa" and torch.allclose(out, ref, atol=1e-6, rtol=1e-5)


def test_unknown_kernel_is_a_config_error():
    with pytest.raises(ConfigError, match="attention kernel"):
        KernelSelfAttention("flash4")


def test_quantize_rows_per_row_scale():
    x = torch.randn(5, 64)
    x[2] *= 500
    xq, s = quantize_rows(x)
    assert xq.dtype == torch.float8_e4m3fn and s.shape == (5, 1)
    assert torch.allclose(xq.float().abs().amax(1), torch.full((5,), 448.0))
    assert rel_l2(xq.float() * s, x) < 4e-2


def test_fp8_linear_reference_is_a_linear_with_rounded_operands():
    torch.manual_seed(0)
    lin = nn.Linear(256, 96)
    q = QuantLinear(lin, "fp8", compute="fp8")
    x = torch.randn(3, 7, 256)
    with torch.no_grad():
        ref = fp8_linear_reference(x, q.weight_q, q.scale, lin.bias)
        exact = lin(x)
        assert ref.shape == (3, 7, 96)
        assert 5e-3 < rel_l2(ref, exact) < 6e-2  # both operands rounded: a few per cent
        # on the CPU the fp8 compute falls back to the dequantised product (weights rounded, activations not)
        assert not fp8_matmul_available(x)
        assert torch.allclose(q(x), nn.functional.linear(x, q.dequantized(torch.float32), lin.bias))
    with pytest.raises(ConfigError, match="quantised compute"):
        QuantLinear(lin, "fp8", compute="fp4")


@pytest.mark.skipif(not FP8_GPU, reason="needs a GPU with e4m3 tensor cores")
def test_fp8_linear_on_gpu_matches_its_reference():
    torch.manual_seed(0)
    lin = nn.Linear(1024, 768).cuda()
    q = QuantLinear(lin, "fp8", compute="fp8")
    x = torch.randn(4, 300, 1024, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        out = fp8_linear(x, q.weight_q, q.scale, lin.bias.to(torch.bfloat16))
        ref = fp8_linear_reference(x, q.weight_q, q.scale, lin.bias)
        assert out.dtype == torch.bfloat16 and out.shape == (4, 300, 768)
        assert rel_l2(out.float(), ref) < 1e-2  # only the bf16 output rounding and summation order differ
        assert rel_l2(q(x).float(), ref) < 1e-2  # the layer takes the fp8 path on this GPU
