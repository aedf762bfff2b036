"""The video tokenizer: diffusers' ``AutoencoderKLCosmos`` (Cosmos CV8x8x8) behind lyra's shapes.

Shapes and ranges (DESIGN.md):

* videos at the API: ``[B, T, 3, H, W]`` float in [0, 1]; inside the model ``[B, C, T, H, W]`` in
  [-1, 1] (``x_model = 2·x − 1``, as Cosmos).
* ``T = 1 + 8k`` frames (causal: frame 0 alone makes latent frame 0, every further 8 frames one more);
  ``H`` and ``W`` multiples of 8 (other sizes are padded at the bottom/right by edge replication, with a
  warning, and decode to the padded size: crop, or use :meth:`Tokenizer.roundtrip`).
* raw latents ``[B, 16, 1 + k, H/8, W/8]`` float32. The diffusion models work on *normalised* latents
  ``(z − mean) / std · 0.5`` with per-channel and per-latent-frame statistics (:meth:`normalize`).
* :meth:`encode_raw` takes ``[B, C, T, H, W]`` already in the model's range and does no rescaling:
  Plücker-ray videos (``o × d`` and ``d``) and time videos (``2t − 1``) enter the tokenizer this way.

Memory: ``max_batch`` runs the batch a few videos at a time (exact); ``chunk_elements`` runs every layer over
chunks of frames or rows (:mod:`lyra.tokenizer.chunked`; equal to the plain forward up to float rounding).
The official tokenizer at 121 × 704 × 1280 needs about 27 GiB of live tensors per video without chunking
(mostly the middle blocks' full-frame attention scores) and about 4 GiB with ``chunk_elements = 2**26``
(estimated on the meta device, :class:`lyra.lowmem.LiveTensorBytes`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import ConfigError, OutputPathError, WeightsError
from lyra.fileio import make_temp_dir, replace_dir
from lyra.tokenizer.presets import (
    LATENT_CHANNELS,
    SPATIAL_COMPRESSION,
    STAT_FRAMES,
    TEMPORAL_COMPRESSION,
    preset_config,
)

#: Scale of the normalised latents (Cosmos' EDM ``sigma_data``).
SIGMA_DATA = 0.5
#: File names of a diffusers-format model folder.
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
#: Environment variable that points at a local official (diffusers-format) tokenizer folder.
OFFICIAL_ENV = "LYRA_COSMOS_TOKENIZER"

OFFICIAL_HELP = (
    "get the official Cosmos CV8x8x8 tokenizer in diffusers format (the 'vae' folder of "
    "huggingface.co/nvidia/Cosmos-1.0-Tokenizer-CV8x8x8, e.g. `hf download nvidia/Cosmos-1.0-Tokenizer-CV8x8x8 "
    "--include 'vae/*' --local-dir DIR`), or convert Cosmos-Tokenize1-CV8x8x8-720p (autoencoder.jit + "
    "mean_std.pt) with `python -m lyra.tokenizer.convert SRC DIR`; then pass the folder or set "
    f"{OFFICIAL_ENV}=DIR"
)


#: The model classes a tokenizer folder may hold (``_class_name`` of its config.json).
MODEL_CLASSES = ("AutoencoderKLCosmos", "BlockCodeAutoencoder")


def _diffusers_cls(class_name: str = "AutoencoderKLCosmos") -> type:
    """The model class of a tokenizer config: diffusers' Cosmos network or lyra's block code."""
    if class_name not in MODEL_CLASSES:
        raise WeightsError(f"a tokenizer folder holds one of {', '.join(MODEL_CLASSES)}, not a {class_name}")
    try:
        if class_name == "BlockCodeAutoencoder":
            from lyra.tokenizer.block_code import BlockCodeAutoencoder

            return BlockCodeAutoencoder
        from diffusers import AutoencoderKLCosmos
    except ImportError as e:  # pragma: no cover - diffusers is a declared dependency
        raise WeightsError("the tokenizer needs the 'diffusers' package (pip install 'diffusers>=0.35')") from e
    return AutoencoderKLCosmos


def latent_frames(num_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """Latent frames for ``num_frames`` video frames (``1 + (T − 1)/c``, ``c`` = 8 for CV8x8x8); ConfigError
    unless T = 1 + c·k."""
    c = int(temporal_compression)
    if num_frames < 1 or (num_frames - 1) % c:
        lower = 1 + (max(num_frames, 1) - 1) // c * c
        examples = ", ".join(str(1 + c * k) for k in range(4))
        raise ConfigError(
            f"{num_frames} frames: the tokenizer needs 1 + {c}k frames ({examples}, ...); "
            f"trim the video to {lower} frames (e.g. with --trim)"
        )
    return 1 + (num_frames - 1) // c


def weights_dir() -> Path:
    """The folder of shipped weights (``src/lyra/weights``; :func:`lyra.weights.hub.weights_root`)."""
    from lyra.weights.hub import weights_root

    return weights_root()


def preset_weights_path(name: str) -> Path | None:
    """Where tokenizer preset ``name``'s weights are: the shipped ``weights/tokenizer_<name>`` folder, or for
    ``official`` the folder ``$LYRA_COSMOS_TOKENIZER`` names (``None`` when unset)."""
    from lyra.weights.hub import TOKENIZERS

    if name == "official":
        env = os.environ.get(OFFICIAL_ENV)
        return Path(env) if env else None
    folder = TOKENIZERS.get(name)
    if folder is None:
        raise ConfigError(f"unknown tokenizer preset {name!r}; choose one of {', '.join(TOKENIZERS)}")
    return weights_dir() / folder


class Tokenizer(nn.Module):
    """Causal video tokenizer: ``C`` latent channels, ``c_t``× in time, ``c_s × c_s`` in space.

    The latent channels and the compression factors come from the model's config (``latent_channels``,
    ``temporal_compression_ratio``, ``spatial_compression_ratio``). ``official`` and ``tiny`` are Cosmos CV8x8x8
    (16 channels, diffusers' ``AutoencoderKLCosmos``); ``tiny_block`` is lyra's block code (96 channels, 8 × 8 × 8,
    :class:`~lyra.tokenizer.block_code.BlockCodeAutoencoder`; see :mod:`lyra.tokenizer.presets`). A teacher or
    student reads the latents of the tokenizer it was trained with.

    Args:
        vae: a diffusers ``AutoencoderKLCosmos`` or a ``BlockCodeAutoencoder`` (compression factors powers of two,
            at least its patch size).
        max_batch: videos per forward pass (encode/decode run the batch in chunks of this size to
            bound memory); ``None`` runs the whole batch at once.
        chunk_elements: ``None`` (default): the plain forward. Else, for the Cosmos network, every layer runs over
            chunks of at most about this many elements (:class:`~lyra.tokenizer.chunked.ChunkedCosmos`): bounded
            memory, same result up to float rounding (the block code ignores it). See :meth:`set_chunking`.
    """

    def __init__(self, vae: nn.Module, max_batch: int | None = None, chunk_elements: int | None = None) -> None:
        super().__init__()
        cfg = vae.config
        ct, cs, patch = (int(cfg.temporal_compression_ratio), int(cfg.spatial_compression_ratio),
                         int(getattr(cfg, "patch_size", 1)))
        if any(c < patch or c & (c - 1) for c in (ct, cs)) or int(cfg.latent_channels) < 1:
            raise WeightsError(
                f"tokenizer config has {cfg.latent_channels} latent channels and {ct}×{cs}×{cs} compression; "
                f"the compression factors must be powers of two of at least the patch size {patch}"
            )
        #: Latent channels, temporal and spatial compression of this tokenizer (16, 8, 8 for CV8x8x8).
        self.latent_channels = int(cfg.latent_channels)
        self.temporal_compression = ct
        self.spatial_compression = cs
        self.vae = vae
        self.max_batch = max_batch
        self.chunk_elements: int | None = None
        self.set_chunking(chunk_elements)

    # ------------------------------------------------------------------ construction / files
    @classmethod
    def from_config(cls, config: str | dict[str, Any] = "tiny", max_batch: int | None = None,
                    **overrides: Any) -> Tokenizer:
        """A randomly initialised tokenizer from a preset name or ``AutoencoderKLCosmos`` kwargs.

        Without ``latents_mean``/``latents_std`` in the config the statistics are mean 0, std 1.
        Build it under ``torch.device("meta")`` to count parameters without memory.
        """
        raw = preset_config(config) if isinstance(config, str) else dict(config)
        class_name = raw.get("_class_name", "AutoencoderKLCosmos")
        kwargs = {k: v for k, v in raw.items() if not k.startswith("_")}  # diffusers' bookkeeping keys
        kwargs.setdefault("latents_mean", None)
        kwargs.setdefault("latents_std", None)
        kwargs.update(overrides)
        try:
            vae = _diffusers_cls(class_name)(**kwargs)
        except TypeError as e:
            raise ConfigError(f"invalid tokenizer config: {e}") from e
        return cls(vae, max_batch=max_batch)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: torch.device | str | None = None,
                        dtype: torch.dtype | None = torch.float32, max_batch: int | None = None) -> Tokenizer:
        """Load a diffusers-format folder (``config.json`` + ``diffusion_pytorch_model.safetensors``).

        A pipeline folder with the tokenizer in ``vae/`` is accepted too. The model is returned in
        eval mode with gradients off (a frozen tokenizer), in ``dtype`` (fp16 files are upcast).
        """
        folder = Path(path)
        if (folder / "vae" / CONFIG_NAME).is_file() and not (folder / CONFIG_NAME).is_file():
            folder = folder / "vae"
        if not folder.is_dir():
            raise WeightsError(f"{folder}: no such tokenizer folder")
        if not (folder / CONFIG_NAME).is_file():
            raise WeightsError(f"{folder}: no {CONFIG_NAME}; expected a diffusers-format AutoencoderKLCosmos folder")
        try:
            config = json.loads((folder / CONFIG_NAME).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise WeightsError(f"{folder / CONFIG_NAME}: unreadable config ({e})") from e
        class_name = config.get("_class_name", "AutoencoderKLCosmos")
        if class_name not in MODEL_CLASSES:
            raise WeightsError(f"{folder}: holds a {class_name}, not a tokenizer ({' or '.join(MODEL_CLASSES)})")
        vae = _load_strict(folder, dtype, class_name)
        tok = cls(vae, max_batch=max_batch)
        tok.eval().requires_grad_(False)
        if device is not None:
            tok.to(device)
        return tok

    @classmethod
    def from_preset(cls, name: str = "tiny", path: str | os.PathLike | None = None,
                    device: torch.device | str | None = None, dtype: torch.dtype | None = torch.float32,
                    max_batch: int | None = None) -> Tokenizer:
        """The trained weights of a preset: ``tiny`` ships with lyra; ``official`` is a local folder.

        ``path`` overrides where the weights are looked for (``official``: else ``$LYRA_COSMOS_TOKENIZER``).
        """
        preset_config(name)  # validates the name
        if path is None:
            if name == "official":
                env = os.environ.get(OFFICIAL_ENV)
                if not env:
                    raise WeightsError(f"the official tokenizer is not bundled: {OFFICIAL_HELP}")
                path = env
            else:
                path = preset_weights_path(name)
                assert path is not None
                if not (Path(path) / WEIGHTS_NAME).is_file():
                    raise WeightsError(
                        f"the '{name}' tokenizer weights are missing from {path}; train them with "
                        f"`python -m lyra.train.recipes.tokenizer --out DIR ...` and copy DIR/export/* there "
                        "(recipe in chunks on a GPU: scripts/tokenizer_gpu.sh; docs/benchmarks.md, 'Tokenizer')"
                    )
        return cls.from_pretrained(path, device=device, dtype=dtype, max_batch=max_batch)

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype = torch.float16,
                        extra_json: dict[str, Any] | None = None) -> Path:
        """Write a diffusers-format folder atomically: config + weights in ``dtype`` (+ extra JSON files).

        ``extra_json`` maps file names (e.g. ``"training_record.json"``) to JSON-serialisable dicts.
        An existing folder at ``path`` is replaced as a whole.
        """
        from safetensors.torch import save_file

        final = Path(path)
        parent = final.parent if str(final.parent) else Path(".")
        if not parent.is_dir():
            raise OutputPathError(f"{final}: folder {parent} does not exist (create it first)")
        tmp = make_temp_dir(final)
        try:
            state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.vae.state_dict().items()}
            save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
            self.vae.save_config(tmp)
            for name, obj in (extra_json or {}).items():
                (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
            os.chmod(tmp, 0o755)
            replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> Any:
        """The diffusers config (``FrozenDict``) of the wrapped ``AutoencoderKLCosmos``."""
        return self.vae.config

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @property
    def is_cosmos(self) -> bool:
        """Whether the model is diffusers' Cosmos network (else lyra's block code, whose encoder is frozen)."""
        return type(self.vae).__name__ == "AutoencoderKLCosmos"

    def num_parameters(self) -> int:
        """Learned parameters, plus the block code's fitted encoder (its persistent buffers)."""
        n = sum(p.numel() for p in self.vae.parameters())
        if not self.is_cosmos:
            n += sum(b.numel() for b in self.vae.buffers())
        return n

    @staticmethod
    def latent_shape(num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(16, t, h, w)`` of a CV8x8x8 tokenizer for a video of ``num_frames × height × width`` (sizes
        padded up to 8). :meth:`latent_shape_of` gives it for this tokenizer's own factors."""
        return (LATENT_CHANNELS, latent_frames(num_frames), math.ceil(height / SPATIAL_COMPRESSION),
                math.ceil(width / SPATIAL_COMPRESSION))

    def latent_shape_of(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(C, t, h, w)`` of this tokenizer's latents for a ``num_frames × height × width`` video."""
        s = self.spatial_compression
        return (self.latent_channels, latent_frames(num_frames, self.temporal_compression), math.ceil(height / s),
                math.ceil(width / s))

    def set_chunking(self, chunk_elements: int | None) -> Tokenizer:
        """Run encode/decode layer by layer over chunks of at most about ``chunk_elements`` elements (``None``:
        diffusers' plain forward; :data:`lyra.tokenizer.chunked.DEFAULT_CHUNK_ELEMENTS` = 2**26 keeps the
        official tokenizer at 121 × 704 × 1280 near 4 GiB per video). Returns ``self``."""
        if chunk_elements is not None and int(chunk_elements) < 1:
            raise ConfigError(f"chunk_elements must be a positive integer or None, got {chunk_elements!r}")
        self.chunk_elements = None if chunk_elements is None else int(chunk_elements)
        return self

    # ------------------------------------------------------------------ encode / decode
    def encode(self, video: Tensor) -> Tensor:
        """Video ``[B, T, 3, H, W]`` in [0, 1] → raw latents ``[B, 16, 1 + (T−1)/8, ⌈H/8⌉, ⌈W/8⌉]`` float32
        (CV8x8x8; in general ``[B, C, 1 + (T−1)/c_t, ⌈H/c_s⌉, ⌈W/c_s⌉]``, :meth:`latent_shape_of`)."""
        if video.dim() != 5 or video.shape[2] != self.config.in_channels:
            raise ConfigError(
                f"expected a video [B, T, {self.config.in_channels}, H, W], got shape {tuple(video.shape)}"
            )
        return self.encode_raw(video.permute(0, 2, 1, 3, 4) * 2.0 - 1.0)

    def encode_raw(self, x: Tensor) -> Tensor:
        """``[B, C, T, H, W]`` already in the model's range (no rescaling) → raw latents (float32).

        Used for Plücker-ray and time videos, which enter the tokenizer as they are.
        """
        if x.dim() != 5 or x.shape[1] != self.config.in_channels:
            raise ConfigError(
                f"expected [B, {self.config.in_channels}, T, H, W] in the model's range, got shape {tuple(x.shape)}"
            )
        latent_frames(x.shape[2], self.temporal_compression)
        x = _pad_to_multiple(x, self.spatial_compression)
        x = x.to(device=self.device, dtype=self.dtype)
        out = [self._encode_batch(chunk) for chunk in self._chunks(x)]
        return out[0] if len(out) == 1 else torch.cat(out, dim=0)

    def decode(self, latents: Tensor) -> Tensor:
        """Raw latents ``[B, 16, t, h, w]`` → video ``[B, 1 + 8(t−1), 3, 8h, 8w]`` in [0, 1] (float32)."""
        x = self.decode_raw(latents)
        return ((x.clamp(-1.0, 1.0) + 1.0) * 0.5).permute(0, 2, 1, 3, 4)

    def decode_raw(self, latents: Tensor) -> Tensor:
        """Raw latents → ``[B, C, T, H, W]`` in the model's range (not clamped), float32."""
        if latents.dim() != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"expected latents [B, {self.latent_channels}, t, h, w], got shape {tuple(latents.shape)}"
            )
        z = latents.to(device=self.device, dtype=self.dtype)
        out = [self._decode_batch(chunk) for chunk in self._chunks(z)]
        return out[0] if len(out) == 1 else torch.cat(out, dim=0)

    def _encode_batch(self, x: Tensor) -> Tensor:
        if self.chunk_elements is not None and self.is_cosmos:
            from lyra.tokenizer.chunked import ChunkedCosmos

            return ChunkedCosmos(self.vae, self.chunk_elements).encode(x).float()
        return self.vae.encode(x).latent_dist.mode().float()

    def _decode_batch(self, z: Tensor) -> Tensor:
        if self.chunk_elements is not None and self.is_cosmos:
            from lyra.tokenizer.chunked import ChunkedCosmos

            return ChunkedCosmos(self.vae, self.chunk_elements).decode(z).float()
        return self.vae.decode(z).sample.float()

    def forward(self, video: Tensor) -> Tensor:
        """``decode(encode(video))`` without cropping (``[B, T, 3, H', W']``, padded sizes)."""
        return self.decode(self.encode(video))

    def roundtrip(self, video: Tensor) -> Tensor:
        """Encode and decode ``[B, T, 3, H, W]`` in [0, 1]; the result is cropped back to ``H × W``."""
        h, w = video.shape[-2:]
        return self.decode(self.encode(video))[..., :h, :w]

    def _chunks(self, x: Tensor) -> Iterator[Tensor]:
        n = self.max_batch or x.shape[0]
        yield from x.split(max(1, n), dim=0)

    # ------------------------------------------------------------------ latent statistics
    def latent_stats(self, num_latent_frames: int, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Mean and std ``[1, C, t, 1, 1]`` (float32) for ``t`` latent frames (C = 16 for CV8x8x8).

        The config holds C channels × F frames (channel-major). Frames past F reuse the last
        frame's statistics (all frames after the first one behave alike). Without statistics: 0 and 1.
        """
        mean, std = self.config.latents_mean, self.config.latents_std
        t, c = num_latent_frames, self.latent_channels
        if mean is None or std is None:
            return (torch.zeros(1, c, t, 1, 1, device=device),
                    torch.ones(1, c, t, 1, 1, device=device))
        m = torch.tensor(mean, dtype=torch.float32, device=device).view(c, -1)
        s = torch.tensor(std, dtype=torch.float32, device=device).view(c, -1)
        if t > m.shape[1]:
            m = torch.cat([m, m[:, -1:].expand(-1, t - m.shape[1])], dim=1)
            s = torch.cat([s, s[:, -1:].expand(-1, t - s.shape[1])], dim=1)
        return m[:, :t].reshape(1, c, t, 1, 1), s[:, :t].reshape(1, c, t, 1, 1)

    def set_latent_stats(self, mean: Tensor, std: Tensor) -> None:
        """Store statistics ``[C, F]`` (per channel and latent frame) in the config."""
        c = self.latent_channels
        if mean.shape != std.shape or mean.dim() != 2 or mean.shape[0] != c:
            raise ConfigError(f"latent statistics must be [{c}, F], got {tuple(mean.shape)} and {tuple(std.shape)}")
        if not bool((std > 0).all()):
            raise ConfigError("latent std must be positive")
        self.vae.register_to_config(latents_mean=mean.float().flatten().tolist(),
                                    latents_std=std.float().flatten().tolist())

    def normalize(self, latents: Tensor) -> Tensor:
        """Raw → normalised latents: ``(z − mean) / std · 0.5`` (per channel and latent frame)."""
        mean, std = self.latent_stats(latents.shape[2], latents.device)
        return (latents - mean.to(latents.dtype)) / std.to(latents.dtype) * SIGMA_DATA

    def denormalize(self, latents: Tensor) -> Tensor:
        """Normalised → raw latents (inverse of :meth:`normalize`)."""
        mean, std = self.latent_stats(latents.shape[2], latents.device)
        return latents / SIGMA_DATA * std.to(latents.dtype) + mean.to(latents.dtype)


def stats_to_frames(mean: Tensor, std: Tensor, frames: int = STAT_FRAMES) -> tuple[Tensor, Tensor]:
    """Extend per-frame statistics ``[16, t]`` measured on ``t`` latent frames to ``[16, frames]``.

    Frames past ``t`` take the average statistics of the measured frames after the first (the first
    latent frame encodes one image alone and has its own statistics).
    """
    t = mean.shape[1]
    if t >= frames:
        return mean[:, :frames], std[:, :frames]
    tail_m = mean[:, 1:].mean(dim=1, keepdim=True) if t > 1 else mean[:, :1]
    tail_s = std[:, 1:].mean(dim=1, keepdim=True) if t > 1 else std[:, :1]
    return (torch.cat([mean, tail_m.expand(-1, frames - t)], dim=1),
            torch.cat([std, tail_s.expand(-1, frames - t)], dim=1))


def _read_state_dict(folder: Path) -> dict[str, Tensor]:
    """The weights of a diffusers folder: one safetensors file, a sharded index, or a .bin file (tensors only).

    Raises:
        WeightsError: no weights file, or a corrupt, truncated or unsafe one (one line naming it).
    """
    import pickle
    import zipfile

    from safetensors import SafetensorError

    try:
        return _read_state_dict_unchecked(folder)
    except (SafetensorError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError,
            KeyError, TypeError, OSError) as e:
        import re

        detail = re.sub(r"\x1b\[[0-9;]*m", "", (str(e).strip().splitlines() or [type(e).__name__])[0])[:120]
        if isinstance(e, pickle.UnpicklingError):
            detail = "pickled objects besides tensors (not loaded, for safety) or corrupt data"
        raise WeightsError(f"{folder}: cannot read the tokenizer weights ({type(e).__name__}: {detail}); the file "
                           "is corrupt, truncated or holds more than tensors") from None


def _read_state_dict_unchecked(folder: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    single = folder / WEIGHTS_NAME
    index = folder / f"{WEIGHTS_NAME}.index.json"
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        state: dict[str, Tensor] = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            state.update(load_file(str(folder / shard)))
        return state
    binary = folder / "diffusion_pytorch_model.bin"
    if binary.is_file():
        return torch.load(binary, map_location="cpu", weights_only=True)
    raise WeightsError(f"{folder}: no weights file ({WEIGHTS_NAME})")


def _load_strict(folder: Path, dtype: torch.dtype | None, class_name: str = "AutoencoderKLCosmos") -> nn.Module:
    """Build the model from ``config.json`` and load *every* parameter and persistent buffer (diffusers would
    silently leave missing ones randomly initialised)."""
    from accelerate import init_empty_weights

    cls = _diffusers_cls(class_name)
    try:
        with _quiet_diffusers():
            config = cls.load_config(folder)
            with init_empty_weights(include_buffers=False):  # parameters on "meta", buffers real
                vae = cls.from_config(config)
        state = _read_state_dict(folder)
    except (OSError, ValueError, TypeError, KeyError, json.JSONDecodeError) as e:
        raise WeightsError(f"{folder}: could not load the tokenizer ({str(e).splitlines()[0] if str(e) else e})") from e
    expected = vae.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{folder}: could not load the tokenizer weights: they do not match its config.json "
            f"({len(missing)} missing, e.g. {missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}; "
            f"{len(wrong)} of another shape, e.g. {wrong[:2]})"
        )
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    vae.load_state_dict(state, strict=True, assign=True)
    return vae


def _pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    warnings.warn(
        f"video size {h}×{w} is not a multiple of {multiple}: padded to {h + ph}×{w + pw} "
        "(edge replication at the bottom/right; decoded videos have the padded size)",
        stacklevel=3,
    )
    b, c, t = x.shape[:3]
    flat = x.reshape(b * c, t, h, w)
    flat = F.pad(flat, (0, pw, 0, ph), mode="replicate")
    return flat.reshape(b, c, t, h + ph, w + pw)


@contextlib.contextmanager
def _quiet_diffusers() -> Iterator[None]:
    """Silence diffusers' informational logging while loading."""
    try:
        from diffusers.utils import logging as dlog
    except ImportError:  # pragma: no cover
        yield
        return
    level = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        yield
    finally:
        dlog.set_verbosity(level)
