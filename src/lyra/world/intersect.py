"""Closed-form ray–primitive intersections and surface normals, in each primitive's local frame.

Rays are passed component-wise: ``o = (ox, oy, oz)`` and ``d = (dx, dy, dz)``, each a tensor
broadcastable to ``[m, R]`` (``m`` ray groups of ``R`` rays; origins are often shared, ``[m, 1]``).
Directions need not be unit: the returned ``t`` is the ray parameter, so with camera rays whose
camera-space z component is 1 it is the z-depth. Sizes are ``[m, 1]`` per component. A miss, or a hit
at ``t <= near``, returns ``inf``. Origins are assumed outside the solid (the caster keeps cameras
in free space); from inside, ellipsoids and boxes report no hit.
"""

from __future__ import annotations

import torch
from torch import Tensor

Vec = tuple[Tensor, Tensor, Tensor]
INF = float("inf")
#: Ray parameter reported for a miss by the closed forms (arithmetic masking is much cheaper than
#: ``torch.where`` on CPU); the caster turns values >= ``MISS_T`` into ``inf``.
MISS = 1e30
MISS_T = 1e29


def _safe(d: Tensor) -> Tensor:
    """``d`` with exact zeros nudged away (so ``1/d`` is finite and slabs stay well defined)."""
    return d + (d == 0).to(d.dtype) * 1e-20


def _miss(t: Tensor, bad: Tensor) -> Tensor:
    """``t`` where ``bad`` is False, about ``MISS`` where it is True."""
    return t + bad.to(t.dtype) * MISS


def ellipsoid(o: Vec, d: Vec, size: Vec, near: float) -> Tensor:
    """Nearest hit of an axis-aligned ellipsoid with radii ``size`` centred at the local origin."""
    ix, iy, iz = 1 / size[0], 1 / size[1], 1 / size[2]
    ox, oy, oz = o[0] * ix, o[1] * iy, o[2] * iz
    dx, dy, dz = d[0] * ix, d[1] * iy, d[2] * iz
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - 1
    disc = b * b - a * c
    t = (-b - torch.sqrt(disc.clamp_min(0))) / a
    return _miss(t, (disc < 0) | (t <= near))


def box(o: Vec, d: Vec, size: Vec, near: float) -> Tensor:
    """Nearest hit of an axis-aligned box with half extents ``size`` centred at the local origin."""
    tmin = tmax = None
    for k in range(3):
        inv = 1 / _safe(d[k])
        t1 = (-size[k] - o[k]) * inv
        t2 = (size[k] - o[k]) * inv
        lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
        tmin = lo if tmin is None else torch.maximum(tmin, lo)
        tmax = hi if tmax is None else torch.minimum(tmax, hi)
    return _miss(tmin, (tmin > tmax) | (tmin <= near))


def cone(o: Vec, d: Vec, size: Vec, near: float) -> Tensor:
    """Nearest hit of a capped cone along local y: radius ``r_b`` at y = +h (bottom), ``r_t`` at y = -h.

    ``size = (r_b, h, r_t)``; a cylinder when ``r_b == r_t``. Side: ``x² + z² = (rm - k y)²`` with
    ``rm = (r_b + r_t)/2`` and ``k = (r_t - r_b)/(2h)``; caps: discs at ``y = ±h``.
    """
    rb, h, rt = size
    rm = 0.5 * (rb + rt)
    k = (rt - rb) / (2 * h)
    ox, oy, oz = o
    dx, dy, dz = d
    ro = rm - k * oy  # radius at the origin's height
    a = dx * dx + dz * dz - k * k * dy * dy
    b = ox * dx + oz * dz + k * ro * dy
    c = ox * ox + oz * oz - ro * ro
    disc = b * b - a * c
    sq = torch.sqrt(disc.clamp_min(0))
    a_safe = _safe(a)
    no_root = disc < 0
    best = None
    for t in ((-b - sq) / a_safe, (-b + sq) / a_safe):
        y = oy + t * dy
        bad = no_root | (t <= near) | (y.abs() > h) | (ro - k * t * dy < 0)
        cand = _miss(t, bad)
        best = cand if best is None else torch.minimum(best, cand)
    dys = _safe(dy)
    for yc, rc in ((h, rb), (-h, rt)):
        t = (yc - oy) / dys
        x = ox + t * dx
        z = oz + t * dz
        best = torch.minimum(best, _miss(t, (t <= near) | (x * x + z * z > rc * rc)))
    return best


INTERSECT = (ellipsoid, box, cone)


# ---------------------------------------------------------------------- normals (component-major [3, k])
def _normalize(v: Tensor) -> Tensor:
    return v * torch.rsqrt((v * v).sum(0, keepdim=True).clamp_min(1e-30))


def normal_ellipsoid(q: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
    """Outward unit normal ``[3, k]`` and face id (0) at local hit points ``q`` [3, k]."""
    return _normalize(q / (size * size)), torch.zeros(q.shape[1], dtype=torch.long, device=q.device)


def normal_box(q: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
    """Outward unit normal and face id ``2·axis + (sign > 0)`` at local hit points on a box."""
    rel = q.abs() / size
    x_max = (rel[0] >= rel[1]) & (rel[0] >= rel[2])
    axis = torch.where(x_max, 0, torch.where(rel[1] >= rel[2], 1, 2))
    n = torch.zeros_like(q)
    comp = torch.gather(q, 0, axis[None])[0]
    sign = torch.where(comp >= 0, 1.0, -1.0)
    n.scatter_(0, axis[None], sign[None])
    return n, 2 * axis + (sign > 0).long()


def normal_cone(q: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
    """Outward unit normal and face id (0 side, 1 bottom cap, 2 top cap) on a capped cone."""
    rb, h, rt = size[0], size[1], size[2]
    rm = 0.5 * (rb + rt)
    k = (rt - rb) / (2 * h)
    r_here = rm - k * q[1]
    rho = torch.sqrt(q[0] ** 2 + q[2] ** 2)
    # the nearer of side (radially) and caps decides the face
    cap = (q[1].abs() - h).abs() < (rho - r_here).abs()
    side_n = _normalize(torch.stack([torch.where(rho < 1e-9, 1.0, q[0]), k * r_here, q[2]], 0))
    cap_n = torch.zeros_like(q)
    cap_n[1] = torch.where(q[1] >= 0, 1.0, -1.0)
    n = torch.where(cap, cap_n, side_n)
    face = torch.where(cap, torch.where(q[1] > 0, 1, 2), 0)
    return n, face


NORMAL = (normal_ellipsoid, normal_box, normal_cone)
