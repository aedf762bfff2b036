"""The self-distillation losses of the student (LYRA_FACTS, "Losses and training").

``total = 1·MSE + 0.5·perceptual + 0.05·depth + 0.1·opacity``, where

* **MSE** is the mean squared error of the rendered RGB against the teacher's decoded frames (both in [0, 1]);
* **perceptual** is LPIPS with a VGG16 backbone when its weights are found locally (:func:`find_lpips_weights`:
  ``--lpips-weights FILE`` or ``$LYRA_LPIPS_WEIGHTS``), else ``1 − SSIM`` (Gaussian window 11, σ 1.5, as
  :func:`lyra.eval.metrics.ssim`) with the same weight. VGG weights cannot be downloaded here; which one a run
  used is :attr:`PerceptualLoss.kind`, recorded in its training record;
* **depth** is a smooth-L1 (β = 1) between the median-centred, mean-absolute-deviation-normalised rendered depth
  and target depth (:func:`normalize_depth`), over the pixels where the target is finite and > 0, per image;
* **opacity** is the mean opacity of all Gaussians (before pruning), used in the pruning stages only: it pushes
  the Gaussians the scene does not need towards transparency, so that pruning them costs little.

LPIPS is implemented here (:class:`LPIPSVGG`): torchvision's VGG16 ``features`` layout (13 convolutions; taps
after ``relu1_2, relu2_2, relu3_3, relu4_3, relu5_3``), LPIPS' input scaling layer and its five linear 1×1
layers, exactly as the ``lpips`` package (v0.1) computes it — without torchvision.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import ConfigError, WeightsError
from lyra.eval.metrics import ssim

__all__ = [
    "LOSS_NAMES", "LPIPS_ENV", "LPIPSVGG", "LossWeights", "PerceptualLoss", "depth_loss", "find_lpips_weights",
    "normalize_depth", "opacity_loss", "student_losses",
]

#: Loss terms a stage can switch on.
LOSS_NAMES = ("mse", "perceptual", "depth", "opacity")
#: Environment variable naming a local VGG16 / LPIPS weights file.
LPIPS_ENV = "LYRA_LPIPS_WEIGHTS"
#: Environment variable naming a local file with LPIPS' linear layers (``vgg.pth`` of the ``lpips`` package).
LPIPS_LIN_ENV = "LYRA_LPIPS_LIN"

LPIPS_HELP = (
    "LPIPS(VGG) needs two local files: the VGG16 ImageNet backbone in torchvision's layout "
    "(vgg16-397923af.pth, keys features.N.weight) or a full lpips.LPIPS state dict (net.sliceK.N.*), and the "
    "LPIPS linear layers (lpips/weights/v0.1/vgg.pth inside the `lpips` wheel: `pip download lpips --no-deps`, "
    f"unzip). Pass them as --lpips-weights FILE [--lpips-lin FILE] or set {LPIPS_ENV} [{LPIPS_LIN_ENV}]"
)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (Lyra's values by default)."""

    mse: float = 1.0
    perceptual: float = 0.5
    depth: float = 0.05
    opacity: float = 0.1

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------- depth
def normalize_depth(depth: Tensor, valid: Tensor, eps: float = 1e-6) -> Tensor:
    """``(d − median) / (MAD + eps)`` per image, with median and mean absolute deviation over ``valid`` pixels.

    Args:
        depth: ``[..., H, W]`` z-depth (any finite values where ``valid``).
        valid: ``[..., H, W]`` bool.
        eps: added to the mean absolute deviation (a constant depth map normalises to 0).

    Returns:
        ``[..., H, W]``; pixels outside ``valid`` are 0. For an image without valid pixels: all 0. The median of
        an even count is the lower middle value (``torch.nanmedian``), so ``a·d + b`` with ``a > 0`` normalises
        to the same map as ``d`` (up to ``eps``).
    """
    flat = depth.flatten(-2).float()
    v = valid.flatten(-2)
    masked = torch.where(v, flat, torch.full_like(flat, float("nan")))
    med = torch.nanmedian(masked, dim=-1, keepdim=True).values
    med = torch.nan_to_num(med, nan=0.0)
    dev = torch.where(v, (flat - med).abs(), torch.zeros_like(flat))
    count = v.sum(-1, keepdim=True).clamp_min(1)
    mad = dev.sum(-1, keepdim=True) / count
    out = torch.where(v, (flat - med) / (mad + eps), torch.zeros_like(flat))
    return out.reshape(depth.shape)


