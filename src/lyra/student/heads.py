"""The student's Gaussian activations: 12 head channels + a ray → one pixel-aligned 3D Gaussian.

Head channels, in the release's order: distance 1 | RGB 3 | scale 3 | rotation 4 | opacity 1.
Raw output per Gaussian, in the release's order (14): position 3 | opacity 1 | scale 3 | rotation 4 (wxyz) |
RGB 3. Activations (as released):

* distance ``d = near·(1 − w) + far·w`` with ``w = sigmoid(x − 1.65)`` (near 0.1, far 500), measured along
  the **unit-length** ray direction (the release normalises its ray directions), so
  ``position = ray_o + ray_d · d``;
* ``opacity = sigmoid(x − 2)``;
* ``scale = min(exp(x − (1 − ln 0.3)), 0.3)`` (so ``x = 1`` gives the cap 0.3);
  or, with ``scale_reference="footprint"`` (an option of the tiny preset, not the release's), relative to the
  Gaussian's footprint: ``scale = ρ·d·F·sigmoid(x − (1 + ln(F − 1)))`` with ``ρ`` the angular pitch of the
  Gaussian grid's cell (radians), ``d`` the distance above and ``F = footprint_cap`` (so ``x = 1`` gives one
  cell's footprint and the cap ``F`` cells is approached smoothly, its gradient never cut);
* ``rotation = x / |x|`` (a unit quaternion, wxyz as the renderer reads it);
* ``rgb = 0.5·tanh(x) + 0.5``, no higher spherical harmonics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians

#: Split of the 12 head channels.
HEAD_SPLIT = (1, 3, 3, 4, 1)  # distance, rgb, scale, rotation, opacity
HEAD_CHANNELS = sum(HEAD_SPLIT)
#: Layout of the 14 raw output channels.
RAW_SPLIT = (3, 1, 3, 4, 3)  # position, opacity, scale, rotation, rgb
RAW_CHANNELS = sum(RAW_SPLIT)
#: How scales are measured (:attr:`GaussianActivations.scale_reference`).
SCALE_REFERENCES = ("world", "footprint")


@dataclass(frozen=True)
class GaussianActivations:
    """Constants of the activations (the release's values by default)."""

    near: float = 0.1
    far: float = 500.0
    distance_shift: float = 1.65
    opacity_shift: float = 2.0
    scale_cap: float = 0.3
    #: ``"world"`` (the release): scales in scene units, hard cap ``scale_cap``; ``"footprint"``: in units of the
    #: ray's cell footprint ``ρ·d``, soft cap ``footprint_cap`` cells (see the module docstring).
    scale_reference: str = "world"
    footprint_cap: float = 4.0

    def __post_init__(self) -> None:
        if self.scale_reference not in SCALE_REFERENCES:
            raise ConfigError(f"scale_reference must be one of {', '.join(SCALE_REFERENCES)}, "
                              f"got {self.scale_reference!r}")
        if self.scale_reference == "footprint" and not self.footprint_cap > 1.0:
            raise ConfigError(f"footprint_cap must exceed 1 (cells), got {self.footprint_cap}")

    @property
    def footprint(self) -> bool:
        """Whether scales are relative to the ray's footprint (they then need the cell pitch)."""
        return self.scale_reference == "footprint"

    @property
    def scale_shift(self) -> float:
        """``1 − ln(scale_cap)`` = 2.2039728… for the cap 0.3 (world); ``1 + ln(F − 1)`` (footprint)."""
        if self.footprint:
            return 1.0 + math.log(self.footprint_cap - 1.0)
        return 1.0 - math.log(self.scale_cap)

    # Each takes and returns float tensors of any shape (the last dim for rotation).
    def distance(self, x: Tensor) -> Tensor:
        w = torch.sigmoid(x - self.distance_shift)
        return self.near * (1 - w) + self.far * w

    def opacity(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x - self.opacity_shift)

    def scale(self, x: Tensor, unit: Tensor | None = None) -> Tensor:
        """World: ``min(exp(x − shift), cap)``. Footprint: ``unit·F·sigmoid(x − shift)`` with ``unit`` the
        footprint ``ρ·d`` of one cell (broadcast against ``x``)."""
        if self.footprint:
            if unit is None:
                raise ValueError("footprint scales need the footprint of a cell (unit)")
            return unit * self.footprint_cap * torch.sigmoid(x - self.scale_shift)
        return torch.clamp_max(torch.exp(x - self.scale_shift), self.scale_cap)

    def scale_limit(self, unit: Tensor | None = None) -> Tensor | float:
        """The cap the scales approach: ``scale_cap`` (world) or ``F·unit`` (footprint)."""
        if self.footprint:
            if unit is None:
                raise ValueError("footprint scales need the footprint of a cell (unit)")
            return self.footprint_cap * unit
        return self.scale_cap

    @staticmethod
    def rotation(x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1)

    @staticmethod
    def rgb(x: Tensor) -> Tensor:
        return 0.5 * torch.tanh(x) + 0.5

    def __call__(self, features: Tensor, rays_o: Tensor, rays_d: Tensor, pitch: Tensor | None = None) -> Tensor:
        """Head features ``[..., 12]`` and rays ``[..., 3]`` (world space, unit ``rays_d``) → raw ``[..., 14]``.

        ``pitch`` ``[..., 1]``: the angular size (radians) of each ray's grid cell; needed with footprint scales.
        Computed in float32 (float64 stays float64) whatever the features' dtype.
        """
        if features.shape[-1] != HEAD_CHANNELS:
            raise ValueError(f"head features need {HEAD_CHANNELS} channels, got {features.shape[-1]}")
        dtype = torch.promote_types(features.dtype, torch.float32)
        f = features.to(dtype)
        dist, rgb, scale, rot, opa = f.split(HEAD_SPLIT, dim=-1)
        d = self.distance(dist)
        pos = rays_o.to(dtype) + rays_d.to(dtype) * d
        unit = None
        if self.footprint:
            if pitch is None:
                raise ValueError("footprint scales need the rays' pitch")
            unit = d * pitch.to(dtype)
        return torch.cat([pos, self.opacity(opa), self.scale(scale, unit), self.rotation(rot), self.rgb(rgb)], -1)


def raw_to_gaussians(raw: Tensor) -> Gaussians:
    """One scene's raw output ``[N, 14]`` (position | opacity | scale | rotation wxyz | RGB) → ``Gaussians``.

    Keeps the autograd graph (the fields are views of ``raw``).
    """
    if raw.ndim != 2 or raw.shape[-1] != RAW_CHANNELS:
        raise ValueError(f"raw Gaussians must be [N, {RAW_CHANNELS}], got {tuple(raw.shape)}")
    pos, opa, scale, rot, rgb = raw.split(RAW_SPLIT, dim=-1)
    return Gaussians(means=pos, quats=rot, scales=scale, opacities=opa[:, 0], colors=rgb)
