"""lyra.kernels.attention: the Triton attention kernel and its float32 oracle.

The oracle's tests run everywhere. The kernel's run where it can: on CUDA (Triton installed; the fp8 ones on a GPU
with e4m3 tensor cores), and its fp16 path also under Triton's CPU interpreter (``TRITON_INTERPRET=1`` with Triton
installed). CI's CPU machine has no Triton, so those skip there; run this file on the GPU machine
(``python3 -m pytest tests/kernels``), and ``benchmarks/gpu/fast_paths.py`` for the kernel at full size.
"""

from __future__ import annotations

import importlib.util
import math
import os

import pytest
import torch
import torch.nn.functional as F

from lyra.kernels.attention import (
    E4M3_MAX,
    attention_reference,
    attention_triton,
    quantize_per_head,
    triton_attention_available,
)

HAVE_TRITON = importlib.util.find_spec("triton") is not None
INTERPRET = HAVE_TRITON and os.environ.get("TRITON_INTERPRET") == "1"
CUDA = torch.cuda.is_available() and HAVE_TRITON


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def qkv(B=1, H=2, Lq=96, Lk=160, D=32, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, L, D, generator=g).to(device, dtype) for L in (Lq, Lk, Lk)]


def test_quantize_per_head_scales_and_rounding():
    x = torch.randn(2, 3, 50, 16)
    x[1, 2] *= 1000  # one loud head does not wash out the others
    xq, scale = quantize_per_head(x)
    assert xq.dtype == torch.float8_e4m3fn and xq.shape == (6, 50, 16) and scale.shape == (6,)
    back = xq.float() * scale[:, None, None]
    flat = x.reshape(6, 50, 16)
    assert torch.allclose(back.abs().amax(dim=(1, 2)), flat.abs().amax(dim=(1, 2)), rtol=1e-6)  # amax ↦ 448 exactly
    assert float(xq.float().abs().max()) == E4M3_MAX
    # e4m3 keeps 3 mantissa bits: every element within 2^-4 relative (or the subnormal step) of its value
    err = (back - flat).abs()
    assert bool((err <= flat.abs() * 2**-4 + scale[:, None, None] * 2**-9).all())
    xt, _ = quantize_per_head(x, transpose=True)
    assert xt.shape == (6, 16, 50) and torch.equal(xt.float(), xq.float().transpose(1, 2))


def test_oracle_exact_mode_is_attention():
    q, k, v = qkv()
    assert rel_l2(attention_reference(q, k, v, fp8=False), F.scaled_dot_product_attention(q, k, v)) < 1e-6


@pytest.mark.parametrize("block_n", [32, 64, 160])
def test_oracle_fp8_error_is_fp8_sized(block_n):
    """fp8 operands cost a few per cent (3 mantissa bits), never more, whatever the key tiling."""
    q, k, v = qkv(Lk=200)
    exact = F.scaled_dot_product_attention(q, k, v)
    err = rel_l2(attention_reference(q, k, v, fp8=True, block_n=block_n), exact)
    assert 5e-3 < err < 6e-2


def test_oracle_probability_offset_keeps_small_weights():
    """One key holds the maximum and 4,095 others each a weight of 1e-3 of it (together 80 % of the total): rounded
    at [0, 1], 1e-3 is an e4m3 subnormal (its step is 2^-9 ≈ 2e-3) and comes back wrong by half; with the 2^8.8
    offset it is a normal number, rounded to 3 mantissa bits like everything else."""
    D, L = 64, 4096
    q = torch.zeros(1, 1, 8, D)
    q[..., 0] = 8 * math.log(1000.0)  # score of key 0 exceeds the others by ln(1000)
    k = torch.zeros(1, 1, L, D)
    k[..., 0, 0] = 1.0
    v = torch.randn(1, 1, L, D, generator=torch.Generator().manual_seed(0))
    exact = F.scaled_dot_product_attention(q, k, v)
    ours = rel_l2(attention_reference(q, k, v), exact)
    import lyra.kernels.attention as A

    old = A.P_LOG2_OFFSET
    try:
        A.P_LOG2_OFFSET = 0.0
        unscaled = rel_l2(attention_reference(q, k, v), exact)
    finally:
        A.P_LOG2_OFFSET = old
    assert ours < 0.08 and unscaled > 2 * ours


def test_kernel_rejects_bad_shapes():
    q, k, v = qkv(D=48)
    with pytest.raises(ValueError, match="head dim"):
        attention_triton(q, k, v)
    q, k, v = qkv()
    with pytest.raises(ValueError, match="not \\[B, H, L, D\\]"):
        attention_triton(q, k[:, :1], v)


def test_availability_on_cpu_is_false():
    assert not triton_attention_available("cpu")


@pytest.mark.skipif(not INTERPRET, reason="needs Triton and TRITON_INTERPRET=1")
@pytest.mark.parametrize(("Lq", "Lk"), [(64, 128), (100, 200)])
def test_kernel_fp16_under_interpreter(Lq, Lk):
    q, k, v = qkv(Lq=Lq, Lk=Lk, dtype=torch.float16)
    out = attention_triton(q, k, v, fp8=False)
    assert out.dtype == torch.float16 and out.shape == q.shape
    assert rel_l2(out.float(), attention_reference(q, k, v, fp8=False)) < 2e-3


@pytest.mark.skipif(not CUDA, reason="needs CUDA and Triton")
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize(("Lq", "Lk"), [(256, 512), (300, 1000), (200, 1008)])
def test_kernel_bf16_on_gpu(D, Lq, Lk):
    q, k, v = qkv(Lq=Lq, Lk=Lk, D=D, dtype=torch.bfloat16, device="cuda")
    out = attention_triton(q, k, v, fp8=False)
    assert rel_l2(out.float(), attention_reference(q, k, v, fp8=False)) < 1e-2


@pytest.mark.skipif(not (CUDA and triton_attention_available("cuda")), reason="needs a GPU with e4m3 tensor cores")
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize(("Lq", "Lk"), [(256, 512), (300, 1000), (200, 1008)])
def test_kernel_fp8_matches_its_oracle_on_gpu(D, Lq, Lk):
    q, k, v = qkv(Lq=Lq, Lk=Lk, D=D, dtype=torch.bfloat16, device="cuda")
    out = attention_triton(q, k, v, fp8=True).float()
    exact = attention_reference(q, k, v, fp8=False)
    assert rel_l2(out, exact) < 6e-2
    # the oracle's roundings, up to summation order, probability ties and the tile size the autotuner chose
    best = min(rel_l2(out, attention_reference(q, k, v, fp8=True, block_n=n)) for n in (64, 128))
    assert best < 0.25 * rel_l2(out, exact) or best < 5e-3


def test_sdpa_scale_convention():
    """The kernel folds 1/sqrt(D)·log2(e) into q; the oracle's exact mode uses SDPA's default scale."""
    q, k, v = qkv(D=16)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(16)
    assert rel_l2(attention_reference(q, k, v, fp8=False), torch.softmax(s, -1) @ v) < 1e-6
