"""The denoiser's self-attention through a chosen kernel (issue 22, item 3: the step time at full shape).

diffusers' Cosmos blocks run self-attention (``attn1``) as: q/k/v projections, per-head RMSNorm of q and k, 3D RoPE,
then ``scaled_dot_product_attention`` over all ``t·h·w`` tokens — 56,320 tokens at full shape, where the product
``softmax(q kᵀ) v`` is most of a step's arithmetic. :class:`KernelSelfAttention` does the same steps and hands that
product to ``kernel``:

* ``sdpa``: PyTorch's ``scaled_dot_product_attention`` (what diffusers does; the reference);
* ``triton``: :func:`lyra.kernels.attention.attention_triton` with bf16 operands;
* ``triton_fp8``: the same kernel with e4m3 operands (twice the tensor-core rate on Hopper, fp8's rounding).

:func:`use_attention_kernel` installs it on every block's ``attn1`` (cross-attention to the text tokens, 512 keys,
stays diffusers' own). A kernel that cannot run here (no CUDA, no Triton, a GPU without e4m3) falls back to
``sdpa`` per call; ``last_kernel`` says what ran.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import ConfigError
from lyra.kernels.attention import attention_triton, triton_attention_available

__all__ = ["KERNELS", "KernelSelfAttention", "denoiser_attention_kernel", "use_attention_kernel"]

KERNELS = ("sdpa", "triton", "triton_fp8")


class KernelSelfAttention:
    """An attention processor for diffusers' ``Attention`` (Cosmos self-attention) with the product through
    ``kernel`` (:data:`KERNELS`). Inputs and output as diffusers' ``CosmosAttnProcessor2_0``:
    ``hidden_states [B, L, C]`` → ``[B, L, C]``."""

    def __init__(self, kernel: str = "sdpa") -> None:
        if kernel not in KERNELS:
            raise ConfigError(f"unknown attention kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
        self.kernel = kernel
        self.last_kernel: str | None = None

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Tensor | None = None,
                 attention_mask: Tensor | None = None, image_rotary_emb: tuple[Tensor, Tensor] | None = None) -> Tensor:
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        q = attn.to_q(hidden_states).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        k = attn.to_k(context).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        v = attn.to_v(context).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        q, k = attn.norm_q(q), attn.norm_k(k)
        if image_rotary_emb is not None:
            from diffusers.models.embeddings import apply_rotary_emb

            q = apply_rotary_emb(q, image_rotary_emb, use_real=True, use_real_unbind_dim=-2)
            k = apply_rotary_emb(k, image_rotary_emb, use_real=True, use_real_unbind_dim=-2)
        if k.shape[1] != q.shape[1]:  # grouped-query attention
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
        y, self.last_kernel = self._product(q, k, v, attention_mask)
        y = y.transpose(1, 2).flatten(2, 3).type_as(q)
        return attn.to_out[1](attn.to_out[0](y))

    def _product(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> tuple[Tensor, str]:
        if self.kernel != "sdpa" and mask is None and q.dtype in (torch.bfloat16, torch.float16) \
                and triton_attention_available(q.device, fp8=self.kernel == "triton_fp8"):
            return attention_triton(q, k, v, fp8=self.kernel == "triton_fp8"), self.kernel
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), "sdpa"


def use_attention_kernel(model: nn.Module, kernel: str) -> int:
    """Install :class:`KernelSelfAttention` (``kernel``) as the processor of every Cosmos block's ``attn1`` in
    ``model`` (a ``CosmosTransformer3DModel`` or anything holding one). Returns how many were installed."""
    processor = KernelSelfAttention(kernel)
    n = 0
    for block in model.modules():
        attn1 = getattr(block, "attn1", None)
        if attn1 is not None and hasattr(attn1, "set_processor"):
            attn1.set_processor(processor)
            n += 1
    return n


def denoiser_attention_kernel(model: nn.Module) -> str:
    """What ran the self-attention of ``model``'s last forward: the kernel of :class:`KernelSelfAttention` where it
    is installed (``sdpa`` after a fallback), else ``"diffusers"`` (diffusers' own processor, SDPA)."""
    ran = {getattr(getattr(b, "attn1", None), "processor", None) for b in model.modules()} - {None}
    ours = sorted({p.last_kernel or p.kernel for p in ran if isinstance(p, KernelSelfAttention)})
    return "+".join(ours) if ours else "diffusers"
