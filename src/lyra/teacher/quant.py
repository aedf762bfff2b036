"""Weight-only 8-bit quantisation of the teacher's linear layers: a memory mode for small GPUs.

The official denoiser (7.24 B parameters) holds 13.5 GiB of bf16 weights, almost all in ``nn.Linear`` layers.
:func:`quantize_linears` replaces each large ``nn.Linear`` by a :class:`QuantLinear` whose weight is stored in
8 bits — ``fp8`` (``float8_e4m3fn``) or ``int8`` — with one scale per output row (symmetric: ``amax / 448`` for
fp8, ``amax / 127`` for int8). The forward dequantises the weight to the activations' dtype (one transient copy of
one layer's weight) and calls ``F.linear``; the arithmetic stays in bf16, so only the weights' rounding changes:
relative error of one layer's output about 2–3 % for fp8 (3 mantissa bits) and well under 1 % for int8 on
Gaussian weights (measured in ``tests/teacher/test_quant.py``; the whole denoiser's error is measured on the GPU,
``benchmarks/gpu/denoiser_8bit.py``). Weights take half the bytes of bf16, which with the low-memory staging of
:mod:`lyra.lowmem` is what brings the official teacher's denoise stage under 16 GB.

Quantising works on any device (the CPU too, where the official models are parked in low-memory mode); it runs
layer by layer, so it needs at most one layer's float32 copy beyond the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import ConfigError

__all__ = ["COMPUTE", "MODES", "QuantLinear", "QuantStats", "fp8_linear", "fp8_linear_reference", "quantize_linears",
           "quantize_rows"]

#: Quantisation modes: storage dtype and the largest magnitude it holds.
MODES: dict[str, tuple[torch.dtype, float]] = {
    "fp8": (torch.float8_e4m3fn, 448.0),
    "int8": (torch.int8, 127.0),
}
#: How a quantised layer computes: ``dequant`` (the weight back in the activations' dtype, then a bf16 product:
#: memory saved, no speed), or ``fp8`` (activations rounded to e4m3 per row as well, one fp8 tensor-core product
#: through ``torch._scaled_mm`` with per-row scales: about twice bf16's rate on Hopper; falls back to ``dequant``
#: where that product is unavailable: CPU, GPUs before compute capability 8.9, int8 weights).
COMPUTE = ("dequant", "fp8")
#: Layers with fewer weights than this stay as they are (embeddings, small projections: no memory to win).
MIN_WEIGHTS = 1 << 16


class QuantLinear(nn.Module):
    """``nn.Linear`` with its weight in 8 bits and a float32 scale per output row.

    ``weight_q`` ``[out, in]`` (fp8 or int8 buffer), ``scale`` ``[out, 1]`` float32, ``bias`` kept as it was.
    ``forward(x [..., in]) -> [..., out]`` in ``x``'s dtype: ``F.linear(x, weight_q · scale, bias)``.
    """

    def __init__(self, linear: nn.Linear, mode: str = "fp8", compute: str = "dequant") -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"unknown quantisation {mode!r}; choose one of {', '.join(MODES)}")
        if compute not in COMPUTE:
            raise ConfigError(f"unknown quantised compute {compute!r}; choose one of {', '.join(COMPUTE)}")
        self.compute = compute
        qdtype, qmax = MODES[mode]
        self.mode = mode
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with torch.no_grad():
            w = linear.weight.detach().float()
            scale = w.abs().amax(1, keepdim=True).clamp_min(1e-12) / qmax
            q = w / scale
            q = q.round().clamp(-qmax, qmax) if qdtype == torch.int8 else q.clamp(-qmax, qmax)
            self.register_buffer("weight_q", q.to(qdtype))
            self.register_buffer("scale", scale)
        self.bias = linear.bias

    def dequantized(self, dtype: torch.dtype) -> Tensor:
        """The weight ``[out, in]`` in ``dtype``."""
        return (self.weight_q.to(torch.float32 if dtype == torch.float64 else dtype) * self.scale.to(dtype)).to(dtype)

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        if self.compute == "fp8" and self.mode == "fp8" and fp8_matmul_available(x) \
                and self.in_features % 16 == 0 and self.out_features % 16 == 0:  # the fp8 product's shape rule
            return fp8_linear(x, self.weight_q, self.scale, bias)
        return F.linear(x, self.dequantized(x.dtype), bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, mode={self.mode}, " \
               f"bias={self.bias is not None}"


def fp8_matmul_available(x: Tensor) -> bool:
    """Whether :func:`fp8_linear` runs for activations ``x``: CUDA, bf16/fp16, compute capability ≥ 8.9."""
    return (x.is_cuda and x.dtype in (torch.bfloat16, torch.float16)
            and torch.cuda.get_device_capability(x.device) >= (8, 9))


def quantize_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x [M, K]`` → (``float8_e4m3fn [M, K]``, float32 scales ``[M, 1]``) with ``x ≈ x₈ · scale`` per row
    (``scale = amax / 448``)."""
    scale = x.abs().amax(1, keepdim=True).float().clamp_min(1e-12) / MODES["fp8"][1]
    return (x.float() / scale).clamp_(-448.0, 448.0).to(torch.float8_e4m3fn), scale


