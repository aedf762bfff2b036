"""GPU kernels written for lyra (Triton), each with a pure-torch oracle that runs anywhere.

:mod:`lyra.kernels.attention` is a FlashAttention-style forward in Triton with an FP8 (e4m3) mode for Hopper-class
GPUs; its oracle :func:`~lyra.kernels.attention.attention_reference` emulates the same rounding in float32.
Nothing here is needed on a CPU: callers ask :func:`~lyra.kernels.attention.triton_attention_available` first.
"""

from lyra.kernels.attention import attention_reference, attention_triton, triton_attention_available

__all__ = ["attention_reference", "attention_triton", "triton_attention_available"]
