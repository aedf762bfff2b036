"""Batched ray casting against a :class:`~lyra.world.scene.SceneBatch`: nearest hit, its surface.

Design (why it is fast enough on two CPU cores):

* Rays come in **groups** ("tiles", e.g. 16×16 pixels of one camera, or the 4 sub-samples of one
  pixel). Every group belongs to one *view* (a camera at one time of one scene) and carries a
  bounding **beam** (apex/centre, axis, angular and spatial radius).
* **Culling**: each local primitive's bounding sphere is tested against every beam, giving per group
  a short list of candidate primitives sorted by kind. Global surfaces (planes, the room union) are
  tested against every ray first; candidates farther than everything the group already hit are then
  dropped (early z).
* **Intersection**: for each primitive kind, every (group, candidate) pair of that kind is intersected
  in one batched call (closed forms of :mod:`lyra.world.intersect`, in the primitive's frame; chunked
  only to bound memory), and each ray keeps its nearest candidate through an exact integer min over
  keys ``(t, kind, index)`` (``index_reduce_``): a handful of kernel launches per kind and per ray batch
  instead of one pass per primitive, deterministic, and bit for bit the sequential "keep the strictly
  nearer" fold over the candidates in list order.

A hit is encoded in one int32 ``code = kind · 2^16 + index``: ``HIT_NONE`` (sky), ``HIT_PRIM`` (local
primitive ``index``), ``HIT_PLANE``, ``HIT_ROOM`` (room box ``index`` of the union). While tracing,
codes are kept as float32 (exact below 2^24) and updated with ``lerp`` by 0/1 weights, and misses
carry a huge ``t``: on CPU this arithmetic masking is several times cheaper than ``torch.where``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.world._compile import kernel
from lyra.world.intersect import INTERSECT, MISS, MISS_T, NORMAL, _miss, _safe
from lyra.world.scene import N_KINDS, ROOM_PAD, SceneBatch, bounding_radius, prims_at

HIT_NONE, HIT_PRIM, HIT_PLANE, HIT_ROOM = 0, 1, 2, 3
# torch warns once per process that index_reduce_ is "in beta" (its API; the op is exact and stable)
warnings.filterwarnings("ignore", message=r"index_reduce\(\) is in beta", category=UserWarning)
_SHIFT = 16
_MASK = (1 << _SHIFT) - 1
INF = float("inf")


@dataclass
class Views:
    """Per-view state: one view = one scene at one time. ``V`` views.

    Attributes:
        scene: scene index ``[V]`` into the batch.
        kind, center, rot, size, bound: local primitives at the view's time, ``[V, P]``, ``[V, P, 3]``,
            ``[V, P, 3, 3]``, ``[V, P, 3]``, bounding spheres ``[V, P, 4]`` (centre, radius).
        plane ``[V, Q, 4]``, plane_ok ``[V, Q]``, room ``[V, B, 6]``.
    """

    scene: Tensor
    kind: Tensor
    center: Tensor
    rot: Tensor
    size: Tensor
    bound: Tensor
    plane: Tensor
    plane_ok: Tensor
    room: Tensor

    @classmethod
    def make(cls, batch: SceneBatch, scene: Tensor, time: Tensor) -> Views:
        """Views of ``batch`` for scene indices ``scene`` [V] at times ``time`` [V] (in [0, 1])."""
        scene = scene.to(batch.device)
        time = time.to(batch.device, torch.float32)
        g = batch.tensors
        center, rot = prims_at(g["prim_center"][scene], g["prim_rot"][scene], g["prim_obj"][scene],
                               g["obj_pivot"][scene], g["obj_path"][scene],
                               g["obj_yaw"][scene] * g["obj_moving"][scene], g["obj_moving"][scene], time)
        kind = g["prim_kind"][scene]
        size = g["prim_size"][scene]
        bound = torch.cat([center, bounding_radius(kind, size)[..., None]], -1)
        return cls(scene, kind, center, rot, size, bound, g["plane"][scene], g["plane_mat"][scene] >= 0,
                   g["room"][scene])


@dataclass
class Rays:
    """Ray groups: ``n`` groups of ``R`` rays, stored component-major.

    Attributes:
        view: view index per group ``[n]``.
        o: origins ``[3, n, 1]`` (shared per group) or ``[3, n, R]``.
        d: directions ``[3, n, R]`` (any length; ``t`` is measured in units of ``|d|``).
        beam_o ``[n, 3]``, beam_a ``[n, 3]`` (unit axis), beam_tan ``[n]`` (tangent of the half angle),
        beam_rho ``[n]`` (spatial radius at the apex): a cone/cylinder containing every ray of the group.
        zaxis ``[n, 3]``: the ray parameter of a point ``p`` on any ray of the group is
            ``(p - beam_o)·zaxis`` (camera rays: the optical axis, as ``t`` is z-depth; parallel rays
            with origins on a plane through ``beam_o`` perpendicular to them: their direction).
    """

    view: Tensor
    o: Tensor
    d: Tensor
    beam_o: Tensor
    beam_a: Tensor
    beam_tan: Tensor
    beam_rho: Tensor
    zaxis: Tensor

    @property
    def n(self) -> int:
        return int(self.d.shape[1])

    @property
    def R(self) -> int:
        return int(self.d.shape[2])


@dataclass
class Candidates:
    """Per group candidate lists: ``lists`` [n, K] primitive indices (sorted by kind, -1 = none),
    ``start`` / ``count`` [n, N_KINDS] where each kind's run begins and how long it is, ``zmin`` [n, K]
    the nearest possible ray parameter of each candidate (for early z)."""

    lists: Tensor
    start: Tensor
    count: Tensor
    zmin: Tensor

    def select(self, groups: Tensor) -> Candidates:
        return Candidates(self.lists[groups], self.start[groups], self.count[groups], self.zmin[groups])


def cull(views: Views, rays: Rays, prim_mask: Tensor | None = None) -> Candidates:
    """Candidate primitives for every ray group (bounding sphere ∩ beam), sorted by kind.

    ``prim_mask`` [V, P] (bool) restricts the primitives considered (e.g. shadow casters).
    """
    bound = views.bound.index_select(0, rays.view)  # [n, P, 4]
    kind = views.kind.index_select(0, rays.view)  # [n, P]
    c, r = bound[..., :3], bound[..., 3]
    v = c - rays.beam_o[:, None, :]
    s = (v * rays.beam_a[:, None, :]).sum(-1)  # along the axis
    perp2 = ((v * v).sum(-1) - s * s).clamp_min(0)
    tan = rays.beam_tan[:, None]
    reach = r * torch.sqrt(1 + tan * tan) + rays.beam_rho[:, None] + s.clamp_min(0) * tan
    ok = (kind >= 0) & (perp2 <= reach * reach) & (s + r > 0)
    if prim_mask is not None:
        ok &= prim_mask.index_select(0, rays.view)
    P = kind.shape[1]
    key = torch.where(ok, kind * P + torch.arange(P, device=kind.device), N_KINDS * P)
    key, _ = key.sort(dim=1)
    count = torch.stack([(ok & (kind == k)).sum(1) for k in range(N_KINDS)], 1)
    K = int(ok.sum(1).max()) if ok.numel() else 0
    key = key[:, :K]
    lists = torch.where(key < N_KINDS * P, key % P, -1)
    start = torch.cumsum(count, 1) - count
    z = (v * rays.zaxis[:, None, :]).sum(-1) - r
    zmin = torch.gather(z, 1, lists.clamp_min(0)) if K else s[:, :0]
    return Candidates(lists, start, count, zmin)


@kernel
def _planes_kernel(o: Tensor, d: Tensor, planes: Tensor, ok: Tensor, t_best: Tensor, code: Tensor,
                   near: float) -> tuple[Tensor, Tensor]:
    """Fold planes ``[n, Q, 4]`` (``ok`` [n, Q]) into the nearest hits ``t_best``/``code`` [n, R]."""
    for q in range(planes.shape[1]):
        nx, ny, nz, h = (planes[:, q, k, None] for k in range(4))
        denom = nx * d[0] + ny * d[1] + nz * d[2]
        t = (h - (nx * o[0] + ny * o[1] + nz * o[2])) / _safe(denom)
        t = _miss(t, (denom >= 0) | (t <= near) | ~ok[:, q, None])
        better = (t < t_best).to(t.dtype)
        t_best = torch.minimum(t_best, t)
        code = torch.lerp(code, torch.full_like(t_best[:1, :1], float(HIT_PLANE << _SHIFT | q)), better)
    return t_best, code


@kernel
def _room_slabs(o: Tensor, d: Tensor, rooms: Tensor) -> tuple[Tensor, Tensor]:
    """Entry and exit parameters ``[n, B, R]`` of every ray (``o`` [3, n, 1|R], ``d`` [3, n, R]) through every
    box ``rooms`` [n, B, 6] (slab method)."""
    lo_t = hi_t = None
    for k in range(3):
        inv = (1 / _safe(d[k]))[:, None, :]
        ok = o[k][:, None, :]
        t1 = (rooms[:, :, k, None] - ok) * inv
        t2 = (rooms[:, :, k + 3, None] - ok) * inv
        lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
        lo_t = lo if lo_t is None else torch.maximum(lo_t, lo)
        hi_t = hi if hi_t is None else torch.minimum(hi_t, hi)
    return lo_t, hi_t


@kernel
def _room_step(cur: Tensor, tin: Tensor, tout: Tensor) -> Tensor:
    """Jump from ``cur`` [n, R] to the exit ``tout`` of one box if the point at ``cur`` lies in it (``tin``)."""
    return torch.maximum(cur, tout - (tin > cur).to(cur.dtype) * MISS)


@kernel
def _room_fold(cur: Tensor, tout: Tensor, t_best: Tensor, code: Tensor, near: float) -> tuple[Tensor, Tensor]:
    """Fold the walk's end ``cur`` [n, R] (the exit of box ``tout == cur``, the last such box) into the hits."""
    B = tout.shape[1]
    rank = torch.arange(1, B + 1, device=cur.device, dtype=cur.dtype)[None, :, None]
    which = ((tout == cur[:, None, :]).to(cur.dtype) * rank).amax(1)
    t_room = _miss(cur, cur <= near)
    better = (t_room < t_best).to(cur.dtype)
    return torch.minimum(t_best, t_room), torch.lerp(code, (HIT_ROOM << _SHIFT) - 1 + which, better)


