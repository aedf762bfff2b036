"""A video tokenizer for the CPU: a fixed linear block code (PCA) and a learned decoder that refines it.

The ``tiny_block`` preset's tokenizer (issue 18). A network trained for minutes loses to a plain linear transform
code of the same latent layout (``docs/bench/tokenizer_issue18/linear_codes.json``: 26.7 dB for PCA against 23.7 dB for
the trained ``tiny`` Cosmos network at 16 channels), and the linear code's quality grows with the channel count
at almost no cost downstream (the teacher's and the student's token counts do not change). So:

* **Encoder: a linear block transform, fitted once and then frozen.** The causal layout of Cosmos CV8x8x8 is kept:
  frame 0 alone makes latent frame 0 (its ``s × s`` blocks, ``3·s²`` values each), and each later group of ``c_t``
  frames one more latent frame (blocks of ``c_t × s × s`` pixels, ``3·c_t·s²`` values each). Each block is
  projected on the ``C`` leading principal directions of training-video blocks (:func:`fit_block_code`):
  ``z = (b − μ) · E``, with ``E`` orthonormal columns. A latent channel is one principal component.
* **Decoder: learned, initialised to the exact inverse.** ``b̂ = z · D + μ`` (``D`` starts as ``Eᵀ``), then a small
  residual CNN on the reconstructed frames (space-to-depth by ``refine_stride``, one 3 × 3 × 3 convolution that
  sees the neighbouring frames, ``refine_blocks`` 2-D residual blocks, a zero-initialised output: the untrained
  decoder is the PCA reconstruction). It removes the block edges and restores what the code dropped.

Shapes follow :class:`lyra.tokenizer.Tokenizer`'s model range: ``x [B, 3, T, H, W]`` in [-1, 1], ``T = 1 + c_t·k``,
``H`` and ``W`` multiples of ``s``; latents ``[B, C, 1 + k, H/s, W/s]``. The encoder is orthonormal: a latent's
squared error is the squared error of the block it codes (in the code's subspace). The latent statistics are each
channel's std (:func:`fit_block_code`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import Tensor, nn

__all__ = ["BlockCodeAutoencoder", "BlockCovariance", "fit_block_code"]


@dataclass
class _Deterministic:
    """A posterior with one point (diffusers' ``latent_dist`` interface: ``mode()``, ``sample()``)."""

    z: Tensor

    def mode(self) -> Tensor:
        return self.z

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        return self.z


@dataclass
class _Encoded:
    latent_dist: _Deterministic


@dataclass
class _Decoded:
    sample: Tensor


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class _Refiner(nn.Module):
    """Residual correction ``[B, 3, T, H, W] → [B, 3, T, H, W]`` at ``1/stride`` resolution (zero at init)."""

    def __init__(self, channels: int, blocks: int, stride: int, image_channels: int = 3) -> None:
        super().__init__()
        self.stride = stride
        packed = image_channels * stride * stride
        self.conv_in = nn.Conv3d(packed, channels, (3, 3, 3), padding=(0, 1, 1))
        self.blocks = nn.ModuleList(_ResBlock(channels) for _ in range(blocks))
        self.conv_out = nn.Conv2d(channels, packed, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, y: Tensor) -> Tensor:
        b, c, t, h, w = y.shape
        r = self.stride
        p = F.pixel_unshuffle(y.transpose(1, 2).reshape(b * t, c, h, w), r)  # [B·T, c·r², h/r, w/r]
        p = p.reshape(b, t, -1, h // r, w // r).transpose(1, 2)  # [B, c·r², T, h/r, w/r]
        p = torch.cat([p[:, :, :1], p, p[:, :, -1:]], dim=2)  # replicate in time for the 3-frame kernel
        f = self.conv_in(p)  # [B, F, T, h/r, w/r]
        f = f.transpose(1, 2).reshape(b * t, -1, h // r, w // r)
        for blk in self.blocks:
            f = blk(f)
        out = F.pixel_shuffle(self.conv_out(F.silu(f)), r)  # [B·T, c, h, w]
        return out.reshape(b, t, c, h, w).transpose(1, 2)


class BlockCodeAutoencoder(ModelMixin, ConfigMixin):
    """Linear block encoder (frozen buffers) + learned linear decoder and refinement CNN; see the module docstring.

    Args:
        in_channels, out_channels: image channels (3).
        latent_channels: ``C``, principal components kept per block (both for frame 0 and the later groups).
        temporal_compression_ratio: frames per latent frame after the first (``c_t``).
        spatial_compression_ratio: block side ``s`` in pixels.
        refine_channels, refine_blocks, refine_stride: the refinement CNN (``refine_blocks = 0``: none).
        latents_mean, latents_std: latent statistics (``C × 16`` values, channel-major), as Cosmos' config holds.
        patch_size: 1 (no Haar patching; kept so that code reading Cosmos configs finds the key).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 3, latent_channels: int = 96,
                 temporal_compression_ratio: int = 8, spatial_compression_ratio: int = 8, refine_channels: int = 32,
                 refine_blocks: int = 2, refine_stride: int = 4, latents_mean: list[float] | None = None,
                 latents_std: list[float] | None = None, patch_size: int = 1) -> None:
        super().__init__()
        s, ct, c = spatial_compression_ratio, temporal_compression_ratio, in_channels
        d0, d1 = c * s * s, c * ct * s * s
        if latent_channels > d0:
            raise ValueError(f"{latent_channels} latent channels exceed the {d0} values of a first-frame block")
        # encoder: fixed (fitted by fit_block_code); persistent buffers, saved with the weights
        self.register_buffer("first_mean", torch.zeros(d0))
        self.register_buffer("first_basis", torch.eye(d0, latent_channels))
        self.register_buffer("rest_mean", torch.zeros(d1))
        self.register_buffer("rest_basis", torch.eye(d1, latent_channels))
        # the latent std per channel of the fit ([first frame, later frames], C): the config's statistics come from it
        self.register_buffer("code_std", torch.ones(2, latent_channels))
        # decoder: learned, starts as the encoder's inverse
        self.first_decode = nn.Parameter(torch.eye(d0, latent_channels).T.clone())
        self.rest_decode = nn.Parameter(torch.eye(d1, latent_channels).T.clone())
        self.first_decode_bias = nn.Parameter(torch.zeros(d0))
        self.rest_decode_bias = nn.Parameter(torch.zeros(d1))
        self.refiner = _Refiner(refine_channels, refine_blocks, refine_stride, out_channels) if refine_blocks > 0 \
            else None

    # ------------------------------------------------------------------ blocks
    def first_blocks(self, x: Tensor) -> Tensor:
        """Frame 0 of ``x [B, c, T, H, W]`` → blocks ``[B, H/s, W/s, c·s²]`` (order: channel, row, column)."""
        s = self.config.spatial_compression_ratio
        b, c, _, h, w = x.shape
        v = x[:, :, 0].reshape(b, c, h // s, s, w // s, s)
        return v.permute(0, 2, 4, 1, 3, 5).reshape(b, h // s, w // s, c * s * s)

    def rest_blocks(self, x: Tensor) -> Tensor:
        """Frames 1.. of ``x`` → blocks ``[B, k, H/s, W/s, c_t·c·s²]`` (order: frame, channel, row, column)."""
        s, ct = self.config.spatial_compression_ratio, self.config.temporal_compression_ratio
        b, c, t, h, w = x.shape
        k = (t - 1) // ct
        v = x[:, :, 1:].reshape(b, c, k, ct, h // s, s, w // s, s)
        return v.permute(0, 2, 4, 6, 3, 1, 5, 7).reshape(b, k, h // s, w // s, ct * c * s * s)

    def _unblock(self, first: Tensor, rest: Tensor | None, c: int) -> Tensor:
        """Inverse of :meth:`first_blocks` / :meth:`rest_blocks` → ``[B, c, 1 + c_t·k, H, W]``."""
        s, ct = self.config.spatial_compression_ratio, self.config.temporal_compression_ratio
        b, hb, wb, _ = first.shape
        v0 = first.reshape(b, hb, wb, c, s, s).permute(0, 3, 1, 4, 2, 5).reshape(b, c, 1, hb * s, wb * s)
        if rest is None or rest.shape[1] == 0:
            return v0
        k = rest.shape[1]
        vr = rest.reshape(b, k, hb, wb, ct, c, s, s).permute(0, 5, 1, 4, 2, 6, 3, 7)
        return torch.cat([v0, vr.reshape(b, c, k * ct, hb * s, wb * s)], dim=2)

    # ------------------------------------------------------------------ encode / decode
    def encode_latents(self, x: Tensor) -> Tensor:
        """``x [B, c, T, H, W]`` (model range) → latents ``[B, C, 1 + k, H/s, W/s]``."""
        f = self.first_blocks(x)
        z0 = (f - self.first_mean) @ self.first_basis  # [B, hb, wb, C]
        zs = [z0.unsqueeze(1)]
        if x.shape[2] > 1:
            zs.append((self.rest_blocks(x) - self.rest_mean) @ self.rest_basis)  # [B, k, hb, wb, C]
        return torch.cat(zs, dim=1).permute(0, 4, 1, 2, 3).contiguous()

    def decode_linear(self, z: Tensor) -> Tensor:
        """Latents ``[B, C, t, h, w]`` → the linear decoder's video ``[B, c, 1 + c_t(t−1), s·h, s·w]``."""
        zz = z.permute(0, 2, 3, 4, 1)  # [B, t, h, w, C]
        first = zz[:, 0] @ self.first_decode + self.first_mean + self.first_decode_bias
        rest = zz[:, 1:] @ self.rest_decode + self.rest_mean + self.rest_decode_bias if z.shape[2] > 1 else None
        return self._unblock(first, rest, self.config.out_channels)

    def decode_latents(self, z: Tensor) -> Tensor:
        """Latents → video in the model range (not clamped): linear decode, then the refinement."""
        y = self.decode_linear(z)
        return y if self.refiner is None else y + self.refiner(y)

    def encode(self, x: Tensor, return_dict: bool = True) -> _Encoded:
        """diffusers' interface: ``encode(x).latent_dist.mode()`` are the latents."""
        return _Encoded(_Deterministic(self.encode_latents(x)))

    def decode(self, z: Tensor, return_dict: bool = True) -> _Decoded:
        """diffusers' interface: ``decode(z).sample`` is the video."""
        return _Decoded(self.decode_latents(z))

    def forward(self, x: Tensor) -> _Decoded:
        """``decode(encode(x))`` (the training objective's round trip)."""
        return self.decode(self.encode_latents(x))

    # ------------------------------------------------------------------ statistics
    def code_statistics(self, frames: int = 16) -> tuple[Tensor, Tensor]:
        """Latent statistics ``[C, frames]`` of the fitted code: mean 0 (the code projects centred blocks) and each
        channel's std (frame 0: ``code_std[0]``, later frames: ``code_std[1]``)."""
        c = self.config.latent_channels
        std = self.code_std[1].float().cpu().view(c, 1).expand(c, frames).clone()
        std[:, 0] = self.code_std[0].float().cpu()
        return torch.zeros(c, frames), std

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def set_code(self, first_mean: Tensor, first_basis: Tensor, rest_mean: Tensor, rest_basis: Tensor) -> None:
        """Install an encoder (means and orthonormal bases ``[d, C]``) and reset the linear decoder to its inverse."""
        for name, v in (("first_mean", first_mean), ("first_basis", first_basis), ("rest_mean", rest_mean),
                        ("rest_basis", rest_basis)):
            getattr(self, name).copy_(v.to(getattr(self, name)))
        self.first_decode.copy_(self.first_basis.T)
        self.rest_decode.copy_(self.rest_basis.T)
        self.first_decode_bias.zero_()
        self.rest_decode_bias.zero_()


class BlockCovariance:
    """Running mean and covariance (float64) of the first-frame and later blocks of a stream of videos."""

    def __init__(self, model: BlockCodeAutoencoder) -> None:
        self.model = model
        self.sums: dict[str, list[Tensor | int]] = {}

    def add(self, x: Tensor) -> None:
        """Accumulate the blocks of ``x [B, c, T, H, W]`` (model range)."""
        parts = {"first": self.model.first_blocks(x)}
        if x.shape[2] > 1:
            parts["rest"] = self.model.rest_blocks(x)
        for name, blocks in parts.items():
            v = blocks.reshape(-1, blocks.shape[-1]).double()
            if name not in self.sums:
                d = v.shape[1]
                self.sums[name] = [torch.zeros(d, dtype=torch.float64, device=v.device),
                                   torch.zeros(d, d, dtype=torch.float64, device=v.device), 0]
            s = self.sums[name]
            s[0] = s[0] + v.sum(0)  # type: ignore[operator]
            s[1] = s[1] + v.T @ v  # type: ignore[operator]
            s[2] = int(s[2]) + v.shape[0]

    def principal(self, name: str, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """Mean ``[d]``, the ``k`` leading principal directions ``[d, k]`` and all eigenvalues (descending)."""
        s1, s2, n = self.sums[name]
        assert isinstance(s1, Tensor) and isinstance(s2, Tensor) and isinstance(n, int)
        mean = s1 / n
        cov = s2 / n - torch.outer(mean, mean)
        vals, vecs = torch.linalg.eigh(cov)
        vals, vecs = vals.flip(0), vecs.flip(1)
        return mean, vecs[:, :k], vals


@torch.no_grad()
def fit_block_code(model: BlockCodeAutoencoder, videos: Iterable[Tensor]) -> dict[str, float]:
    """Fit ``model``'s encoder by PCA on ``videos`` (``[B, T, 3, H, W]`` in [0, 1]) and set its latent statistics.

    The statistics are mean 0 and each channel's std, the root of its eigenvalue (per latent-frame kind: the first
    frame, the later ones), so that every normalised channel has the same scale, as the diffusion models expect (one
    std for all channels was tried first: the leading channels then had 5× the noise's scale and a teacher trained on
    them sampled 13 dB frames, docs/benchmarks.md). Returns the share of the block variance the code keeps.
    """
    acc = BlockCovariance(model)
    for v in videos:
        acc.add(v.to(model.first_mean.device, torch.float32).permute(0, 2, 1, 3, 4) * 2.0 - 1.0)
    c = model.config.latent_channels
    m0, e0, val0 = acc.principal("first", c)
    m1, e1, val1 = acc.principal("rest", c)
    model.set_code(m0.float(), e0.float(), m1.float(), e1.float())
    # each channel's std: the root of its eigenvalue, rounded to fp16 values (the weights file stores the buffer in
    # fp16, and the statistics must not drift between a fit and its export)
    code_std = torch.stack([val0[:c], val1[:c]]).clamp_min(1e-12).sqrt().float().half().float()
    model.code_std.copy_(code_std)
    mean, std = model.code_statistics()
    model.register_to_config(latents_mean=mean.flatten().tolist(), latents_std=std.flatten().tolist())
    return {"kept_variance_first": float(val0[:c].sum() / val0.clamp_min(0).sum()),
            "kept_variance_rest": float(val1[:c].sum() / val1.clamp_min(0).sum()),
            "latent_std_first_min_max": [float(code_std[0].min()), float(code_std[0].max())],
            "latent_std_rest_min_max": [float(code_std[1].min()), float(code_std[1].max())]}
