"""The student: Lyra's 3DGS decoder (latents of all trajectories + cameras → pixel-aligned 3D Gaussians).

Data flow for ``B`` scenes of ``V`` views (trajectories), ``t`` latent frames of ``h × w`` latent pixels:

1. ``patch_embed`` (Conv3d, patch (1, 2, 2), + LayerNorm eps 1e-5) of the ``C``-channel latents
   (``DecoderConfig.latent_channels``: the tokenizer's channels, 16 for the Cosmos tokenizer), plus
   ``patch_plucker_embed`` of the ``2C``-channel Plücker latents (zero-initialised), plus — dynamic scenes only —
   ``patch_time_embed`` (source time) and ``patch_time_embed_tgt`` (target time, ``C`` channels each), both
   zero-initialised.
2. All views form one token sequence, view-major: token index ``((v·t + τ)·h/2 + y)·w/2 + x``. No positional
   embedding; the Mamba state and conv run across view boundaries.
3. ``enc_blocks``: bidirectional Mamba-2 blocks, with Transformer blocks (pre-LayerNorm eps 1e-6, qkv bias,
   exact-GELU MLP) at ``attention_blocks``; then ``enc_norm`` (LayerNorm eps 1e-6).
4. ``deconv`` (ConvTranspose3d, kernel (9, 2, 2), stride (8, 2, 2), padding (4, 0, 0)) run per view:
   12 channels for every latent-resolution pixel of each of the ``T = 1 + 8(t − 1)`` frames of the view.
5. ``heads.GaussianActivations``: positions along the frame's rays (latent resolution, OpenCV, unit
   directions) and the other activations → raw ``[B, N, 14]``, ``N = V·T·h·w`` in order (v, T, y, x).

The ``official`` preset has exactly the parameter names and shapes of the released checkpoint
(``tests/data/lyra1_decoder_state_dict.tsv``, 32.75 M parameters).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.geometry import Cameras
from lyra.kernels.attention import attention_triton, triton_attention_available
from lyra.student.heads import HEAD_CHANNELS, GaussianActivations, raw_to_gaussians
from lyra.student.mamba2 import BACKENDS, Mamba2Block


# --------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DecoderConfig:
    """Architecture of the decoder. ``official`` and ``tiny`` are in :data:`PRESETS`."""

    width: int = 512
    depth: int = 16
    attention_blocks: tuple[int, ...] = (7, 15)  # 0-based indices of the Transformer blocks
    d_state: int = 256
    expand: int = 2
    headdim: int = 64
    d_conv: int = 4
    ngroups: int = 1
    num_heads: int = 8  # attention heads
    mlp_ratio: float = 4.0
    latent_channels: int = 16  # C: the tokenizer's latent channels (16: Cosmos CV8x8x8)
    patch_size: int = 2
    temporal_compression: int = 8  # tokenizer: t latent frames ↔ 1 + 8(t − 1) frames
    spatial_compression: int = 8
    time_embeddings: bool = True  # the release has them (unused by the static model)
    chunk_size: int = 128  # SSD chunk length (tokens)
    ssd_backend: str = "auto"  # see lyra.student.mamba2.BACKENDS
    gradient_checkpointing: bool = False
    activations: GaussianActivations = field(default_factory=GaussianActivations)

    def __post_init__(self) -> None:
        if any(not 0 <= i < self.depth for i in self.attention_blocks):
            raise ConfigError(f"attention_blocks {self.attention_blocks} outside 0..{self.depth - 1}")
        if self.width % self.num_heads:
            raise ConfigError(f"width {self.width} is not divisible by {self.num_heads} attention heads")
        if (self.expand * self.width) % self.headdim:
            raise ConfigError(f"expand·width {self.expand * self.width} is not a multiple of headdim {self.headdim}")
        if self.ssd_backend not in BACKENDS:
            raise ConfigError(f"ssd_backend {self.ssd_backend!r} is not one of {', '.join(BACKENDS)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["attention_blocks"] = list(self.attention_blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DecoderConfig:
        """The config of :meth:`to_dict`'s dict; keys starting with ``_`` (comments) are ignored."""
        d = {k: v for k, v in d.items() if not k.startswith("_")}
        if "attention_blocks" in d:
            d["attention_blocks"] = tuple(d["attention_blocks"])
        if isinstance(d.get("activations"), dict):
            d["activations"] = GaussianActivations(**d["activations"])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown decoder config keys: {', '.join(sorted(unknown))}")
        return cls(**d)

    def with_(self, **changes) -> DecoderConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