@kernel
def _rooms_kernel(o: Tensor, d: Tensor, rooms: Tensor, t_best: Tensor, code: Tensor,
                  near: float) -> tuple[Tensor, Tensor]:
    """:func:`_rooms` box by box (few passes, as boxes are listed along the chains; many small kernels)."""
    B = rooms.shape[1]
    inv = [1 / _safe(d[k]) for k in range(3)]
    tin, tout = [], []
    for b in range(B):
        lo_t = hi_t = None
        for k in range(3):
            t1 = (rooms[:, b, k, None] - o[k]) * inv[k]
            t2 = (rooms[:, b, k + 3, None] - o[k]) * inv[k]
            lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
            lo_t = lo if lo_t is None else torch.maximum(lo_t, lo)
            hi_t = hi if hi_t is None else torch.minimum(hi_t, hi)
        tin.append(lo_t)
        tout.append(hi_t)
    cur = torch.full_like(t_best, near)
    for _ in range(B):
        prev = cur
        for b in range(B):
            cur = torch.maximum(cur, tout[b] - (tin[b] > cur).to(cur.dtype) * MISS)
        if not torch.compiler.is_compiling() and not bool((cur > prev).any()):
            break  # eager only: converged (boxes are listed so that one pass usually suffices)
    which = torch.zeros_like(cur)
    for b in range(B):
        which = torch.maximum(which, (tout[b] == cur).to(cur.dtype) * (b + 1))
    t_room = _miss(cur, cur <= near)
    better = (t_room < t_best).to(cur.dtype)
    return torch.minimum(t_best, t_room), torch.lerp(code, (HIT_ROOM << _SHIFT) - 1 + which, better)


