"""The ``Gaussians`` container: a flat set of N 3D Gaussians.

Fields (all float32 tensors on one device):

* ``means``     [N, 3]  centres, world units.
* ``quats``     [N, 4]  rotations as unit quaternions, **wxyz** order.
* ``scales``    [N, 3]  standard deviations along the rotated axes, linear (not log), > 0.
* ``opacities`` [N]     in (0, 1) (not logits).
* ``colors``    [N, 3]  base RGB in [0, 1] (the SH degree-0 colour).
* ``sh_rest``   [N, K, 3] or ``None``: higher spherical-harmonic coefficients, K = (d+1)^2 - 1 for SH
  degree d, in the usual order (l=1: m=-1,0,1; l=2 ...), each an RGB triple, in the SH basis's units
  (the same units as the INRIA PLY's ``f_rest_*``).

File formats store activations differently (logit opacity, log scale); the conversions live in
``lyra.gaussians.io``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from lyra.errors import ConfigError, FormatError

#: The zeroth real spherical-harmonic basis constant: colour = 0.5 + SH_C0 * f_dc.
SH_C0 = 0.28209479177387814


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    """RGB in [0, 1] → SH degree-0 coefficient (``f_dc``)."""
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: Tensor) -> Tensor:
    """SH degree-0 coefficient (``f_dc``) → RGB (not clamped)."""
    return dc * SH_C0 + 0.5


def sh_degree_from_rest(k: int) -> int:
    """SH degree d from the number K = (d+1)^2 - 1 of higher coefficients per channel."""
    d = int(round(math.sqrt(k + 1))) - 1
    if (d + 1) ** 2 - 1 != k:
        raise FormatError(f"{k} higher SH coefficients per channel is not (d+1)^2-1 for any degree d")
    return d


def quat_to_rotmat(q: Tensor) -> Tensor:
    """Unit quaternions ``[..., 4]`` (wxyz) → rotation matrices ``[..., 3, 3]``."""
    q = torch.nn.functional.normalize(q, dim=-1)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` → unit quaternions ``[..., 4]`` (wxyz, w ≥ 0)."""
    m = R
    t = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cands = torch.stack(
        [
            torch.stack([1 + t, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                         m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                         m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                         1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                         m[..., 1, 2] + m[..., 2, 1], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1),
        ],
        dim=-2,
    )  # [..., 4 candidates, 4]
    diag = torch.stack([t, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = diag.argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    q = torch.nn.functional.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a ⊗ b`` of wxyz quaternions ``[..., 4]``."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


@dataclass
class Gaussians:
    """N 3D Gaussians. See the module docstring for each field's shape and convention."""

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor
    sh_rest: Tensor | None = None

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def sh_degree(self) -> int:
        """Spherical-harmonic degree of the colours (0 when only the base colour is stored)."""
        if self.sh_rest is None or self.sh_rest.shape[1] == 0:
            return 0
        return sh_degree_from_rest(self.sh_rest.shape[1])

    def _map(self, fn) -> Gaussians:
        return Gaussians(**{f.name: (None if getattr(self, f.name) is None else fn(getattr(self, f.name)))
                            for f in fields(self)})

    def to(self, device: torch.device | str) -> Gaussians:
        return self._map(lambda t: t.to(device))

    def detach(self) -> Gaussians:
        return self._map(lambda t: t.detach())

    def float(self) -> Gaussians:
        return self._map(lambda t: t.float())

    def __getitem__(self, index) -> Gaussians:
        """Select Gaussians by index, slice or boolean mask over N."""
        return self._map(lambda t: t[index])

    @classmethod
    def empty(cls, sh_degree: int = 0, device: torch.device | str = "cpu") -> Gaussians:
        k = (sh_degree + 1) ** 2 - 1
        return cls(
            torch.zeros(0, 3, device=device), torch.zeros(0, 4, device=device),
            torch.zeros(0, 3, device=device), torch.zeros(0, device=device),
            torch.zeros(0, 3, device=device), torch.zeros(0, k, 3, device=device) if k else None,
        )

    # ----------------------------------------------------------------- validation
    def validate(self, name: str = "Gaussians") -> Gaussians:
        """Check shapes and values; raise ``FormatError`` naming the first problem. Returns ``self``.

        Checks: consistent N, finite values everywhere, unit quaternions (|q| within 1e-3 of 1),
        positive scales, opacities in [0, 1].
        """
        n = len(self)
        expect = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,), "colors": (n, 3)}
        for key, shape in expect.items():
            t = getattr(self, key)
            if tuple(t.shape) != shape:
                raise FormatError(f"{name}: {key} has shape {tuple(t.shape)}, expected {shape}")
        if self.sh_rest is not None and (self.sh_rest.ndim != 3 or self.sh_rest.shape[0] != n
                                         or self.sh_rest.shape[2] != 3):
            raise FormatError(f"{name}: sh_rest has shape {tuple(self.sh_rest.shape)}, expected ({n}, K, 3)")
        for f in fields(self):
            t = getattr(self, f.name)
            if t is None:
                continue
            bad = ~torch.isfinite(t)
            if bad.any():
                rows = bad.reshape(n, -1).any(-1).nonzero()[:, 0]
                raise FormatError(f"{name}: {f.name} has non-finite values (NaN/inf) in {len(rows)} "
                                  f"Gaussian(s), first at index {int(rows[0])}")
        if n:
            qn = self.quats.norm(dim=-1)
            if ((qn - 1).abs() > 1e-3).any():
                raise FormatError(f"{name}: quaternions are not unit length (norms in "
                                  f"[{float(qn.min()):.4g}, {float(qn.max()):.4g}]); call .normalized()")
            if (self.scales <= 0).any():
                raise FormatError(f"{name}: scales must be positive (min {float(self.scales.min()):.4g})")
            if (self.opacities < 0).any() or (self.opacities > 1).any():
                raise FormatError(f"{name}: opacities must lie in [0, 1]")
        return self

    def normalized(self) -> Gaussians:
        """A copy with unit quaternions (w ≥ 0)."""
        q = torch.nn.functional.normalize(self.quats, dim=-1)
        q = torch.where(q[:, :1] < 0, -q, q)
        return replace(self, quats=q)

    # ----------------------------------------------------------------- editing
    def kept_indices(self, keep_ratio: float = 0.2) -> Tensor:
        """Indices ``[k]`` (ascending) of the ``k = int(N · keep_ratio)`` Gaussians of highest opacity: what
        :meth:`prune` keeps."""
        if not 0.0 < keep_ratio <= 1.0:
            raise ConfigError(f"keep_ratio must lie in (0, 1], got {keep_ratio}")
        k = int(len(self) * keep_ratio)
        return torch.topk(self.opacities.detach(), k, sorted=False).indices.sort().values

    def prune(self, keep_ratio: float = 0.2) -> Gaussians:
        """Keep the ``int(N · keep_ratio)`` Gaussians of highest opacity (Lyra keeps 20 %).

        The kept Gaussians stay in their original order.
        """
        return self[self.kept_indices(keep_ratio)]

    def prune_by_opacity(self, threshold: float) -> Gaussians:
        """Drop Gaussians with opacity below ``threshold``."""
        return self[self.opacities >= threshold]

    @staticmethod
    def cat(parts: Sequence[Gaussians]) -> Gaussians:
        """Concatenate sets of Gaussians (their SH degrees must agree)."""
        if not parts:
            raise ConfigError("Gaussians.cat needs at least one set")
        degrees = {p.sh_degree for p in parts}
        if len(degrees) > 1:
            raise ConfigError(f"Gaussians.cat: SH degrees differ ({sorted(degrees)})")
        out = {}
        for f in fields(Gaussians):
            vals = [getattr(p, f.name) for p in parts]
            out[f.name] = None if vals[0] is None else torch.cat(vals, 0)
        return Gaussians(**out)

    def transform(self, matrix: Tensor) -> Gaussians:
        """Apply a similarity transform ``[4, 4]`` (rotation · uniform scale, translation).

        Means are mapped, rotations composed, scales multiplied by the uniform scale. Higher SH
        coefficients are left as they are (exact for degree 0; a rotation of SH bands is not applied).
        """
        M = torch.as_tensor(matrix, dtype=self.means.dtype, device=self.device)
        A = M[:3, :3]
        s = torch.linalg.det(A).abs().pow(1 / 3)
        if float(s) <= 0:
            raise ConfigError("transform: matrix is singular")
        R = A / s
        if not torch.allclose(R @ R.T, torch.eye(3, dtype=R.dtype, device=R.device), atol=1e-4):
            raise ConfigError("transform: only rotation · uniform scale + translation is supported")
        if torch.linalg.det(R) < 0:
            raise ConfigError("transform: reflections are not supported")
        q_R = rotmat_to_quat(R)
        return replace(
            self,
            means=self.means @ A.T + M[:3, 3],
            quats=torch.nn.functional.normalize(quat_multiply(q_R.expand_as(self.quats), self.quats), dim=-1),
            scales=self.scales * s,
        )

    def covariances(self) -> Tensor:
        """World-space covariance matrices ``[N, 3, 3]`` = R S S Rᵀ."""
        R = quat_to_rotmat(self.quats)
        RS = R * self.scales[:, None, :]
        return RS @ RS.transpose(-1, -2)

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Axis-aligned bounds of the means: (min [3], max [3])."""
        return self.means.min(0).values, self.means.max(0).values
