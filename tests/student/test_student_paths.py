"""The decoder picks its fastest working SSD and attention paths by itself, says which, and falls back cleanly
(issue 22, item 1). CUDA and the fast kernels are stood in for on the CPU; the eager torch path is the oracle."""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F

from lyra.student import LatentDecoder
from lyra.student import decoder as dec
from lyra.student import mamba2 as mb
from lyra.student.mamba2 import Mamba2Block, ssd_chunked


@pytest.fixture
def fresh(monkeypatch):
    """No path has failed yet in this 'process'."""
    monkeypatch.setattr(mb, "_FAILED", set())
    monkeypatch.setattr(dec, "_ATTENTION_FAILED", set())


def _like(cuda: bool = True, tokens: int = 100_000, dtype: torch.dtype = torch.bfloat16):
    return types.SimpleNamespace(is_cuda=cuda, dtype=dtype, shape=(1, tokens, 512))


def test_auto_order_on_cuda(monkeypatch, fresh):
    monkeypatch.setattr(mb, "compile_available", lambda: True)
    monkeypatch.setattr(mb, "mamba_ssm_available", lambda: True)
    with torch.no_grad():
        assert mb.auto_candidates(_like()) == ("compile", "mamba_ssm", "torch")
        # a short sequence does not pay for compiling
        assert mb.auto_candidates(_like(tokens=mb.COMPILE_MIN_TOKENS - 1)) == ("mamba_ssm", "torch")
        assert mb.auto_candidates(_like(cuda=False)) == ("torch",)
        assert mb.auto_candidates(_like(dtype=torch.float64)) == ("torch",)
        monkeypatch.setattr(mb, "compile_available", lambda: False)
        monkeypatch.setattr(mb, "mamba_ssm_available", lambda: False)
        assert mb.auto_candidates(_like()) == ("torch",)
    # with gradients (training) auto does not compile; mamba_ssm (it has a backward) stays first where it imports
    monkeypatch.setattr(mb, "compile_available", lambda: True)
    assert mb.auto_candidates(_like()) == ("torch",)
    monkeypatch.setattr(mb, "mamba_ssm_available", lambda: True)
    assert mb.auto_candidates(_like()) == ("mamba_ssm", "torch")


def _fake_mamba_ssm_kernel(calls: list):
    """mamba_chunk_scan_combined's signature over the torch SSD (what the real kernel computes)."""

    def kernel(x, dt, A, B, C, chunk_size, D=None, dt_bias=None, dt_softplus=False):
        calls.append(chunk_size)
        delta = dt.float() + dt_bias if dt_bias is not None else dt.float()
        delta = F.softplus(delta) if dt_softplus else delta
        return ssd_chunked(x, delta, A, B, C, chunk_size=chunk_size, D=D)

    return kernel


def _block_and_oracle():
    torch.manual_seed(0)
    blk = Mamba2Block(16, d_state=8, headdim=8, chunk_size=8).eval()
    x = torch.randn(2, 24, 16)
    blk.mamba.backend = "torch"
    with torch.no_grad():
        ref = blk(x)
    blk.mamba.backend = "auto"
    return blk, x, ref


def _pretend_cuda(monkeypatch, compiled, mamba_ssm: bool, calls: list):
    monkeypatch.setattr(mb, "_is_cuda", lambda x: True)
    monkeypatch.setattr(mb, "COMPILE_MIN_TOKENS", 1)
    monkeypatch.setattr(mb, "compile_available", lambda: compiled is not None)
    monkeypatch.setattr(mb, "_compiled_block", lambda: compiled)
    monkeypatch.setattr(mb, "mamba_ssm_available", lambda: mamba_ssm)
    monkeypatch.setattr(mb, "_mamba_ssm_scan", lambda: _fake_mamba_ssm_kernel(calls))


