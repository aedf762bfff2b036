"""Non-causal multi-head attention forward in Triton, in bf16/fp16 or with FP8 (e4m3) operands.

``attention_triton(q, k, v, fp8=True)`` computes ``softmax(q kᵀ / sqrt(D)) v`` for ``q [B, H, Lq, D]``,
``k, v [B, H, Lk, D]`` (bf16 or fp16, CUDA) and returns ``[B, H, Lq, D]`` in ``q``'s dtype. It is the online-softmax
("flash") algorithm: one program holds a ``BLOCK_M``-row tile of queries and walks the keys in ``BLOCK_N`` tiles,
keeping the running row maximum ``m``, the running sum ``l`` and the output accumulator in float32 registers, so the
``Lq × Lk`` score matrix never reaches device memory.

FP8 mode (what makes it worth having: Hopper's tensor cores run e4m3 products at twice the bf16 rate):

* ``q`` (with the softmax scale and log2(e) folded in), ``k`` and ``v`` are each rounded to ``float8_e4m3fn`` with
  one float32 scale per (batch, head): ``scale = amax / 448`` (:func:`quantize_per_head`); ``v`` is stored
  transposed (``[B·H, D, Lk]``) because the fp8 tensor-core product wants both operands contiguous along the
  reduced dimension.
* Scores ``s = (q₈ · k₈ᵀ) · s_q · s_k`` accumulate in float32; the probabilities ``p = 2^(s − m + 8.8)`` lie in
  ``(0, 445.7]``, so that rounding them to e4m3 for the second product keeps small probabilities in its normal
  range instead of flushing them (the factor 2^8.8 cancels in ``acc / l``, where ``l`` sums the same float32 ``p``).
* The output is ``acc / l · s_v``.

:func:`attention_reference` reproduces exactly these roundings in float32 torch on any device (the oracle of the
kernel's tests); against exact attention its relative L2 error is a few per cent on random inputs (5.4–5.8 % at the
decoder's and the denoiser's shapes on the GPU; more the sharper the attention), which is what fp8's 3 mantissa
bits cost (``tests/kernels/test_attention.py``; on the GPU ``benchmarks/gpu/fast_paths.py --part attention``).
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

__all__ = [
    "E4M3_MAX",
    "P_LOG2_OFFSET",
    "attention_reference",
    "attention_triton",
    "quantize_per_head",
    "triton_attention_available",
]

#: Largest finite ``float8_e4m3fn``.
E4M3_MAX = 448.0
#: Probabilities are computed as ``2^(s − m + P_LOG2_OFFSET)``: at most 2^8.8 ≈ 445.7 < 448, so they use e4m3's
#: whole range; the factor cancels in the normalisation.
P_LOG2_OFFSET = 8.8
LOG2E = 1.4426950408889634
#: Head dims the kernel is built for (powers of two: Triton's tile shapes).
HEAD_DIMS = (16, 32, 64, 128, 256)


def _triton():
    try:
        import triton
        import triton.language as tl
    except ImportError:  # CPU-only installs
        return None
    return triton, tl


def triton_attention_available(device: torch.device | str, fp8: bool = True) -> bool:
    """Whether :func:`attention_triton` can run on ``device``: CUDA, Triton importable, and for ``fp8`` a GPU with
    e4m3 tensor cores (compute capability ≥ 8.9: Ada, Hopper and later)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available() or _triton() is None:
        return False
    if not fp8:
        return True
    return torch.cuda.get_device_capability(device) >= (8, 9)


