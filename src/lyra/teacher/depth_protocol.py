"""The depth-estimator protocol (:mod:`lyra.teacher.depth` has the sources): :class:`DepthResult`,
:class:`DepthEstimator` and the input check :func:`as_image_batch`. Kept apart so that the depth net and the
source loader import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

from lyra.errors import ConfigError

__all__ = ["DepthEstimator", "DepthResult", "as_image_batch"]


@dataclass
class DepthResult:
    """``depth`` ``[B, H, W]`` z-depth (world units, > 0) and ``confidence`` ``[B, H, W]`` in [0, 1]."""

    depth: Tensor
    confidence: Tensor


@runtime_checkable
class DepthEstimator(Protocol):
    """Anything that maps an image batch ``[B, 3, H, W]`` in [0, 1] to a :class:`DepthResult`."""

    def __call__(self, image: Tensor) -> DepthResult: ...


def as_image_batch(image: Tensor) -> Tensor:
    """``image`` as a float ``[B, 3, H, W]`` batch (a ``[3, H, W]`` image gains ``B = 1``)."""
    if not isinstance(image, Tensor):
        raise ConfigError(f"image must be a torch tensor, got {type(image).__name__}")
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[1] != 3:
        raise ConfigError(f"image must be [B, 3, H, W] or [3, H, W] RGB, got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ConfigError(f"image must be float in [0, 1], got dtype {image.dtype}")
    return image
