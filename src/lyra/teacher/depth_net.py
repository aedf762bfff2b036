"""``TinyDepthNet``: a small monocular metric-depth network trained here on the procedural worlds.

A U-Net (about 1.8 M parameters, 3.6 MB in fp16): a stride-2 convolutional encoder down to 1/32 of
the image with residual blocks and a global-context vector at the bottom (metric scale needs the whole
scene), a decoder that upsamples and merges the encoder's skips, and a head at half resolution that
predicts two maps, bilinearly upsampled:

* ``log z`` — natural log of the z-depth in metres (the worlds' units), around a learnt offset;
* a confidence logit — trained to predict whether the depth is within 25 % of the truth
  (``max(z/ẑ, ẑ/z) < 1.25``), 0 on the sky; ``confidence = sigmoid(logit)``.

Scale: the network sees images at about the pixel count of its working resolution ``config.height ×
config.width``, *keeping the image's aspect ratio* (:func:`native_size`; a 4:3 photo is not stretched to
16:9), and the depth is resized back. It assumes the vertical field of view ``config.fov_y_deg`` (50°, the
worlds' camera). For another camera, multiply the depth by
``focal_px / focal_px_train`` — a picture of the same scene through a longer lens looks like a nearer
scene (:meth:`TinyDepthNet.predict` does this when given the vertical FoV).

Training: ``python -m lyra.train.recipes.depth`` (:mod:`lyra.train.recipes.depth`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import ConfigError, WeightsError
from lyra.fileio import atomic_path
from lyra.teacher.depth_protocol import DepthResult, as_image_batch

__all__ = ["DepthNetConfig", "TinyDepthNet", "aspect_size", "native_size", "preset_dir"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
RECORD_NAME = "training_record.json"

_MEAN = (0.45, 0.45, 0.45)
_STD = (0.225, 0.225, 0.225)


@dataclass
class DepthNetConfig:
    """Architecture and working resolution of a :class:`TinyDepthNet`."""

    widths: tuple[int, ...] = (24, 32, 64, 128, 192)  # encoder, at strides 2, 4, 8, 16, 32
    decoder_widths: tuple[int, ...] = (32, 48, 64, 96)  # decoder, at strides 2, 4, 8, 16
    head_width: int = 32
    groups: int = 8  # GroupNorm groups
    height: int = 176  # working resolution
    width: int = 320
    fov_y_deg: float = 50.0  # field of view of the training camera
    init_log_depth: float = 1.5  # initial output offset (about 4.5 m)
    min_depth: float = 0.05
    max_depth: float = 500.0

    def validate(self) -> None:
        if len(self.widths) != len(self.decoder_widths) + 1:
            raise ConfigError("DepthNetConfig: need one more encoder width than decoder widths")
        if any(w % self.groups for w in (*self.widths, *self.decoder_widths, self.head_width)):
            raise ConfigError(f"DepthNetConfig: every width must be divisible by groups={self.groups}")
        if self.height < 32 or self.width < 32:
            raise ConfigError("DepthNetConfig: working resolution must be at least 32x32")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DepthNetConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names - {"model", "format"}
        if unknown:
            raise WeightsError(f"depth net config has unknown fields {sorted(unknown)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names}
        cfg = cls(**kw)
        cfg.validate()
        return cfg


def native_size(height: int, width: int, config: DepthNetConfig) -> tuple[int, int]:
    """The size ``(h, w)`` the network reads an image of ``height × width`` at: the image's aspect ratio at about
    the pixel count of ``config.height × config.width``, each side a multiple of 16 (the working size itself for
    an image of the working aspect)."""
    if height < 1 or width < 1:
        raise ConfigError(f"image size must be positive, got {height}x{width}")
    aspect = width / height
    if abs(aspect / (config.width / config.height) - 1) < 0.01:
        return config.height, config.width
    return aspect_size(aspect, config.height * config.width)


def aspect_size(aspect: float, area: int) -> tuple[int, int]:
    """``(h, w)`` of aspect ``w / h ≈ aspect`` at about ``area`` pixels, each side a multiple of 16 (at least 16)."""
    h = max(16, round(math.sqrt(area / aspect) / 16) * 16)
    w = max(16, round(math.sqrt(area * aspect) / 16) * 16)
    return h, w


def _conv(cin: int, cout: int, groups: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(groups, cout), nn.GELU())


class _ResBlock(nn.Module):
    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.norm1 = nn.GroupNorm(groups, c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(groups, c)

    def forward(self, x: Tensor) -> Tensor:
        y = F.gelu(self.norm1(self.conv1(x)))
        return F.gelu(x + self.norm2(self.conv2(y)))


class TinyDepthNet(nn.Module):
    """Metric monocular depth (see the module doc). Implements :class:`~lyra.teacher.depth.DepthEstimator`.

    ``net(image)`` with ``image`` ``[B, 3, H, W]`` in [0, 1] returns a :class:`DepthResult` (no
    gradients in eval mode) at the image's size; ``net(image, raw=True)`` (training) returns ``(log_depth,
    confidence_logit)``, both ``[B, H, W]`` at the size of ``image`` as given (no resizing: training batches come
    at their :func:`native_size`).
    """

    def __init__(self, config: DepthNetConfig | None = None) -> None:
        super().__init__()
        cfg = config or DepthNetConfig()
        cfg.validate()
        self.config = cfg
        g = cfg.groups
        w = cfg.widths
        self.stem = _conv(3, w[0], g, stride=2)
        self.stages = nn.ModuleList(
            nn.Sequential(_conv(w[i - 1], w[i], g, stride=2), _ResBlock(w[i], g)) for i in range(1, len(w))
        )
        self.context = nn.Sequential(nn.Linear(w[-1], w[-1]), nn.GELU(), nn.Linear(w[-1], w[-1]))
        dec = []
        below = w[-1]
        for i in range(len(cfg.decoder_widths) - 1, -1, -1):  # strides 16, 8, 4, 2
            dec.append(_conv(below + w[i], cfg.decoder_widths[i], g))
            below = cfg.decoder_widths[i]
        self.decoder = nn.ModuleList(dec)
        self.head = nn.Sequential(_conv(below, cfg.head_width, g), nn.Conv2d(cfg.head_width, 2, 1))
        self.offset = nn.Parameter(torch.tensor([cfg.init_log_depth, 0.0]))
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ forward
    def _raw(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = (x - self.mean) / self.std
        skips = [self.stem(x)]
        for stage in self.stages:
            skips.append(stage(skips[-1]))
        y = skips.pop()
        y = y + self.context(y.mean(dim=(2, 3)))[:, :, None, None]
        for conv in self.decoder:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = conv(torch.cat([y, skip], 1))
        out = self.head(y).float()
        out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out = out + self.offset.float()[None, :, None, None]
        return out[:, 0], out[:, 1]

    def forward(self, image: Tensor, raw: bool = False) -> DepthResult | tuple[Tensor, Tensor]:
        x = as_image_batch(image)
        if raw:
            return self._raw(x)
        H, W = x.shape[-2:]
        cfg = self.config
        size = native_size(H, W, cfg)
        if (H, W) != size:
            x = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            log_z, logit = self._raw(x)
            maps = torch.stack([log_z, logit], 1)
            if maps.shape[-2:] != (H, W):
                maps = F.interpolate(maps, size=(H, W), mode="bilinear", align_corners=False)
            depth = maps[:, 0].exp().clamp(cfg.min_depth, cfg.max_depth)
            return DepthResult(depth, torch.sigmoid(maps[:, 1]))

    def predict(self, image: Tensor, fov_y_deg: float | None = None) -> DepthResult:
        """Depth of ``image`` taken with a camera of vertical FoV ``fov_y_deg`` (default: the training FoV).

        The depth is scaled by ``tan(fov_train / 2) / tan(fov / 2)`` (focal-length ratio).
        """
        was = self.training
        self.eval()
        try:
            out = self(image)
        finally:
            self.train(was)
        assert isinstance(out, DepthResult)
        if fov_y_deg is not None:
            if not 0 < fov_y_deg < 180:
                raise ConfigError(f"fov_y_deg must lie in (0, 180), got {fov_y_deg}")
            ratio = math.tan(math.radians(self.config.fov_y_deg) / 2) / math.tan(math.radians(fov_y_deg) / 2)
            out = DepthResult(out.depth * ratio, out.confidence)
        return out

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ files
    def save_pretrained(self, folder: str | os.PathLike, dtype: torch.dtype = torch.float16,
                        record: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` (``dtype``), ``config.json`` and optionally ``training_record.json``.

        Each file is written atomically; the folder is created if needed.
        """
        from safetensors.torch import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.state_dict().items()}
        with atomic_path(out / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "model": "lyra.TinyDepthNet"})
        with atomic_path(out / CONFIG_NAME) as tmp:
            tmp.write_text(json.dumps({"model": "TinyDepthNet", **self.config.to_dict()}, indent=2) + "\n")
        if record is not None:
            with atomic_path(out / RECORD_NAME) as tmp:
                tmp.write_text(json.dumps(record, indent=2) + "\n")
        return out

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device | None = None) -> TinyDepthNet:
        """Load a folder written by :meth:`save_pretrained` (weights cast to fp32); eval mode, no grads."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(folder)
        cfg_file, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
        if not cfg_file.is_file() or not weights.is_file():
            raise WeightsError(f"{path}: expected {CONFIG_NAME} and {WEIGHTS_NAME} (a TinyDepthNet folder)")
        try:
            cfg = DepthNetConfig.from_dict(json.loads(cfg_file.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise WeightsError(f"{cfg_file}: invalid depth net config ({e})") from None
        net = cls(cfg)
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as e:
            raise WeightsError(f"{weights}: unreadable safetensors file ({e})") from None
        try:
            net.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as e:
            raise WeightsError(f"{weights}: weights do not fit the config ({str(e).splitlines()[0]})") from None
        dev = torch.device(device) if device else torch.device("cpu")
        return net.to(dev).eval().requires_grad_(False)

    @classmethod
    def from_preset(cls, name: str = "tiny", device: str | torch.device | None = None) -> TinyDepthNet:
        """The shipped weights of preset ``name`` (:func:`lyra.weights.hub.depth_net_dir`: ``lyra/weights/depth_tiny``
        for ``tiny``)."""
        from lyra.weights.hub import DEPTH_NETS

        if name not in DEPTH_NETS:
            raise ConfigError(f"unknown depth preset {name!r}; choose from {', '.join(DEPTH_NETS)}")
        folder = preset_dir(name)
        if not (folder / WEIGHTS_NAME).is_file():
            raise WeightsError(
                f"depth preset {name!r}: no weights in {folder}. Train them with "
                f"`python -m lyra.train.recipes.depth --out runs/depth_{name} --export-to {folder}` "
                "(a CUDA GPU is recommended), or give a depth source instead: a depth file (.npy, 16-bit .png) "
                "or a local transformers depth model folder"
            )
        return cls.from_pretrained(folder, device=device)


def preset_dir(name: str) -> Path:
    """Folder of the shipped weights of depth preset ``name`` (:func:`lyra.weights.hub.depth_net_dir`;
    ConfigError for an unknown name)."""
    from lyra.weights.hub import depth_net_dir

    return depth_net_dir(name)