def fp8_linear(x: Tensor, weight_q: Tensor, scale: Tensor, bias: Tensor | None) -> Tensor:
    """``x [..., in] @ (weight_q · scale)ᵀ + bias`` as one e4m3 product: ``x`` rounded per row
    (:func:`quantize_rows`), ``weight_q [out, in]`` e4m3 with ``scale [out, 1]``; float32 accumulation, output
    in ``x``'s dtype. The oracle is :func:`fp8_linear_reference`."""
    lead, k = x.shape[:-1], x.shape[-1]
    xq, sx = quantize_rows(x.reshape(-1, k))
    out = torch._scaled_mm(xq, weight_q.t(), scale_a=sx, scale_b=scale.t().float(), bias=bias,
                           out_dtype=x.dtype)
    return out.reshape(*lead, weight_q.shape[0])


def fp8_linear_reference(x: Tensor, weight_q: Tensor, scale: Tensor, bias: Tensor | None) -> Tensor:
    """:func:`fp8_linear` in float32 on any device (the same roundings of ``x``; exact products)."""
    lead, k = x.shape[:-1], x.shape[-1]
    xq, sx = quantize_rows(x.reshape(-1, k))
    out = (xq.float() * sx) @ (weight_q.float() * scale.float()).t()
    if bias is not None:
        out = out + bias.float()
    return out.reshape(*lead, weight_q.shape[0])


@dataclass(frozen=True)
class QuantStats:
    """What :func:`quantize_linears` did: ``layers`` replaced, their weight bytes ``before`` and ``after``
    (8-bit weights plus scales), and the ``mode``."""

    mode: str
    layers: int
    bytes_before: int
    bytes_after: int

    def describe(self) -> str:
        return (f"{self.layers} linear layers in {self.mode}: weights {self.bytes_before / 2**30:.2f} → "
                f"{self.bytes_after / 2**30:.2f} GiB")


def quantize_linears(module: nn.Module, mode: str = "fp8", min_weights: int = MIN_WEIGHTS,
                     compute: str = "dequant") -> QuantStats:
    """Replace, in place, every ``nn.Linear`` of ``module`` with at least ``min_weights`` weights by a
    :class:`QuantLinear` of ``mode`` (``fp8`` or ``int8``) computing as ``compute`` (:data:`COMPUTE`). Returns what
    it replaced. Inference only: the 8-bit weights are buffers, not parameters."""
    if mode not in MODES:
        raise ConfigError(f"unknown quantisation {mode!r}; choose one of {', '.join(MODES)}")
    layers = before = after = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and child.weight.numel() >= min_weights \
                    and child.weight.device.type != "meta":
                q = QuantLinear(child, mode, compute)
                before += child.weight.numel() * child.weight.element_size()
                after += q.weight_q.numel() * q.weight_q.element_size() + q.scale.numel() * q.scale.element_size()
                setattr(parent, name, q)
                layers += 1
    return QuantStats(mode, layers, before, after)