def _rooms(o: Tensor, d: Tensor, rooms: Tensor, t_best: Tensor, code: Tensor, near: float,
           batched: bool | None = None) -> tuple[Tensor, Tensor]:
    """Fold the exit from the union of boxes ``rooms`` [n, B, 6] into ``t_best``/``code`` [n, R].

    Starting at the origin, the walk jumps to the exit of every box containing the current point, box by
    box in list order, pass after pass until a pass changes nothing (boxes are listed along the chains of
    overlapping boxes, so one pass usually suffices; ``B`` passes always do). Rays whose origin lies in no
    box get no hit. ``batched`` (default: on CUDA) computes every box's slabs and the exit's box index in
    a few calls over ``[n, B, R]`` tensors instead of ``B`` calls each (fewer kernel launches, the same
    arithmetic and result); the CPU keeps the box-by-box kernel (less memory traffic there).
    """
    if batched is None:
        batched = o.device.type == "cuda"
    if not batched:
        return _rooms_kernel(o, d, rooms, t_best, code, near)
    tin, tout = _room_slabs(o, d, rooms)
    cur = torch.full_like(t_best, near)
    B = rooms.shape[1]
    for _ in range(B):
        prev = cur
        for b in range(B):
            cur = _room_step(cur, tin[:, b], tout[:, b])
        if not bool((cur > prev).any()):
            break  # converged: one host sync per pass
    return _room_fold(cur, tout, t_best, code, near)