PRESETS: dict[str, DecoderConfig] = {
    # The release: 16 blocks, Transformer at 8 and 16 (1-based), d_state 256, 32.75 M parameters.
    "official": DecoderConfig(),
    # Same design at CPU scale: a forward over 6 views × 3 × 22 × 40 latents well under 1 s on 2 cores.
    "tiny": DecoderConfig(width=128, depth=6, attention_blocks=(2, 5), d_state=32, headdim=32, num_heads=4,
                          chunk_size=64),
}


def decoder_config(preset: str | DecoderConfig) -> DecoderConfig:
    """The config of a preset name (``official``, ``tiny``), or ``preset`` itself when already a config."""
    if isinstance(preset, DecoderConfig):
        return preset
    if preset not in PRESETS:
        raise ConfigError(f"unknown student preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


# --------------------------------------------------------------------------------------------- layers
class PatchEmbed3D(nn.Module):
    """Conv3d patchify + LayerNorm: ``[N, C, t, h, w]`` → tokens ``[N, t·(h/p)·(w/p), width]`` (order t, y, x)."""

    def __init__(self, in_channels: int, width: int, patch: tuple[int, int, int], zero_init: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_channels, width, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(width, eps=1e-5)
        fan_out = math.prod(patch) * width
        nn.init.normal_(self.proj.weight, 0.0, math.sqrt(2.0 / fan_out))
        nn.init.zeros_(self.proj.bias)
        if zero_init:
            nn.init.zeros_(self.proj.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


#: SDPA kernels that inference on CUDA tries, fastest first (one paper-scale Transformer block on an H100: cuDNN
#: 0.518 s, flash 0.766 s, memory-efficient 1.69 s; docs/bench/student_official_h100.json).
ATTENTION_ORDER: tuple[str, ...] = ("cudnn", "flash", "efficient", "math")
#: lyra's own Triton kernels (:mod:`lyra.kernels.attention`), usable in :data:`ATTENTION_ORDER` on CUDA in bf16/fp16:
#: ``triton`` (bf16 operands) and ``triton_fp8`` (e4m3 operands: twice the tensor-core rate on Hopper, at fp8's
#: rounding error).
TRITON_KERNELS = ("triton", "triton_fp8")
#: (kernel, dtype, head dim, device) that raised "no available kernel" in this process: not tried again.
_ATTENTION_FAILED: set[tuple] = set()


def _cuda_inference(q: Tensor) -> bool:
    return q.is_cuda and not torch.is_grad_enabled()


def attention(q: Tensor, k: Tensor, v: Tensor, order: tuple[str, ...] | None = None) -> tuple[Tensor, str]:
    """``scaled_dot_product_attention(q, k, v)`` (``[b, heads, L, head_dim]``, scale 1/sqrt(head dim)) and the
    kernel that ran it.

    CUDA inference runs the first kernel of :data:`ATTENTION_ORDER` that takes these inputs (a kernel that cannot,
    e.g. cuDNN on an older GPU, is skipped for the rest of the process); elsewhere (CPU, training) SDPA picks by
    itself and the name is ``"sdpa"``. ``order`` replaces :data:`ATTENTION_ORDER` for this call.
    """
    if not _cuda_inference(q):
        return F.scaled_dot_product_attention(q, k, v), "sdpa"
    import warnings

    from torch.nn.attention import SDPBackend, sdpa_kernel

    kernels = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    for name in ATTENTION_ORDER if order is None else order:
        key = (name, q.dtype, q.shape[-1], str(q.device))
        if key in _ATTENTION_FAILED:
            continue
        if name in TRITON_KERNELS:
            fp8 = name == "triton_fp8"
            if q.dtype in (torch.bfloat16, torch.float16) and triton_attention_available(q.device, fp8=fp8):
                try:
                    return attention_triton(q, k, v, fp8=fp8), name
                except torch.cuda.OutOfMemoryError:
                    raise
                except Exception:  # noqa: BLE001 - a kernel Triton cannot build here: the next one
                    pass
            _ATTENTION_FAILED.add(key)
            continue
        try:
            with warnings.catch_warnings():  # SDPA warns why a kernel does not apply before it raises
                warnings.simplefilter("ignore")
                with sdpa_kernel(kernels[name]):
                    return F.scaled_dot_product_attention(q, k, v), name
        except torch.cuda.OutOfMemoryError:
            raise
        except RuntimeError:
            _ATTENTION_FAILED.add(key)
    return F.scaled_dot_product_attention(q, k, v), "sdpa"


class Attention(nn.Module):
    """Multi-head self-attention (``qkv`` with bias, ``proj``) through ``scaled_dot_product_attention``
    (:func:`attention`; ``used_kernel`` names the kernel of the last forward)."""

    used_kernel: str | None = None
    #: The kernels to try in CUDA inference, first that runs wins; ``None``: :data:`ATTENTION_ORDER`.
    kernel_order: tuple[str, ...] | None = None

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        b, L, d = x.shape
        q, k, v = self.qkv(x).reshape(b, L, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        y, self.used_kernel = attention(q, k, v, self.kernel_order)
        return self.proj(y.transpose(1, 2).reshape(b, L, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf) form
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm ViT block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``; LayerNorm eps 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def conv_transpose3d_by_matmul(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int, int],
                               padding_t: int) -> Tensor:
    """``F.conv_transpose3d`` for a kernel whose spatial size equals its spatial stride (no spatial overlap)
    and only temporal padding — as one matrix product plus a temporal overlap-add.

    ``x`` [N, C, t, h, w], ``weight`` [C, O, kt, sh, sw] → [N, O, (t − 1)·st + kt − 2·padding_t, h·sh, w·sw].
    Much faster than the generic transposed 3D convolution on GPU, and exactly the same sums.
    """
    n, c, t, h, w = x.shape
    _, o, kt, kh, kw = weight.shape
    st, sh, sw = stride
    if (kh, kw) != (sh, sw):
        raise ValueError("conv_transpose3d_by_matmul needs the spatial kernel to equal the spatial stride")
    y = x.permute(0, 2, 3, 4, 1).reshape(-1, c) @ weight.reshape(c, -1).to(x.dtype)  # [n·t·h·w, o·kt·kh·kw]
    y = y.reshape(n, t, h, w, o, kt, kh, kw).permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(n, o, t, kt, h * kh, w * kw)
    full = y.new_zeros(n, o, (t - 1) * st + kt, h * kh, w * kw)
    for k in range(kt):  # frame st·τ + k of the uncropped output receives tap k of latent frame τ
        full[:, :, k: k + (t - 1) * st + 1: st] += y[:, :, :, k]
    out = full[:, :, padding_t: full.shape[2] - padding_t]
    if bias is not None:
        out = out + bias.to(out.dtype)[None, :, None, None, None]
    return out


# --------------------------------------------------------------------------------------------- decoder
class VideoEncoder(Protocol):
    """What the Plücker/time paths need of the tokenizer: ``encode(video [B, 3, T, H, W]) -> [B, C, t, h, w]``
    (``C`` its latent channels; :meth:`LatentDecoder.check_tokenizer` checks a tokenizer's ``latent_channels``)."""

    def encode(self, video: Tensor) -> Tensor: ...


class LatentDecoder(nn.Module):
    """Lyra's 3DGS decoder. Build with ``LatentDecoder("official")`` / ``LatentDecoder("tiny")`` or a config.

    ``forward(latents, cameras, plucker_latents) -> raw [B, N, 14]``; :meth:`to_gaussians` turns that into
    one ``Gaussians`` per scene. See the module docstring for shapes and order.
    """

    def __init__(self, config: str | DecoderConfig = "official") -> None:
        super().__init__()
        self.config = cfg = decoder_config(config)
        p = cfg.patch_size
        blocks: list[nn.Module] = []
        for i in range(cfg.depth):
            if i in cfg.attention_blocks:
                blocks.append(TransformerBlock(cfg.width, cfg.num_heads, cfg.mlp_ratio))
            else:
                blocks.append(Mamba2Block(cfg.width, d_state=cfg.d_state, d_conv=cfg.d_conv, expand=cfg.expand,
                                          headdim=cfg.headdim, ngroups=cfg.ngroups, chunk_size=cfg.chunk_size,
                                          backend=cfg.ssd_backend))
        self.enc_blocks = nn.ModuleList(blocks)
        self.enc_norm = nn.LayerNorm(cfg.width, eps=1e-6)
        patch = (1, p, p)
        self.patch_embed = PatchEmbed3D(cfg.latent_channels, cfg.width, patch)
        self.patch_plucker_embed = PatchEmbed3D(2 * cfg.latent_channels, cfg.width, patch, zero_init=True)
        if cfg.time_embeddings:
            self.patch_time_embed = PatchEmbed3D(cfg.latent_channels, cfg.width, patch, zero_init=True)
            self.patch_time_embed_tgt = PatchEmbed3D(cfg.latent_channels, cfg.width, patch, zero_init=True)
        st = cfg.temporal_compression
        self.deconv = nn.ConvTranspose3d(cfg.width, HEAD_CHANNELS, kernel_size=(st + 1, p, p), stride=(st, p, p),
                                         padding=(st // 2, 0, 0))
        self._init_linear_and_norms()
        self.activations = cfg.activations
        #: The contents of ``student.json`` when loaded with :meth:`from_pretrained` (else empty).
        self.meta: dict = {}

    def check_tokenizer(self, tokenizer: object, name: str = "its tokenizer") -> None:
        """WeightsError (one line) unless ``tokenizer`` (anything with ``latent_channels``) makes the ``C``-channel
        latents this decoder reads (``config.latent_channels``); ``name`` says which tokenizer in the message."""
        from lyra.errors import WeightsError

        c = getattr(tokenizer, "latent_channels", None)
        if c is not None and int(c) != self.config.latent_channels:
            raise WeightsError(f"the student reads {self.config.latent_channels}-channel latents, {name} makes {c}")

    # ----------------------------------------------------------------- export folder
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> LatentDecoder:
        """A student export folder (``lyra train student``) → the decoder in eval mode on ``device``;
        ``model.meta`` holds its ``student.json`` (``tokenizer``, ``single_view``, ``dynamic``, …). WeightsError if
        the folder is not a student export (:mod:`lyra.student.pretrained`)."""
        from lyra.student.pretrained import read_pretrained
        from lyra.student.state_dict import load_state_dict_strict, read_state_dict

        meta, weights = read_pretrained(path)
        model = cls(DecoderConfig.from_dict(meta["decoder"]))
        load_state_dict_strict(model, read_state_dict(weights), source=str(weights))
        model = model.to(device=device, dtype=dtype).eval()
        model.meta = meta
        return model

    def save_pretrained(self, export_dir: str | os.PathLike, meta: dict | None = None, record: dict | None = None,
                        config: DecoderConfig | None = None) -> Path:
        """Write this decoder as a student export folder (fp16 weights, ``student.json`` with ``config`` —
        default this model's — and ``meta``, optionally ``training_record.json``), replacing an earlier student
        export there. Returns the folder."""
        from lyra.student.pretrained import save_pretrained

        return save_pretrained(self.state_dict(), (config or self.config).to_dict(), export_dir, meta, record)

    def _init_linear_and_norms(self) -> None:
        # The release's init: truncated-normal(0.02) Linear weights, zero biases, unit LayerNorms.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ----------------------------------------------------------------- switches
    def set_gradient_checkpointing(self, enabled: bool = True) -> LatentDecoder:
        """Recompute each block (and the head) in the backward pass instead of storing activations."""
        self.config = replace(self.config, gradient_checkpointing=bool(enabled))
        return self

    def set_ssd_backend(self, backend: str) -> LatentDecoder:
        """Pick the SSD implementation of every Mamba block (see ``lyra.student.mamba2.BACKENDS``)."""
        self.config = replace(self.config, ssd_backend=backend)
        for m in self.modules():
            if hasattr(m, "mamba_scans"):
                m.backend = backend
        return self

    def set_attention_kernels(self, order: tuple[str, ...] | None) -> LatentDecoder:
        """The attention kernels this model tries in CUDA inference (:func:`attention`), e.g.
        ``("triton_fp8",) + ATTENTION_ORDER`` for lyra's FP8 kernel first; ``None`` restores the default. Returns
        ``self``."""
        for b in self.enc_blocks:
            if isinstance(b, TransformerBlock):
                b.attn.kernel_order = None if order is None else tuple(order)
        return self

    def compute_paths(self) -> dict[str, str | None]:
        """The paths the last forward ran: ``{"ssd": ..., "attention": ...}`` (``"compile"``, ``"mamba_ssm"`` or
        ``"torch"``; an SDPA kernel, see :func:`attention`), several joined by ``+``, ``None`` before a forward
        (or where the config has no such block)."""
        ssd = sorted({b.used_backend for b in self.enc_blocks if isinstance(b, Mamba2Block) and b.used_backend})
        att = sorted({b.attn.used_kernel for b in self.enc_blocks
                      if isinstance(b, TransformerBlock) and b.attn.used_kernel})
        return {"ssd": "+".join(ssd) or None, "attention": "+".join(att) or None}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ----------------------------------------------------------------- shapes
    def frames_per_view(self, latent_frames: int) -> int:
        """Decoded frames per view for ``latent_frames`` latent frames: ``1 + 8(t − 1)``."""
        return 1 + self.config.temporal_compression * (latent_frames - 1)

    def _check_inputs(self, latents: Tensor, plucker_latents: Tensor) -> tuple[int, int, int, int, int]:
        cfg = self.config
        if latents.ndim != 6 or latents.shape[2] != cfg.latent_channels:
            raise ValueError(f"latents must be [B, V, {cfg.latent_channels}, t, h, w], got {tuple(latents.shape)}")
        B, V, _, t, h, w = latents.shape
        if h % cfg.patch_size or w % cfg.patch_size:
            raise ValueError(f"latent size {h}x{w} is not divisible by the patch size {cfg.patch_size}")
        want = (B, V, 2 * cfg.latent_channels, t, h, w)
        if tuple(plucker_latents.shape) != want:
            raise ValueError(f"plucker_latents must be {list(want)}, got {list(plucker_latents.shape)}")
        return B, V, t, h, w

    # ----------------------------------------------------------------- forward
    def tokens(self, latents: Tensor, plucker_latents: Tensor, time_latents: Tensor | None = None,
               target_time_latents: Tensor | None = None) -> Tensor:
        """Embedded token sequence ``[B, V·t·(h/2)·(w/2), width]`` (views concatenated, view-major).

        Args:
            latents: raw tokenizer latents ``[B, V, C, t, h, w]`` (``C`` = ``config.latent_channels``).
            plucker_latents: ``[B, V, 2C, t, h, w]`` (see :func:`plucker_latents`).
            time_latents: dynamic scenes only: tokenizer latents of the source-time video
                ``[B, V or 1, C, t, h, w]`` (see :func:`time_latents`).
            target_time_latents: dynamic only: latents of the target-time video ``[B, V or 1, C, 1 or t, h, w]``.
        """
        B, V, t, h, w = self._check_inputs(latents, plucker_latents)
        ckpt = self.config.gradient_checkpointing and torch.is_grad_enabled()
        x = self._embed(self.patch_embed, latents, ckpt) + self._embed(self.patch_plucker_embed, plucker_latents, ckpt)
        for lat, name in ((time_latents, "patch_time_embed"), (target_time_latents, "patch_time_embed_tgt")):
            if lat is None:
                continue
            if not self.config.time_embeddings:
                raise ValueError("this decoder config has no time embeddings (time_embeddings=False)")
            if lat.ndim != 6 or lat.shape[0] != B or lat.shape[1] not in (1, V) or lat.shape[-2:] != (h, w) \
                    or lat.shape[3] not in (1, t) or lat.shape[2] != self.config.latent_channels:
                raise ValueError(f"{name}: time latents must be [B, V or 1, {self.config.latent_channels}, t or 1, "
                                 f"h, w], "
                                  f"got {tuple(lat.shape)}")
            lat = lat.expand(B, V, lat.shape[2], t, h, w)
            x = x + self._embed(getattr(self, name), lat, ckpt)
        return x

    @staticmethod
    def _embed(embed: PatchEmbed3D, lat: Tensor, ckpt: bool) -> Tensor:
        B, V = lat.shape[:2]
        flat = lat.reshape(B * V, *lat.shape[2:])
        out = checkpoint(embed, flat, use_reentrant=False) if ckpt else embed(flat)
        return out.reshape(B, -1, out.shape[-1])  # [B, V·t·h'·w', width], view-major

    def features(self, latents: Tensor, plucker_latents: Tensor, time_latents: Tensor | None = None,
                 target_time_latents: Tensor | None = None) -> Tensor:
        """Pre-activation head output ``[B, V, 12, T, h, w]``, ``T = 1 + 8(t − 1)``."""
        B, V, t, h, w = self._check_inputs(latents, plucker_latents)
        x = self.tokens(latents, plucker_latents, time_latents, target_time_latents)
        ckpt = self.config.gradient_checkpointing and torch.is_grad_enabled()
        for blk in self.enc_blocks:
            x = checkpoint(blk, x, use_reentrant=False) if ckpt else blk(x)
        p = self.config.patch_size
        x = self.enc_norm(x)
        x = x.reshape(B * V, t, h // p, w // p, -1).permute(0, 4, 1, 2, 3)  # per view: [B·V, width, t, h', w']
        head = self._head if not ckpt else (lambda y: checkpoint(self._head, y, use_reentrant=False))
        out = head(x)
        return out.reshape(B, V, *out.shape[1:])

    def _head(self, x: Tensor) -> Tensor:
        d = self.deconv
        return conv_transpose3d_by_matmul(x, d.weight, d.bias, d.stride, d.padding[0])

    def forward(self, latents: Tensor, cameras: Cameras, plucker_latents: Tensor, time_latents: Tensor | None = None,
                target_time_latents: Tensor | None = None) -> Tensor:
        """Raw Gaussians ``[B, N, 14]`` (position | opacity | scale | rotation wxyz | RGB), N = V·T·h·w.

        Args:
            latents: raw tokenizer latents ``[B, V, C, t, h, w]``.
            cameras: ``Cameras`` of every decoded frame, batch shape ``[B, V, T]`` with ``T = 1 + 8(t − 1)``,
                at image resolution ``(8h) × (8w)``; OpenCV axes.
            plucker_latents: ``[B, V, 2C, t, h, w]``.
            time_latents, target_time_latents: dynamic scenes only, see :meth:`tokens`.
        """
        B, V, t, h, w = self._check_inputs(latents, plucker_latents)
        rays_o, rays_d = self.rays(cameras, B, V, t, h, w)
        feats = self.features(latents, plucker_latents, time_latents, target_time_latents)
        feats = feats.permute(0, 1, 3, 4, 5, 2).reshape(B, -1, HEAD_CHANNELS)  # order (v, T, y, x)
        pitch = self.ray_pitch(cameras, h, w).to(feats.device) if self.activations.footprint else None
        return self.activations(feats, rays_o.to(feats.device), rays_d.to(feats.device), pitch)

    def ray_pitch(self, cameras: Cameras, h: int, w: int) -> Tensor:
        """Angular size (radians) of one latent-resolution cell of every ray, ``[B, V·T·h·w, 1]`` in the order of
        :meth:`rays`: ``s / √(fx·fy)`` of each frame's camera (``s`` the spatial compression; exact on the optical
        axis, an over-estimate by at most ``1/cos²`` of the half field of view at the image corners)."""
        K = cameras.K.float()
        pitch = self.config.spatial_compression / torch.sqrt(K[..., 0, 0] * K[..., 1, 1])  # [B, V, T]
        B = pitch.shape[0]
        return pitch[..., None, None].expand(*pitch.shape, h, w).reshape(B, -1, 1)

    def cell_footprint(self, raw: Tensor, cameras: Cameras) -> Tensor:
        """The footprint ``ρ·d`` of each Gaussian's latent cell, ``[B, N]`` (scene units): the distance of its centre
        from its frame's camera times that ray's :meth:`ray_pitch`; for ``raw`` ``[B, N, 14]`` of :meth:`forward`
        and its ``cameras`` ``[B, V, T]``."""
        B, N = raw.shape[:2]
        V, T = cameras.shape[1:]
        s = self.config.spatial_compression
        h, w = cameras.height // s, cameras.width // s
        if N != V * T * h * w:
            raise ValueError(f"raw holds {N} Gaussians; cameras [{B}, {V}, {T}] at {h}x{w} cells make {V * T * h * w}")
        o = cameras.centers.float().to(raw.device)  # [B, V, T, 3]
        o = o[..., None, None, :].expand(B, V, T, h, w, 3).reshape(B, N, 3)
        dist = (raw[..., :3].float() - o).norm(dim=-1)
        return dist * self.ray_pitch(cameras, h, w).to(raw.device)[..., 0]

    def scale_saturation(self, raw: Tensor, cameras: Cameras) -> Tensor:
        """Which Gaussians of a forward pass sit at the scale cap: bool ``[B, N]`` (largest scale within 0.1 % of
        :meth:`GaussianActivations.scale_limit`), for ``raw`` ``[B, N, 14]`` of :meth:`forward` and its
        ``cameras`` ``[B, V, T]``."""
        unit = self.cell_footprint(raw, cameras)  # also checks that raw and cameras belong together
        limit = self.activations.scale_limit(unit if self.activations.footprint else None)
        return raw[..., 4:7].float().amax(dim=-1) >= limit * (1 - 1e-3)

    def rays(self, cameras: Cameras, B: int, V: int, t: int, h: int, w: int) -> tuple[Tensor, Tensor]:
        """Unit rays at latent resolution for every decoded frame: origins, directions ``[B, V·T·h·w, 3]``."""
        T = self.frames_per_view(t)
        s = self.config.spatial_compression
        if tuple(cameras.shape) != (B, V, T):
            raise ValueError(f"cameras must have batch shape [B, V, T] = [{B}, {V}, {T}] (T = 1 + 8(t − 1)), "
                              f"got {list(cameras.shape)}")
        if (cameras.width, cameras.height) != (w * s, h * s):
            raise ValueError(f"cameras are for {cameras.width}x{cameras.height} images; the latents need "
                              f"{w * s}x{h * s}")
        o, d = cameras.downscale(s).rays(normalize=True)  # [B, V, T, h, w, 3]
        return o.reshape(B, -1, 3), d.reshape(B, -1, 3)

    # ----------------------------------------------------------------- outputs
    @staticmethod
    def to_gaussians(raw: Tensor, prune_ratio: float | None = None) -> list[Gaussians]:
        """Raw ``[B, N, 14]`` → one ``Gaussians`` per scene (views of ``raw``: differentiable).

        With ``prune_ratio`` (Lyra: 0.8) only the ``int(N · (1 − prune_ratio))`` most opaque Gaussians are
        kept, in their original order. The arithmetic is the release's: ``1 − 0.8`` is 0.19999999999999996
        in floating point, so when ``N · 0.2`` is a whole number one Gaussian fewer than that is kept.
        """
        out = [raw_to_gaussians(r) for r in raw]
        if prune_ratio is not None:
            if not 0.0 <= prune_ratio < 1.0:
                raise ConfigError(f"prune_ratio must lie in [0, 1), got {prune_ratio}")
            out = [g.prune(1.0 - prune_ratio) for g in out]
        return out


# --------------------------------------------------------------------------------------------- conditioning
def plucker_latents(cameras: Cameras, encoder: VideoEncoder) -> Tensor:
    """Plücker conditioning ``[B, V, 2C, t, h, w]`` of cameras ``[B, V, T]`` at image resolution.

    Per view, the per-pixel rays' moment ``o × d`` and unit direction ``d`` (OpenCV, world space) are each
    encoded by the (frozen) tokenizer as a 3-channel video ``[B, 3, T, H, W]``, as they are (no rescaling):
    channels ``0 … C−1`` come from the moment video, ``C … 2C−1`` from the direction video (``C`` the encoder's
    latent channels: 16 for the Cosmos tokenizer). Views are encoded one at a
    time to bound memory. No gradients flow into the encoder.
    """
    if len(cameras.shape) != 3:
        raise ValueError(f"cameras must have batch shape [B, V, T], got {list(cameras.shape)}")
    dtype = _encoder_dtype(encoder)
    out = []
    with torch.no_grad():
        for v in range(cameras.shape[1]):
            pl = cameras[:, v].plucker().transpose(1, 2).to(dtype)  # [B, 6, T, H, W]
            out.append(torch.cat([encoder.encode(pl[:, :3].contiguous()), encoder.encode(pl[:, 3:].contiguous())], 1))
    return torch.stack(out, 1)


def time_latents(times: Tensor, encoder: VideoEncoder, height: int, width: int) -> Tensor:
    """Time conditioning of dynamic scenes: ``times`` [B, T] in [0, 1] → latents ``[B, C, t, h, w]``.

    Each frame's time ``τ`` becomes the 3-channel image ``(τ, cos τ, sin τ)`` broadcast over ``height × width``,
    mapped to the tokenizer's input range as ``2·x − 1``, and encoded as a video.
    """
    if times.ndim != 2:
        raise ValueError(f"times must be [B, T], got {tuple(times.shape)}")
    video = torch.stack([times, torch.cos(times), torch.sin(times)], 1)  # [B, 3, T]
    video = (2 * video - 1)[..., None, None].expand(*video.shape, height, width)
    with torch.no_grad():
        return encoder.encode(video.to(_encoder_dtype(encoder)).contiguous())


def _encoder_dtype(encoder: object) -> torch.dtype:
    if isinstance(encoder, nn.Module):
        for p in encoder.parameters():
            return p.dtype
    return torch.float32