def quantize_per_head(x: Tensor, fold: float = 1.0, transpose: bool = False) -> tuple[Tensor, Tensor]:
    """``x [B, H, L, D]`` → (``x · fold`` rounded to ``float8_e4m3fn`` ``[B·H, L, D]`` — or ``[B·H, D, L]`` with
    ``transpose`` —, and its float32 scales ``[B·H]``) with ``x · fold ≈ x₈ · scale`` per (batch, head)."""
    B, H, L, D = x.shape
    x = x.reshape(B * H, L, D)
    amax = x.abs().amax(dim=(1, 2)).float() * abs(fold)
    scale = amax.clamp_min(1e-12) / E4M3_MAX
    xq = (x.float() * (fold / scale)[:, None, None]).clamp_(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    if transpose:
        xq = xq.transpose(1, 2).contiguous()
    return xq, scale


def attention_reference(q: Tensor, k: Tensor, v: Tensor, fp8: bool = True, block_n: int = 128) -> Tensor:
    """The oracle of :func:`attention_triton`: the same roundings, in float32 torch, on any device.

    ``fp8=False`` is exact attention in float32. With ``fp8``, ``q``, ``k`` and ``v`` are rounded as the kernel
    rounds them, and the probabilities as well — relative to the running maximum of the key tiles of ``block_n``
    keys seen so far, exactly as the kernel's online softmax does. Returns ``[B, H, Lq, D]`` float32.
    """
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    if not fp8:
        s = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(D)
        return torch.softmax(s, dim=-1) @ v.float()
    q8, sq = quantize_per_head(q, LOG2E / math.sqrt(D))
    k8, sk = quantize_per_head(k)
    v8, sv = quantize_per_head(v)
    qf, kf, vf = q8.float(), k8.float(), v8.float()
    m = torch.full((B * H, Lq), -math.inf, device=q.device)
    l = torch.zeros(B * H, Lq, device=q.device)
    acc = torch.zeros(B * H, Lq, D, device=q.device)
    for n0 in range(0, Lk, block_n):
        s = (qf @ kf[:, n0:n0 + block_n].transpose(1, 2)) * (sq * sk)[:, None, None]
        m_new = torch.maximum(m, s.amax(-1))
        alpha = torch.exp2(m - m_new)
        p = torch.exp2(s - (m_new - P_LOG2_OFFSET)[..., None])
        l = l * alpha + p.sum(-1)
        p8 = p.to(torch.float8_e4m3fn).float()
        acc = acc * alpha[..., None] + p8 @ vf[:, n0:n0 + block_n]
        m = m_new
    out = acc / l[..., None] * sv[:, None, None]
    return out.reshape(B, H, Lq, D)


_KERNEL = None


def _build_kernel():
    """Compile-on-first-use: the Triton kernel (Triton is imported only on GPU machines)."""
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    if _triton() is None:
        raise RuntimeError("lyra's attention kernel needs Triton (installed with CUDA builds of torch)")
    triton, tl = _triton()

    configs = [
        triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
        for bm, bn, w, s in [(128, 64, 4, 3), (128, 64, 4, 4), (128, 128, 8, 3), (128, 128, 8, 2), (128, 128, 4, 3),
                             (256, 64, 8, 3)]
    ]

    @triton.heuristics({"n_full": lambda a: a["Lk"] // a["BLOCK_N"] * a["BLOCK_N"]})
    @triton.jit
    def _attn_fwd(Q, K, V, O, SQ, SK, SV, Lq, Lk,
                  s_qz, s_qm, s_qd, s_kz, s_kn, s_kd, s_vz, s_vn, s_vd, s_oz, s_om, s_od,
                  p_offset, n_full, HEAD_DIM: tl.constexpr, FP8: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        pid_m = tl.program_id(0)
        z = tl.program_id(1).to(tl.int64)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, HEAD_DIM)
        offs_n0 = tl.arange(0, BLOCK_N)
        row_ok = offs_m < Lq
        q = tl.load(Q + z * s_qz + offs_m[:, None] * s_qm + offs_d[None, :] * s_qd, mask=row_ok[:, None], other=0.0)
        c = tl.load(SQ + z) * tl.load(SK + z)  # log2-domain scale of the raw scores (> 0)
        m_i = tl.full([BLOCK_M], -float("inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
        k_base = K + z * s_kz + offs_d[:, None] * s_kd
        v_base = V + z * s_vz + offs_d[None, :] * s_vd
        for start_n in range(0, n_full, BLOCK_N):
            offs_n = start_n + offs_n0
            kt = tl.load(k_base + offs_n[None, :] * s_kn)
            s = tl.dot(q, kt)  # raw scores; the scale c > 0 enters through one FMA per score below
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.math.exp2((m_i - m_new) * c)
            p = tl.math.exp2(tl.fma(s, c, (p_offset - m_new * c)[:, None]))
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            vt = tl.load(v_base + offs_n[:, None] * s_vn)
            acc = tl.dot(p.to(vt.dtype), vt, acc)
            m_i = m_new
        if n_full < Lk:  # the last, partial key tile
            offs_n = n_full + offs_n0
            col_ok = offs_n < Lk
            kt = tl.load(k_base + offs_n[None, :] * s_kn, mask=col_ok[None, :], other=0.0)
            s = tl.where(col_ok[None, :], tl.dot(q, kt), -float("inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.math.exp2((m_i - m_new) * c)
            p = tl.math.exp2(tl.fma(s, c, (p_offset - m_new * c)[:, None]))
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            vt = tl.load(v_base + offs_n[:, None] * s_vn, mask=col_ok[:, None], other=0.0)
            acc = tl.dot(p.to(vt.dtype), vt, acc)
            m_i = m_new
        out = acc / l_i[:, None]
        if FP8:
            out = out * tl.load(SV + z)
        tl.store(O + z * s_oz + offs_m[:, None] * s_om + offs_d[None, :] * s_od, out.to(O.dtype.element_ty),
                 mask=row_ok[:, None])

    if os.environ.get("TRITON_INTERPRET") == "1":  # the CPU interpreter cannot benchmark configs: one fixed tile
        def launch(grid, *args, **kw):
            _attn_fwd[grid(dict(BLOCK_M=64, BLOCK_N=64))](*args, **kw, BLOCK_M=64, BLOCK_N=64)
    else:
        tuned = triton.autotune(configs=configs, key=["Lq", "Lk", "HEAD_DIM", "FP8"])(_attn_fwd)

        def launch(grid, *args, **kw):
            tuned[grid](*args, **kw)

    _KERNEL = (triton, launch)
    return _KERNEL


def attention_triton(q: Tensor, k: Tensor, v: Tensor, fp8: bool = True) -> Tensor:
    """``softmax(q kᵀ / sqrt(D)) v`` through the Triton kernel (module docstring): ``q [B, H, Lq, D]``,
    ``k, v [B, H, Lk, D]``, bf16 or fp16 on CUDA (or anywhere under ``TRITON_INTERPRET=1``), ``D`` in
    :data:`HEAD_DIMS`. Returns ``[B, H, Lq, D]`` in ``q``'s dtype. No gradient: an inference kernel."""
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    if k.shape != (B, H, Lk, D) or v.shape != k.shape:
        raise ValueError(f"attention_triton: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} "
                         "are not [B, H, L, D] with one B, H and D")
    if D not in HEAD_DIMS:
        raise ValueError(f"attention_triton: head dim {D} not in {HEAD_DIMS}")
    Z = B * H
    if fp8:
        qk, sq = quantize_per_head(q, LOG2E / math.sqrt(D))
        kk, sk = quantize_per_head(k)
        vk, sv = quantize_per_head(v, transpose=True)  # [Z, D, Lk]
        s_v = (vk.stride(0), vk.stride(2), vk.stride(1))
        p_offset = P_LOG2_OFFSET
    else:
        qk, kk, vk = q.reshape(Z, Lq, D), k.reshape(Z, Lk, D), v.reshape(Z, Lk, D)
        sk = sv = torch.ones(Z, device=q.device, dtype=torch.float32)
        sq = torch.full((Z,), LOG2E / math.sqrt(D), device=q.device, dtype=torch.float32)
        s_v = (vk.stride(0), vk.stride(1), vk.stride(2))
        p_offset = 0.0
    out = torch.empty(Z, Lq, D, device=q.device, dtype=q.dtype)
    triton, kernel = _build_kernel()

    def grid(meta):
        return (triton.cdiv(Lq, meta["BLOCK_M"]), Z)

    kernel(grid, qk, kk, vk, out, sq, sk, sv, Lq, Lk,
                 qk.stride(0), qk.stride(1), qk.stride(2), kk.stride(0), kk.stride(1), kk.stride(2), *s_v,
                 out.stride(0), out.stride(1), out.stride(2),
                 p_offset, HEAD_DIM=D, FP8=fp8)
    return out.reshape(B, H, Lq, D)
