"""Exact, memory-bounded encode/decode of diffusers' ``AutoencoderKLCosmos`` (the Cosmos CV8x8x8 tokenizer).

Why not spatial tiles. diffusers' ``AutoencoderKLCosmos`` has ``use_tiling`` / ``enable_tiling`` flags, but
its ``encode``/``decode`` never read them (diffusers 0.35–0.42): only ``use_slicing`` (one video of the
batch at a time) works. Spatial tiles would not be exact for this network anyway: every normalisation is a
GroupNorm with *one* group, computed per frame over all channels and the *whole* frame, and the middle
blocks attend over the whole frame. A tile sees other statistics and other keys, so a tiled encode differs
everywhere, not only at the seams.

What is exact instead. Every layer of the Cosmos tokenizer acts along one axis only:

* per frame — the spatial ``(1, k, k)`` convolutions, the norms, spatial attention, spatial down/up-sampling,
  the Haar (un)patching (in groups of ``patch_size`` frames);
* per pixel — the causal temporal ``(k, 1, 1)`` convolutions and temporal down/up-sampling (they never mix
  rows or columns);
* pointwise — the ``1 × 1 × 1`` convolutions, SiLU, residual sums.

So each layer is run over slices of its input — per-frame layers over chunks of frames (dim 2 of
``[B, C, T, H, W]``), per-pixel layers over chunks of rows (dim 3) — writing into one preallocated output.
Consecutive layers that act along the same axis are fused into one pass (e.g. norm → SiLU → spatial conv),
so their temporaries stay chunk-sized. What is kept whole: the activation between passes (at most about
three at once: a block's input, the current and the next tensor) and the temporal attention of the middle
blocks (at the latent resolution, small). The spatial attention runs one chunk of frames at a time, sized
so that even a dense ``(H·W)²`` score matrix fits the budget — at 704 × 1280 pixels the middle blocks attend
over 88 · 160 = 14,080 positions with one 512-dim head, which no fused SDPA kernel takes, and the plain
path then holds a 14,080² score matrix per frame for all 16 latent frames at once.

The result equals diffusers' forward up to the float rounding of the per-chunk kernels (measured on the
CPU in float32: max |Δ| ≈ 1e-6 of outputs of size ≈ 1; tests/tokenizer/test_chunked.py). It is meant for
inference (no gradients; it works with autograd but then keeps every chunk's graph).

    from lyra.tokenizer.chunked import ChunkedCosmos
    z = ChunkedCosmos(vae, chunk_elements=1 << 26).encode(x)      # x [B, 3, T, H, W] in [-1, 1]
    y = ChunkedCosmos(vae).decode(z)                               # [B, 3, T, H, W]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DEFAULT_CHUNK_ELEMENTS", "ChunkedCosmos"]

#: Elements of one chunk of a layer's input (or output, whichever is larger): 64 Mi (128 MiB in bf16).
DEFAULT_CHUNK_ELEMENTS = 1 << 26
FRAMES, ROWS = 2, 3  # dims of [B, C, T, H, W]


class ChunkedCosmos:
    """Runs an ``AutoencoderKLCosmos``'s encoder/decoder layer by layer over chunks (see the module doc).

    Args:
        vae: the diffusers model (weights are used as they are; nothing is copied).
        chunk_elements: largest number of elements in one chunk of a layer's input or output. Temporaries
            of a fused pass are a few times this; the whole activations between passes are not bounded by it.
    """

    def __init__(self, vae: nn.Module, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> None:
        if chunk_elements < 1:
            raise ValueError(f"chunk_elements must be >= 1, got {chunk_elements}")
        self.vae = vae
        self.budget = int(chunk_elements)

    # ------------------------------------------------------------------ public
    def encode(self, x: Tensor) -> Tensor:
        """``[B, C, T, H, W]`` in the model's range (``T = 1 + 8k``, ``H``, ``W`` multiples of 8) → raw latents
        ``[B, 16, 1 + k, H/8, W/8]`` in the model's dtype (as ``vae.encode(x).latent_dist.mode()``)."""
        enc = self.vae.encoder
        h = self._patch(enc.patch_embed, x)
        h = self._projection(enc.conv_in, h)
        for block in enc.down_blocks:
            h = self._block(block, h, "downsamplers")
        h = self._mid(enc.mid_block, h)
        return self._out(enc.norm_out, enc.conv_out, h, self.vae.quant_conv)

    def decode(self, z: Tensor) -> Tensor:
        """Raw latents ``[B, 16, t, h, w]`` → ``[B, C, 1 + 8(t − 1), 8h, 8w]`` in the model's range, not clamped
        (as ``vae.decode(z).sample``)."""
        dec = self.vae.decoder
        h = self._conv(self.vae.post_quant_conv, z)
        h = self._projection(dec.conv_in, h)
        h = self._mid(dec.mid_block, h)
        for block in dec.up_blocks:
            h = self._block(block, h, "upsamplers")
        h = self._out(dec.norm_out, dec.conv_out, h, None)
        return self._unpatch(dec.unpatch_embed, h)

    # ------------------------------------------------------------------ slicing
    def _sliced(self, fn: Callable[..., Tensor], xs: tuple[Tensor, ...], dim: int, align: int = 1,
                per_slice: int | None = None) -> Tensor:
        """``fn`` applied to slices of ``xs`` along ``dim`` (all the same length there), the results joined
        along ``dim``: ``fn`` must map a slice of length ``n`` to a result of length ``r·n`` along ``dim`` for a
        fixed ratio ``r`` (1 for most layers; 1/4 for Haar patching, 4 for unpatching).

        ``align``: slice lengths are multiples of it (except a short last one). ``per_slice``: elements one
        index along ``dim`` costs (default: the largest of the inputs'); the first result refines it.
        """
        n = xs[0].shape[dim]
        cost = per_slice or max(max(1, x.numel() // max(1, x.shape[dim])) for x in xs)
        step = self._step(cost, align)
        if step >= n:
            return fn(*xs)
        out: Tensor | None = None
        ratio = Fraction(1)
        i = 0
        while i < n:
            j = min(n, i + step)
            y = fn(*(x.narrow(dim, i, j - i) for x in xs))
            if out is None:
                ratio = Fraction(y.shape[dim], j - i)
                if (n * ratio).denominator != 1:
                    raise RuntimeError(f"chunked layer: length {n} along dim {dim} does not map to a whole length "
                                       f"at ratio {ratio}")
                shape = list(y.shape)
                shape[dim] = int(n * ratio)
                out = y.new_empty(shape)
                out_cost = y.numel() // max(1, j - i)  # the output may be wider (more channels, upsampled)
                step = max(step if out_cost <= cost else self._step(out_cost, align), 1)
            a, b = i * ratio, j * ratio
            if a.denominator != 1 or b.denominator != 1 or y.shape[dim] != int(b - a):
                raise RuntimeError(f"chunked layer: a slice of {j - i} along dim {dim} gave {y.shape[dim]} "
                                   f"(expected ratio {ratio})")
            out.narrow(dim, int(a), int(b - a)).copy_(y)
            del y
            i = j
        assert out is not None
        return out

    def _step(self, cost: int, align: int) -> int:
        step = max(1, self.budget // max(1, cost))
        return max(align, step // align * align)

    def _frames(self, fn: Callable[..., Tensor], *xs: Tensor, align: int = 1, per_slice: int | None = None) -> Tensor:
        return self._sliced(fn, xs, FRAMES, align, per_slice)

    def _rows(self, fn: Callable[..., Tensor], *xs: Tensor) -> Tensor:
        return self._sliced(fn, xs, ROWS)

    # ------------------------------------------------------------------ layers
    @staticmethod
    def _axis(conv: nn.Module) -> int | None:
        """FRAMES for a per-frame convolution, ROWS for a per-pixel one, None if it mixes both."""
        if isinstance(conv, nn.Identity):
            return FRAMES
        kt, kh, kw = conv.kernel_size
        st, sh, sw = conv.stride
        if kt == 1 and st == 1:
            return FRAMES
        if kh == kw == 1 and sh == sw == 1 and not any(getattr(conv, "spatial_pad", (0,))):
            return ROWS
        return None

    def _conv(self, conv: nn.Module, x: Tensor) -> Tensor:
        axis = self._axis(conv)
        if axis is None:
            return conv(x)
        return self._sliced(conv, (x,), axis)

    def _projection(self, proj: nn.Module, x: Tensor) -> Tensor:
        """``CosmosConvProjection3d``: spatial conv (per frame), then temporal conv (per pixel)."""
        return self._conv(proj.conv_t, self._conv(proj.conv_s, x))

    @staticmethod
    def _per_frame_norm(norm: nn.Module) -> bool:
        return getattr(norm, "num_groups", None) == 1

    def _resnet(self, blk: nn.Module, x: Tensor) -> Tensor:
        """``CosmosResnetBlock3d``: ``conv2(silu(norm2(conv1(silu(norm1(x)))))) + shortcut(x)`` in four passes."""
        c1s, c1t, c2s, c2t = blk.conv1.conv_s, blk.conv1.conv_t, blk.conv2.conv_s, blk.conv2.conv_t
        axes = (self._axis(c1s), self._axis(c1t), self._axis(c2s), self._axis(c2t), self._axis(blk.conv_shortcut))
        if not (self._per_frame_norm(blk.norm1) and self._per_frame_norm(blk.norm2)
                and axes[0] == FRAMES and axes[2] == FRAMES and axes[1] == ROWS and axes[3] == ROWS
                and (isinstance(blk.conv_shortcut, nn.Identity) or blk.conv_shortcut.kernel_size == (1, 1, 1))):
            return blk(x)
        h = self._frames(lambda c: c1s(F.silu(blk.norm1(c))), x)
        h = self._rows(c1t, h)
        h = self._frames(lambda c: c2s(blk.dropout(F.silu(blk.norm2(c)))), h)
        return self._rows(lambda a, b: c2t(a) + blk.conv_shortcut(b), h, x)

    def _spatial_attention(self, attn: nn.Module, x: Tensor) -> Tensor:
        """Spatial attention (per frame), a chunk of frames at a time: also bounds the ``(H·W)²`` scores."""
        if not self._per_frame_norm(attn.norm):
            return attn(x)
        hw = x.shape[3] * x.shape[4]
        per_frame = max(x.numel() // max(1, x.shape[FRAMES]), x.shape[0] * hw * hw)
        return self._frames(attn, x, per_slice=per_frame)

    @staticmethod
    def _temporal_attention(attn: nn.Module, x: Tensor) -> Tensor:
        """Causal temporal attention, whole (its norm is per frame, its attention per pixel)."""
        t = x.shape[FRAMES]
        return attn(x, torch.tril(x.new_ones(t, t)).bool())

    def _block(self, block: nn.Module, x: Tensor, resampler: str) -> Tensor:
        """``CosmosDownBlock3d`` / ``CosmosUpBlock3d``: resnets (+ attention), then the down/up-sampler."""
        for resnet, attn, tattn in zip(block.resnets, block.attentions, block.temp_attentions, strict=True):
            x = self._resnet(resnet, x)
            if attn is not None:
                x = self._spatial_attention(attn, x)
            if tattn is not None:
                x = self._temporal_attention(tattn, x)
        for sampler in getattr(block, resampler) or ():
            x = self._downsample(sampler, x) if resampler == "downsamplers" else self._upsample(sampler, x)
        return x

    def _mid(self, mid: nn.Module, x: Tensor) -> Tensor:
        """``CosmosMidBlock3d``: resnet, then (spatial attention, temporal attention, resnet) per layer."""
        x = self._resnet(mid.resnets[0], x)
        for attn, tattn, resnet in zip(mid.attentions, mid.temp_attentions, mid.resnets[1:], strict=True):
            x = self._spatial_attention(attn, x)
            x = self._temporal_attention(tattn, x)
            x = self._resnet(resnet, x)
        return x

    def _downsample(self, ds: nn.Module, x: Tensor) -> Tensor:
        """``CosmosDownsample3d``: spatial (per frame) then temporal (per pixel) halving, then a 1×1×1 conv."""
        if not ds.spatial_downsample and not ds.temporal_downsample:
            return x
        conv3 = ds.conv3

        def spatial(c: Tensor) -> Tensor:
            c = F.pad(c, (0, 1, 0, 1, 0, 0), mode="constant", value=0)
            return ds.conv1(c) + F.avg_pool3d(c, kernel_size=(1, 2, 2), stride=(1, 2, 2))

        def temporal(c: Tensor) -> Tensor:
            c = torch.cat([c[:, :, :1, ...], c], dim=2)
            return ds.conv2(c) + F.avg_pool3d(c, kernel_size=(2, 1, 1), stride=(2, 1, 1))

        if ds.spatial_downsample and ds.temporal_downsample:
            x = self._frames(spatial, x)
            return self._rows(lambda c: conv3(temporal(c)), x)
        if ds.spatial_downsample:
            return self._frames(lambda c: conv3(spatial(c)), x)
        return self._rows(lambda c: conv3(temporal(c)), x)

    def _upsample(self, us: nn.Module, x: Tensor) -> Tensor:
        """``CosmosUpsample3d``: temporal (per pixel) then spatial (per frame) doubling, then a 1×1×1 conv."""
        if not us.spatial_upsample and not us.temporal_upsample:
            return x
        conv3 = us.conv3
        factor = 2 if x.shape[FRAMES] > 1 else 1  # diffusers: int(1.0 + 1.0 * (num_frames > 1))

        def temporal(c: Tensor) -> Tensor:
            c = c.repeat_interleave(factor, dim=2)[..., factor - 1:, :, :]
            return us.conv1(c) + c

        def spatial(c: Tensor) -> Tensor:
            c = c.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)
            return us.conv2(c) + c

        if us.temporal_upsample and us.spatial_upsample:
            x = self._rows(temporal, x)
            return self._frames(lambda c: conv3(spatial(c)), x)
        if us.temporal_upsample:
            return self._rows(lambda c: conv3(temporal(c)), x)
        return self._frames(lambda c: conv3(spatial(c)), x)

    def _out(self, norm: nn.Module, proj: nn.Module, x: Tensor, after: nn.Module | None) -> Tensor:
        """Output norm → SiLU → projection (→ the 1×1×1 ``quant_conv`` of the encoder)."""
        if not self._per_frame_norm(norm) or self._axis(proj.conv_s) != FRAMES or self._axis(proj.conv_t) != ROWS:
            x = proj(F.silu(norm(x)))
            return after(x) if after is not None else x
        x = self._frames(lambda c: proj.conv_s(F.silu(norm(c))), x)
        if after is not None and self._axis(after) is not None:
            return self._rows(lambda c: after(proj.conv_t(c)), x)
        x = self._rows(proj.conv_t, x)
        return after(x) if after is not None else x

    def _patch(self, pe: nn.Module, x: Tensor) -> Tensor:
        """Haar patching: repeat the first frame ``p`` times, then wavelet levels on groups of ``p`` frames."""
        p = pe.patch_size
        if pe.patch_method != "haar" or p & (p - 1):
            return pe(x)
        xi, xv = torch.split(x, [1, x.shape[FRAMES] - 1], dim=FRAMES)
        x = torch.cat([xi.repeat_interleave(p, dim=FRAMES), xv], dim=FRAMES)
        levels = int(math.log2(p))

        def haar(c: Tensor) -> Tensor:
            for _ in range(levels):
                c = pe._dwt(c, rescale=True)
            return c

        if x.shape[FRAMES] % p:
            return haar(x)  # diffusers' behaviour for such lengths (reflect padding); not chunked
        return self._frames(haar, x, align=p, per_slice=(x.numel() // x.shape[FRAMES]) * 8)

    def _unpatch(self, up: nn.Module, x: Tensor) -> Tensor:
        """Inverse Haar patching: each frame becomes ``p`` frames; the first ``p − 1`` are dropped."""
        p = up.patch_size
        if up.patch_method != "haar" or p & (p - 1):
            return up(x)
        levels = int(math.log2(p))

        def ihaar(c: Tensor) -> Tensor:
            for _ in range(levels):
                c = up._idwt(c, rescale=True)
            return c

        return self._frames(ihaar, x)[:, :, p - 1:, ...]