def test_compiled_blocks_win_where_they_work(monkeypatch, fresh):
    blk, x, ref = _block_and_oracle()
    ran = []

    def compiled(*args):  # stands in for torch.compile(_mamba_block_torch): the same function
        ran.append(True)
        return mb._mamba_block_torch(*args)

    _pretend_cuda(monkeypatch, compiled, True, [])
    with torch.no_grad():
        out = blk(x)
    assert ran and blk.used_backend == "compile"
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_a_failing_compiler_falls_back_to_mamba_ssm_once(monkeypatch, fresh):
    blk, x, ref = _block_and_oracle()
    tries, calls = [], []

    def broken(*args):
        tries.append(True)
        raise RuntimeError("inductor: no working C compiler")

    _pretend_cuda(monkeypatch, broken, True, calls)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="'compile' failed"):
        out = blk(x)
    assert blk.used_backend == "mamba_ssm" and calls == [8, 8]  # both scan directions
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        blk(x)  # not tried again
    assert len(tries) == 1 and blk.used_backend == "mamba_ssm"


def test_everything_failing_ends_on_the_torch_path(monkeypatch, fresh):
    blk, x, ref = _block_and_oracle()

    def broken(*args):
        raise RuntimeError("triton: ptxas failed")

    _pretend_cuda(monkeypatch, broken, True, [])
    monkeypatch.setattr(mb, "_mamba_ssm_scan", lambda: (_ for _ in ()).throw(ImportError("no mamba_ssm")))
    with torch.no_grad(), pytest.warns(RuntimeWarning):
        out = blk(x)
    assert blk.used_backend == "torch"
    assert mb._FAILED == {"compile", "mamba_ssm"}
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_out_of_memory_is_not_a_fallback(monkeypatch, fresh):
    blk, x, _ = _block_and_oracle()

    def oom(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    _pretend_cuda(monkeypatch, oom, True, [])
    with torch.no_grad(), pytest.raises(torch.cuda.OutOfMemoryError):
        blk(x)
    assert mb._FAILED == set()


def test_an_explicit_backend_is_kept(monkeypatch, fresh):
    blk, x, ref = _block_and_oracle()
    blk.mamba.backend = "torch"
    _pretend_cuda(monkeypatch, lambda *a: pytest.fail("compiled although 'torch' was asked for"), True, [])
    with torch.no_grad():
        torch.testing.assert_close(blk(x), ref, rtol=0, atol=0)
    assert blk.used_backend == "torch"


def test_attention_takes_the_first_kernel_that_runs(monkeypatch, fresh):
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 2, 10, 8) for _ in range(3))
    with torch.no_grad():
        ref = F.scaled_dot_product_attention(q, k, v)
        y, name = dec.attention(q, k, v)
        assert name == "sdpa"  # CPU: SDPA's own choice
        monkeypatch.setattr(dec, "_cuda_inference", lambda q: True)
        # cuDNN cannot run on the CPU: skipped (and remembered), the next kernel runs
        y, name = dec.attention(q, k, v)
    assert name == "flash"
    assert ("cudnn", torch.float32, 8, "cpu") in dec._ATTENTION_FAILED
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(dec, "ATTENTION_ORDER", ("cudnn", "efficient", "math"))
    with torch.no_grad():
        y, name = dec.attention(q, k, v)
    assert name == "math"
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_triton_kernels_in_the_order_are_skipped_where_they_cannot_run(monkeypatch, fresh):
    """lyra's Triton kernels need CUDA (and bf16/fp16): on this float32 CPU input they are skipped, remembered, and
    the next kernel of the order runs; a model's own order replaces the module's."""
    torch.manual_seed(2)
    q, k, v = (torch.randn(1, 2, 10, 8) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v)
    monkeypatch.setattr(dec, "_cuda_inference", lambda q: True)
    with torch.no_grad():
        y, name = dec.attention(q, k, v, order=("triton_fp8", "triton", "math"))
    assert name == "math" and ("triton_fp8", torch.float32, 8, "cpu") in dec._ATTENTION_FAILED
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    model = LatentDecoder("tiny").eval()
    model.set_attention_kernels(("triton_fp8", "math"))
    blocks = [b.attn for b in model.enc_blocks if hasattr(b, "attn")]
    assert blocks and all(a.kernel_order == ("triton_fp8", "math") for a in blocks)
    model.set_attention_kernels(None)
    assert all(a.kernel_order is None for a in blocks)


def test_decoder_reports_its_paths(tiny_inputs, fresh):
    latents, cams, plucker = tiny_inputs
    model = LatentDecoder("tiny").eval()
    assert model.compute_paths() == {"ssd": None, "attention": None}
    with torch.no_grad():
        model(latents, cams, plucker)
    assert model.compute_paths() == {"ssd": "torch", "attention": "sdpa"}