def depth_loss(rendered: Tensor, target: Tensor, beta: float = 1.0, eps: float = 1e-6) -> Tensor:
    """Scale- and shift-invariant depth loss (scalar).

    Both maps are normalised by :func:`normalize_depth` over the pixels where ``target`` is finite and > 0
    (and ``rendered`` is finite); the smooth-L1 (``beta``) of the difference is averaged over those pixels
    per image, then over the images that have any. 0 when no image has a valid pixel.

    Args:
        rendered: ``[..., H, W]`` rendered (expected) z-depth.
        target: ``[..., H, W]`` target depth estimate of the teacher's frames (``inf``/``nan``/``≤ 0``: invalid).
    """
    if rendered.shape != target.shape:
        raise ValueError(f"depth_loss: shapes differ {tuple(rendered.shape)} vs {tuple(target.shape)}")
    target = target.float()
    rendered = rendered.float()
    valid = torch.isfinite(target) & (target > 0) & torch.isfinite(rendered)
    r = normalize_depth(torch.where(valid, rendered, torch.zeros_like(rendered)), valid, eps)
    t = normalize_depth(torch.where(valid, target, torch.zeros_like(target)), valid, eps)
    err = F.smooth_l1_loss(r, t, reduction="none", beta=beta) * valid
    count = valid.flatten(-2).sum(-1)
    per_image = err.flatten(-2).sum(-1) / count.clamp_min(1)
    has = count > 0
    if not bool(has.any()):
        return rendered.sum() * 0.0
    return per_image[has].mean()


def opacity_loss(opacities: Tensor) -> Tensor:
    """Mean opacity of the Gaussians (``[..., N]`` in (0, 1)), a scalar."""
    return opacities.float().mean()


# ----------------------------------------------------------------------------------------------- LPIPS
#: torchvision's VGG16 ``features`` configuration (channels, "M" = max-pool).
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: Indices in ``features`` after which LPIPS reads a feature map (relu1_2 … relu5_3).
VGG16_TAPS = (3, 8, 15, 22, 29)
VGG16_TAP_CHANNELS = (64, 128, 256, 512, 512)