def _globals(views: Views, rays: Rays, near: float, batched_rooms: bool | None = None) -> tuple[Tensor, Tensor]:
    """Nearest hit of the planes and the room union for every ray: ``t`` [n, R] (``MISS`` for none)
    and the float hit code [n, R]. ``batched_rooms``: see :func:`_rooms`."""
    n, R = rays.n, rays.R
    dev = rays.d.device
    t_best = torch.full((n, R), MISS, device=dev)
    code = torch.zeros((n, R), device=dev)
    ok = views.plane_ok.index_select(0, rays.view)
    if ok.shape[1] and bool(ok.any()):
        t_best, code = _planes_kernel(rays.o, rays.d, views.plane.index_select(0, rays.view), ok, t_best, code, near)
    rooms = views.room.index_select(0, rays.view)  # [n, B, 6]
    if not rooms.shape[1]:
        return t_best, code
    indoor = (rooms[:, :, 0] < ROOM_PAD * 0.5).any(1)  # groups whose scene has rooms
    k = int(indoor.sum())
    if k == n:
        t_best, code = _rooms(rays.o, rays.d, rooms, t_best, code, near, batched_rooms)
    elif k:  # a batch of indoor and outdoor worlds: walk only the indoor rays (the others would never move)
        sel = indoor.nonzero().squeeze(1)
        t_in, code_in = _rooms(rays.o.index_select(1, sel), rays.d.index_select(1, sel), rooms.index_select(0, sel),
                               t_best.index_select(0, sel), code.index_select(0, sel), near, batched_rooms)
        t_best, code = t_best.index_copy(0, sel, t_in), code.index_copy(0, sel, code_in)
    return t_best, code


def _to_local(o: Tensor, d: Tensor, c: Tensor, rot: Tensor) -> tuple[tuple, tuple]:
    """World rays (``o`` [3, m, 1|R], ``d`` [3, m, R]) in the frame of centre ``c`` [3, m, 1] and rotation
    ``rot`` [9, m, 1] (row-major local→world; local = world @ rot)."""
    o = o - c
    o_l = tuple(o[0] * rot[a] + o[1] * rot[3 + a] + o[2] * rot[6 + a] for a in range(3))
    d_l = tuple(d[0] * rot[a] + d[1] * rot[3 + a] + d[2] * rot[6 + a] for a in range(3))
    return o_l, d_l


# Candidate hits are reduced per ray as one int64 **key** ``bits(t) << 16 | kind << 14 | index``: ``t`` is
# float32 and positive (hits need ``t > near >= 0``; misses are about ``MISS``), so its IEEE bit pattern
# orders like its value, and ``(kind, index)``, the order of the group's candidate list, breaks ties as the
# sequential "keep the first strictly nearer" fold does. A min over keys is exact and order-independent,
# hence deterministic on every device, and the winner's primitive index is in its low bits.
_KEY_BITS = 16
_INDEX_BITS = 14


def _key(t: Tensor, low: Tensor) -> Tensor:
    return (t.view(torch.int32).to(torch.int64) << _KEY_BITS) | low


def _pair_rays(o: Tensor, d: Tensor, g: Tensor, c: Tensor, rot: Tensor) -> tuple[tuple, tuple]:
    """The rays of groups ``g`` [m] (of ``o`` [3, n, 1|R], ``d`` [3, n, R]) in the frames ``c``/``rot``."""
    return _to_local(o.index_select(1, g), d.index_select(1, g), c, rot)


