"""The student's Gaussian activations: 12 head channels + a ray → one pixel-aligned 3D Gaussian.

Head channels, in the release's order: distance 1 | RGB 3 | scale 3 | rotation 4 | opacity 1.
Raw output per Gaussian, in the release's order (14): position 3 | opacity 1 | scale 3 | rotation 4 (wxyz) |
RGB 3. Activations (as released):

* distance ``d = near·(1 − w) + far·w`` with ``w = sigmoid(x − 1.65)`` (near 0.1, far 500), measured along
  the **unit-length** ray direction (the release normalises its ray directions), so
  ``position = ray_o + ray_d · d``;
* ``opacity = sigmoid(x − 2)``;
* ``scale = min(exp(x − (1 − ln 0.3)), 0.3)`` (so ``x = 1`` gives the cap 0.3);
* ``rotation = x / |x|`` (a unit quaternion, wxyz as the renderer reads it);
* ``rgb = 0.5·tanh(x) + 0.5``, no higher spherical harmonics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.gaussians import Gaussians

#: Split of the 12 head channels.
HEAD_SPLIT = (1, 3, 3, 4, 1)  # distance, rgb, scale, rotation, opacity
HEAD_CHANNELS = sum(HEAD_SPLIT)
#: Layout of the 14 raw output channels.
RAW_SPLIT = (3, 1, 3, 4, 3)  # position, opacity, scale, rotation, rgb
RAW_CHANNELS = sum(RAW_SPLIT)


@dataclass(frozen=True)
class GaussianActivations:
    """Constants of the activations (the release's values by default)."""

    near: float = 0.1
    far: float = 500.0
    distance_shift: float = 1.65
    opacity_shift: float = 2.0
    scale_cap: float = 0.3

    @property
    def scale_shift(self) -> float:
        """``1 − ln(scale_cap)`` = 2.2039728… for the cap 0.3."""
        return 1.0 - math.log(self.scale_cap)

    # Each takes and returns float tensors of any shape (the last dim for rotation).
    def distance(self, x: Tensor) -> Tensor:
        w = torch.sigmoid(x - self.distance_shift)
        return self.near * (1 - w) + self.far * w

    def opacity(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x - self.opacity_shift)

    def scale(self, x: Tensor) -> Tensor:
        return torch.clamp_max(torch.exp(x - self.scale_shift), self.scale_cap)

    @staticmethod
    def rotation(x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1)

    @staticmethod
    def rgb(x: Tensor) -> Tensor:
        return 0.5 * torch.tanh(x) + 0.5

    def __call__(self, features: Tensor, rays_o: Tensor, rays_d: Tensor) -> Tensor:
        """Head features ``[..., 12]`` and rays ``[..., 3]`` (world space, unit ``rays_d``) → raw ``[..., 14]``.

        Computed in float32 (float64 stays float64) whatever the features' dtype.
        """
        if features.shape[-1] != HEAD_CHANNELS:
            raise ValueError(f"head features need {HEAD_CHANNELS} channels, got {features.shape[-1]}")
        dtype = torch.promote_types(features.dtype, torch.float32)
        f = features.to(dtype)
        dist, rgb, scale, rot, opa = f.split(HEAD_SPLIT, dim=-1)
        pos = rays_o.to(dtype) + rays_d.to(dtype) * self.distance(dist)
        return torch.cat([pos, self.opacity(opa), self.scale(scale), self.rotation(rot), self.rgb(rgb)], -1)


def raw_to_gaussians(raw: Tensor) -> Gaussians:
    """One scene's raw output ``[N, 14]`` (position | opacity | scale | rotation wxyz | RGB) → ``Gaussians``.

    Keeps the autograd graph (the fields are views of ``raw``).
    """
    if raw.ndim != 2 or raw.shape[-1] != RAW_CHANNELS:
        raise ValueError(f"raw Gaussians must be [N, {RAW_CHANNELS}], got {tuple(raw.shape)}")
    pos, opa, scale, rot, rgb = raw.split(RAW_SPLIT, dim=-1)
    return Gaussians(means=pos, quats=rot, scales=scale, opacities=opa[:, 0], colors=rgb)