class LPIPSVGG(nn.Module):
    """LPIPS v0.1 with a VGG16 backbone: ``forward(x, y) -> [N]`` distances for images ``[N, 3, H, W]`` in [0, 1].

    Computation (the ``lpips`` package, ``net="vgg"``): ``z = (2x − 1 − shift) / scale`` with
    ``shift = (−0.030, −0.088, −0.188)``, ``scale = (0.458, 0.448, 0.450)``; VGG16 features at the five taps;
    each feature map unit-normalised over channels (``f / (‖f‖ + 1e-10)``); squared differences weighted by
    the non-negative linear 1×1 layer of that tap, averaged over space, summed over taps.
    Weights are frozen (``requires_grad`` False); gradients flow to the inputs.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                c_in = int(v)
        self.features = nn.Sequential(*layers)  # indices 0..29 as torchvision's vgg16().features[:30]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in VGG16_TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPSVGG:  # always in eval mode (frozen)
        return super().train(False)

    def _taps(self, x: Tensor) -> list[Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG16_TAPS:
                out.append(x)
                if i == VGG16_TAPS[-1]:
                    break
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        n = x.shape[0]
        z = (torch.cat([x, y], 0) * 2 - 1 - self.shift) / self.scale
        total = x.new_zeros(n, dtype=torch.float32)
        for f, lin in zip(self._taps(z), self.lins, strict=True):
            f = f.float()
            f = f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10)
            d = (f[:n] - f[n:]).square()
            total = total + F.conv2d(d, lin.weight.float()).mean(dim=(1, 2, 3))
        return total

    # ------------------------------------------------------------------ weights
    def load_weights(self, backbone: Mapping[str, Tensor], lin: Mapping[str, Tensor] | None = None,
                     source: str = "LPIPS weights") -> LPIPSVGG:
        """Load a VGG16 backbone (torchvision ``features.N.*`` or lpips ``net.sliceK.N.*`` keys) and the linear
        layers (lpips ``linK.model.1.weight`` keys, from ``lin`` or from ``backbone`` when it holds them)."""
        feats: dict[str, Tensor] = {}
        lins: dict[str, Tensor] = {}
        for src in (backbone, lin or {}):
            for key, value in src.items():
                k = key.removeprefix("module.")
                parts = k.split(".")
                if parts[0] == "features" and len(parts) == 3 and int(parts[1]) < 30:
                    feats[f"{parts[1]}.{parts[2]}"] = value
                elif parts[0] == "net" and len(parts) == 4 and parts[1].startswith("slice"):
                    feats[f"{parts[2]}.{parts[3]}"] = value
                elif parts[0].startswith("lin") and parts[-1] == "weight" and parts[0][3:].isdigit():
                    lins[f"{int(parts[0][3:])}.weight"] = value
        want_feats = set(self.features.state_dict())
        if set(feats) != want_feats:
            missing = sorted(want_feats - set(feats))
            raise WeightsError(f"{source}: no complete VGG16 backbone (missing {', '.join(missing[:6])}…); "
                               + LPIPS_HELP)
        if set(lins) != set(self.lins.state_dict()):
            raise WeightsError(f"{source}: the LPIPS linear layers (lin0..lin4) were not found; " + LPIPS_HELP)
        try:
            self.features.load_state_dict({k: v.float() for k, v in feats.items()})
            self.lins.load_state_dict({k: v.float().reshape(1, -1, 1, 1) for k, v in lins.items()})
        except RuntimeError as e:
            raise WeightsError(f"{source}: shapes do not match VGG16/LPIPS ({str(e).splitlines()[0]})") from e
        return self


def _read_tensors(path: Path) -> dict[str, Tensor]:
    from lyra.student.state_dict import clean_state_dict

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: object = load_file(str(path), device="cpu")
        except Exception as e:  # noqa: BLE001 - any read failure is a weights problem
            raise WeightsError(f"{path}: not a readable safetensors file ({e})") from e
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise WeightsError(f"{path}: not a readable torch weights file ({str(e).splitlines()[0]})") from e
    if isinstance(obj, Mapping) and any(not isinstance(v, Tensor) for v in obj.values()):
        return clean_state_dict(obj, source=str(path))
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a state dict (mapping of names to tensors)")
    return dict(obj)


def _packaged_lin_file() -> Path | None:
    """``lpips/weights/v0.1/vgg.pth`` of an installed ``lpips`` package (found without importing it, since
    importing ``lpips`` imports torchvision)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "weights" / "v0.1" / "vgg.pth"
        if p.is_file():
            return p
    return None