# One function per primitive kind (each gets its own compiled-code cache). Arguments: all ray groups ``o``
# [3, n, 1|R] and ``d`` [3, n, R], and ``m`` candidate (group, primitive) pairs: the group ``g`` [m], the
# primitive (``c`` [3, m, 1], ``rot`` [9, m, 1], ``size`` [3, m, 1]) and its key bits ``low`` [m, 1] (int64,
# ``kind << 14 | index``); returns the keys [m, R] (see :func:`_key`). The rays are gathered inside, so that
# ``torch.compile`` fuses the gather with the arithmetic (one pass over memory).
@kernel
def _key_ellipsoid(o, d, g, c, rot, size, low, near: float):
    o_l, d_l = _pair_rays(o, d, g, c, rot)
    return _key(INTERSECT[0](o_l, d_l, (size[0], size[1], size[2]), near), low)


@kernel
def _key_box(o, d, g, c, rot, size, low, near: float):
    o_l, d_l = _pair_rays(o, d, g, c, rot)
    return _key(INTERSECT[1](o_l, d_l, (size[0], size[1], size[2]), near), low)


@kernel
def _key_cone(o, d, g, c, rot, size, low, near: float):
    o_l, d_l = _pair_rays(o, d, g, c, rot)
    return _key(INTERSECT[2](o_l, d_l, (size[0], size[1], size[2]), near), low)


_CANDIDATE = (_key_ellipsoid, _key_box, _key_cone)