def find_lpips_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The local LPIPS/VGG16 weights file: ``path``, else ``$LYRA_LPIPS_WEIGHTS``, else ``None`` (→ SSIM).

    Raises ``WeightsError`` when a file was named but does not exist.
    """
    name = path if path is not None else os.environ.get(LPIPS_ENV) or None
    if name is None:
        return None
    p = Path(name).expanduser()
    if not p.is_file():
        src = "--lpips-weights" if path is not None else f"${LPIPS_ENV}"
        raise WeightsError(f"{src} names {p}, which is not a file; " + LPIPS_HELP)
    return p


def load_lpips(path: str | os.PathLike, lin_path: str | os.PathLike | None = None) -> LPIPSVGG:
    """:class:`LPIPSVGG` with the backbone from ``path`` and the linear layers from ``path`` itself, ``lin_path``,
    ``$LYRA_LPIPS_LIN`` or an installed ``lpips`` package (in that order)."""
    backbone = _read_tensors(Path(path))
    lin = None
    if not any(k.startswith("lin") for k in backbone):
        lin_name = lin_path or os.environ.get(LPIPS_LIN_ENV) or _packaged_lin_file()
        if lin_name is None:
            raise WeightsError(f"{path} holds no LPIPS linear layers and none were found; " + LPIPS_HELP)
        lin = _read_tensors(Path(lin_name))
    return LPIPSVGG().load_weights(backbone, lin, source=str(path))


class PerceptualLoss(nn.Module):
    """``forward(pred, target) -> scalar``: LPIPS(VGG) when weights are given, else ``1 − SSIM``.

    Args:
        lpips: a loaded :class:`LPIPSVGG`, or ``None`` for the SSIM fallback.

    Inputs ``[N, 3, H, W]`` in [0, 1]. :attr:`kind` is ``"lpips_vgg"`` or ``"ssim"``. SSIM uses valid-window
    positions (images ≥ 11 px), zero padding for smaller images.
    """

    def __init__(self, lpips: LPIPSVGG | None = None) -> None:
        super().__init__()
        self.lpips = lpips
        self.kind = "lpips_vgg" if lpips is not None else "ssim"

    @classmethod
    def from_weights(cls, path: str | os.PathLike | None = None,
                     lin_path: str | os.PathLike | None = None) -> PerceptualLoss:
        """LPIPS from :func:`find_lpips_weights` (``path`` / ``$LYRA_LPIPS_WEIGHTS``) or the SSIM fallback."""
        found = find_lpips_weights(path)
        return cls(load_lpips(found, lin_path) if found is not None else None)

    def describe(self) -> str:
        return "LPIPS (VGG16, lpips v0.1 linear layers)" if self.lpips is not None else \
            "1 - SSIM (no local VGG16 weights for LPIPS)"

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if self.lpips is not None:
            return self.lpips(pred, target).mean()
        small = min(pred.shape[-2:]) < 11
        return 1.0 - ssim(pred.float(), target.float(), padding="same" if small else "valid").mean()


# ----------------------------------------------------------------------------------------------- total
def student_losses(pred_rgb: Tensor, target_rgb: Tensor, pred_depth: Tensor | None, target_depth: Tensor | None,
                   opacities: Tensor | None, terms: Iterable[str], perceptual: PerceptualLoss | None = None,
                   weights: LossWeights | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The weighted sum of the switched-on ``terms`` and each term's (unweighted) value.

    Args:
        pred_rgb, target_rgb: ``[N, H, W, 3]`` (renderer layout) in [0, 1].
        pred_depth, target_depth: ``[N, H, W]`` (needed for ``"depth"``).
        opacities: ``[..., M]`` opacities of all Gaussians before pruning (needed for ``"opacity"``).
        terms: a subset of :data:`LOSS_NAMES`.
        perceptual: the perceptual term (needed for ``"perceptual"``).

    Returns:
        ``(total, {"mse": …, "perceptual": …, …})`` with the values detached.
    """
    weights = weights or LossWeights()
    terms = set(terms)
    unknown = terms - set(LOSS_NAMES)
    if unknown:
        raise ConfigError(f"unknown loss terms {sorted(unknown)}; choose from {', '.join(LOSS_NAMES)}")
    pred = pred_rgb.float()
    target = target_rgb.float()
    parts: dict[str, Tensor] = {}
    total = pred.new_zeros(())
    if "mse" in terms:
        parts["mse"] = F.mse_loss(pred, target)
        total = total + weights.mse * parts["mse"]
    if "perceptual" in terms:
        if perceptual is None:
            raise ConfigError("the perceptual loss term needs a PerceptualLoss")
        parts["perceptual"] = perceptual(pred.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2))
        total = total + weights.perceptual * parts["perceptual"]
    if "depth" in terms:
        if pred_depth is None or target_depth is None:
            raise ConfigError("the depth loss term needs rendered and target depth")
        parts["depth"] = depth_loss(pred_depth, target_depth)
        total = total + weights.depth * parts["depth"]
    if "opacity" in terms:
        if opacities is None:
            raise ConfigError("the opacity loss term needs the Gaussians' opacities")
        parts["opacity"] = opacity_loss(opacities)
        total = total + weights.opacity * parts["opacity"]
    return total, {k: v.detach() for k, v in parts.items()}