@kernel
def _merge(t_best: Tensor, code: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
    """Fold the nearest candidate of every ray (``key`` [n, R]) into the nearest global hits
    ``t_best``/``code`` [n, R]; the globals win ties (they were folded first)."""
    t = (key >> _KEY_BITS).to(torch.int32).view(torch.float32)
    prim = (key & ((1 << _INDEX_BITS) - 1)).to(code.dtype)
    better = t < t_best
    return torch.minimum(t_best, t), torch.where(better, prim + float(HIT_PRIM << _SHIFT), code)


@kernel
def _finish(t: Tensor, code: Tensor) -> tuple[Tensor, Tensor]:
    return torch.where(t >= MISS_T, INF, t), code.to(torch.int32)


#: Ray–candidate pairs intersected per batched call by default: memory for one float32 temporary
#: is 4 bytes each (CPU: small, cache-friendly chunks; CUDA: large ones, few kernel launches).
CHUNK_CPU = 1 << 18
CHUNK_CUDA = 1 << 25


def trace(views: Views, rays: Rays, cand: Candidates, near: float = 1e-3, use_globals: bool = True,
          chunk_rays: int | None = None, early_z: bool = True) -> tuple[Tensor, Tensor]:
    """Nearest hit of every ray: parameter ``t`` [n, R] (``inf`` on a miss) and hit ``code`` [n, R] (int32).

    Local primitives are intersected per kind in a few batched calls: every (group, candidate) pair of
    that kind at once, ``chunk_rays`` ray–pair intersections per call (default :data:`CHUNK_CPU` /
    :data:`CHUNK_CUDA`), reduced into each ray's nearest candidate by an exact min over keys
    (:func:`_key`). The result is the sequential fold over the candidates in list order with "keep the
    strictly nearer" (ties go to the globals, then to the earlier candidate), bit for bit.
    """
    n, R = rays.n, rays.R
    dev = rays.d.device
    if use_globals:
        t_best, code = _globals(views, rays, near)
    else:
        t_best = torch.full((n, R), MISS, device=dev)
        code = torch.zeros((n, R), device=dev)
    lists = cand.lists
    K = lists.shape[1]
    if K == 0 or n == 0:
        return _finish(t_best, code)
    P = views.kind.shape[1]
    if P > 1 << _INDEX_BITS:
        raise ValueError(f"trace: {P} primitives per scene exceed {1 << _INDEX_BITS}")
    if chunk_rays is None:
        chunk_rays = CHUNK_CUDA if dev.type == "cuda" else CHUNK_CPU
    valid = lists >= 0
    if early_z:
        valid &= cand.zmin <= t_best.amax(1, keepdim=True)
    prim_all = lists.clamp_min(0)
    flat_all = rays.view[:, None] * P + prim_all  # [n, K] into the views' [V·P] primitives
    kind_all = views.kind.reshape(-1)[flat_all]
    pair_kind = torch.where(valid, kind_all, -1)
    low_all = (kind_all << _INDEX_BITS) | prim_all
    key_miss = _key(torch.full((1, 1), MISS, device=dev), torch.zeros((1, 1), dtype=torch.int64, device=dev))
    best = key_miss.expand(n, R).contiguous()
    center_f = views.center.reshape(-1, 3)
    rot_f = views.rot.reshape(-1, 9)
    size_f = views.size.reshape(-1, 3)
    pair_chunk = max(1, chunk_rays // R)
    for kind in range(N_KINDS):
        pairs = (pair_kind == kind).nonzero()  # [m, 2] (group, slot); a host sync for m
        for p0 in range(0, pairs.shape[0], pair_chunk):
            g, slot = pairs[p0:p0 + pair_chunk].T.contiguous()  # [m] each, contiguous
            flat = flat_all[g, slot]
            c = center_f.index_select(0, flat).T.contiguous()[:, :, None]  # [3, m, 1]
            rot = rot_f.index_select(0, flat).T.contiguous()[:, :, None]  # [9, m, 1], entry 3*row + col
            size = size_f.index_select(0, flat).T.contiguous()[:, :, None]
            key = _CANDIDATE[kind](rays.o, rays.d, g, c, rot, size, low_all[g, slot][:, None], near)
            best.index_reduce_(0, g, key, "amin")
    t_best, code = _merge(t_best, code, best)
    return _finish(t_best, code)


@dataclass
class Surface:
    """Attributes of ``k`` hit points (from the rays that hit something), component-major.

    ``index`` [k] flat ray index into ``[n·R]``; ``view`` [k]; ``p`` world position [3, k]; ``normal``
    unit world normal [3, k] facing the free side; ``q`` texture-space point [3, k] (object-local for
    primitives, world for planes/rooms); ``n_tex`` normal in texture space [3, k]; ``mat`` material
    index [k]; ``obj`` object index [k]; ``face`` face id [k] (distinguishes faces of one object);
    ``d`` ray direction [3, k] and ``t`` ray parameter [k] of the hit.
    """

    index: Tensor
    view: Tensor
    p: Tensor
    normal: Tensor
    q: Tensor
    n_tex: Tensor
    mat: Tensor
    obj: Tensor
    face: Tensor
    d: Tensor
    t: Tensor


def _take(table: Tensor, scene: Tensor, idx: Tensor) -> Tensor:
    """``table[scene, idx]`` for a ``[S, X, ...]`` table, via one flat ``index_select``."""
    X = table.shape[1]
    return table.reshape(-1, *table.shape[2:]).index_select(0, scene * X + idx)


def surface(batch: SceneBatch, views: Views, rays: Rays, t: Tensor, code: Tensor) -> Surface:
    """Position, normal, texture coordinates, material and ids at every hit of :func:`trace`."""
    R = rays.R
    flat_code = code.reshape(-1)
    index = (flat_code != 0).nonzero().squeeze(1)
    dev = t.device
    k = index.numel()
    grp = index // R
    view = rays.view.index_select(0, grp)
    scene = views.scene.index_select(0, view)
    tt = t.reshape(-1).index_select(0, index)
    if rays.o.shape[2] == 1:
        o = rays.o[:, :, 0].index_select(1, grp)
    else:
        o = rays.o.reshape(3, -1).index_select(1, index)
    d = rays.d.reshape(3, -1).index_select(1, index)
    p = o + tt * d
    hit = flat_code.index_select(0, index)
    kind_code = hit >> _SHIFT
    idx = (hit & _MASK).long()
    normal = torch.zeros(3, k, device=dev)
    q = p.clone()
    mat = torch.zeros(k, dtype=torch.long, device=dev)
    obj = torch.zeros(k, dtype=torch.long, device=dev)
    face = torch.zeros(k, dtype=torch.long, device=dev)
    g = batch.tensors
    P = views.kind.shape[1]
    # local primitives
    sel = (kind_code == HIT_PRIM).nonzero().squeeze(1)
    if sel.numel():
        pi = idx.index_select(0, sel)
        flat = view.index_select(0, sel) * P + pi
        c = views.center.reshape(-1, 3).index_select(0, flat).T
        rot = views.rot.reshape(-1, 9).index_select(0, flat).T  # [9, s]
        size = views.size.reshape(-1, 3).index_select(0, flat).T
        kinds = views.kind.reshape(-1).index_select(0, flat)
        rel = p.index_select(1, sel) - c
        ql = torch.stack([rel[0] * rot[a] + rel[1] * rot[3 + a] + rel[2] * rot[6 + a] for a in range(3)], 0)
        present = torch.bincount(kinds, minlength=N_KINDS).tolist()
        if sum(1 for c_ in present if c_) == 1:
            kk = next(i for i, c_ in enumerate(present) if c_)
            nl, fc = NORMAL[kk](ql, size)
        else:
            nl = torch.zeros_like(ql)
            fc = torch.zeros_like(pi)
            for kk in range(N_KINDS):
                if present[kk]:
                    s2 = (kinds == kk).nonzero().squeeze(1)
                    n2, f2 = NORMAL[kk](ql.index_select(1, s2), size.index_select(1, s2))
                    nl.index_copy_(1, s2, n2)
                    fc.index_copy_(0, s2, f2)
        nw = torch.stack([rot[3 * a] * nl[0] + rot[3 * a + 1] * nl[1] + rot[3 * a + 2] * nl[2] for a in range(3)], 0)
        normal.index_copy_(1, sel, nw)
        q.index_copy_(1, sel, ql)
        sc = scene.index_select(0, sel)
        mat.index_copy_(0, sel, _take(g["prim_mat"], sc, pi))
        obj.index_copy_(0, sel, _take(g["prim_obj"], sc, pi))
        face.index_copy_(0, sel, fc)
        n_tex = normal.clone()
        n_tex.index_copy_(1, sel, nl)
    else:
        n_tex = None
    # planes
    sel = (kind_code == HIT_PLANE).nonzero().squeeze(1)
    if sel.numel():
        sc, qi = scene.index_select(0, sel), idx.index_select(0, sel)
        normal.index_copy_(1, sel, _take(g["plane"], sc, qi)[:, :3].T.contiguous())
        mat.index_copy_(0, sel, _take(g["plane_mat"], sc, qi))
        obj.index_copy_(0, sel, _take(g["plane_obj"], sc, qi))
    # rooms: which face of box `idx` did the ray leave through?
    sel = (kind_code == HIT_ROOM).nonzero().squeeze(1)
    if sel.numel():
        sc, bi = scene.index_select(0, sel), idx.index_select(0, sel)
        box = _take(g["room"], sc, bi).T  # [6, s]
        dd = d.index_select(1, sel)
        bound = torch.where(dd > 0, box[3:], box[:3])
        texit = (bound - o.index_select(1, sel)) / _safe(dd)
        x_min = (texit[0] <= texit[1]) & (texit[0] <= texit[2])
        axis = torch.where(x_min, 0, torch.where(texit[1] <= texit[2], 1, 2))
        comp = torch.gather(dd, 0, axis[None])[0]
        sign = torch.where(comp > 0, -1.0, 1.0)  # normal points back into the room
        nrm = torch.zeros_like(dd).scatter_(0, axis[None], sign[None])
        normal.index_copy_(1, sel, nrm)
        # floor (normal -y, i.e. up), ceiling (normal +y), walls
        which = torch.where(axis == 1, torch.where(sign < 0, 0, 1), 2)
        mats = _take(g["room_mat"], sc, bi)  # [s, 3]
        mat.index_copy_(0, sel, torch.gather(mats, 1, which[:, None])[:, 0])
        obj.index_copy_(0, sel, _take(g["room_obj"], sc, bi))
        face.index_copy_(0, sel, 2 * axis + (sign > 0).long())
    if n_tex is None:
        n_tex = normal
    else:
        rest = (kind_code != HIT_PRIM).nonzero().squeeze(1)
        n_tex.index_copy_(1, rest, normal.index_select(1, rest))
    return Surface(index, view, p, normal, q, n_tex, mat, obj, face, d, tt)


# ---------------------------------------------------------------------- ray groups for cameras
def camera_tiles(K: Tensor, c2w: Tensor, width: int, height: int, tile: int, view: Tensor) -> tuple[Rays, int, int]:
    """Primary rays of cameras ``K`` [N, 3, 3], ``c2w`` [N, 4, 4] grouped in ``tile``×``tile`` tiles.

    The image is padded up to whole tiles. Directions have camera-space z = 1, so ``t`` is z-depth.
    Returns the rays (groups ordered camera, tile row, tile column; rays row-major inside a tile) and
    the padded height and width.
    """
    N = K.shape[0]
    dev = K.device
    Hp = -(-height // tile) * tile
    Wp = -(-width // tile) * tile
    nty, ntx = Hp // tile, Wp // tile
    v, u = torch.meshgrid(torch.arange(Hp, device=dev, dtype=torch.float32) + 0.5,
                          torch.arange(Wp, device=dev, dtype=torch.float32) + 0.5, indexing="ij")
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy, skew = K[:, 0, 2, None, None], K[:, 1, 2, None, None], K[:, 0, 1, None, None]
    y = (v - cy) / fy
    x = (u - cx - skew * y) / fx
    Rm = c2w[:, :3, :3]
    d = torch.stack([Rm[:, k, 0, None, None] * x + Rm[:, k, 1, None, None] * y + Rm[:, k, 2, None, None]
                     for k in range(3)], 0)  # [3, N, Hp, Wp]
    d = d.reshape(3, N, nty, tile, ntx, tile).permute(0, 1, 2, 4, 3, 5).reshape(3, N * nty * ntx, tile * tile)
    o = c2w[:, :3, 3].T[:, :, None].expand(3, N, nty * ntx).reshape(3, -1, 1)
    # beams: tile centre direction and the widest corner angle
    ty, tx = torch.meshgrid(torch.arange(nty, device=dev, dtype=torch.float32),
                            torch.arange(ntx, device=dev, dtype=torch.float32), indexing="ij")
    corners_u = torch.stack([tx, tx + 1, tx, tx + 1], -1) * tile  # [nty, ntx, 4]
    corners_v = torch.stack([ty, ty, ty + 1, ty + 1], -1) * tile
    cu = (tx + 0.5) * tile
    cv = (ty + 0.5) * tile

    def cam_dir(uu: Tensor, vv: Tensor) -> Tensor:
        yy = (vv - K[:, 1, 2].view(N, *([1] * vv.dim()))) / K[:, 1, 1].view(N, *([1] * vv.dim()))
        xx = (uu - K[:, 0, 2].view(N, *([1] * uu.dim())) - K[:, 0, 1].view(N, *([1] * uu.dim())) * yy) \
            / K[:, 0, 0].view(N, *([1] * uu.dim()))
        return torch.nn.functional.normalize(torch.stack([xx, yy, torch.ones_like(xx)], -1), dim=-1)

    axis_c = cam_dir(cu, cv)  # [N, nty, ntx, 3]
    corner_c = cam_dir(corners_u, corners_v)  # [N, nty, ntx, 4, 3]
    cosang = (corner_c * axis_c[..., None, :]).sum(-1).amin(-1).clamp(-1, 1)
    ang = torch.acos(cosang) + 1e-4
    tan = torch.tan(ang.clamp(max=math.pi / 2 - 1e-3))
    axis_w = (Rm[:, None, None] @ axis_c[..., None])[..., 0].reshape(-1, 3)
    rays = Rays(
        view=view.repeat_interleave(nty * ntx),
        o=o,
        d=d,
        beam_o=c2w[:, :3, 3].repeat_interleave(nty * ntx, 0),
        beam_a=axis_w,
        beam_tan=tan.reshape(-1),
        beam_rho=torch.zeros(N * nty * ntx, device=dev),
        zaxis=c2w[:, :3, 2].repeat_interleave(nty * ntx, 0),
    )
    return rays, Hp, Wp


def untile(x: Tensor, N: int, Hp: int, Wp: int, tile: int, height: int, width: int) -> Tensor:
    """Inverse of the tiling of :func:`camera_tiles`: ``[..., n, R]`` → ``[..., N, height, width]``."""
    lead = x.shape[:-2]
    nty, ntx = Hp // tile, Wp // tile
    x = x.reshape(*lead, N, nty, ntx, tile, tile)
    nd = len(lead)
    perm = list(range(nd)) + [nd, nd + 1, nd + 3, nd + 2, nd + 4]
    x = x.permute(*perm).reshape(*lead, N, Hp, Wp)
    return x[..., :height, :width]
