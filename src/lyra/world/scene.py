"""Scene description: analytic primitives, materials, lights and motion, as plain tensors.

World convention: OpenCV-style world with **-y up** (gravity along +y), so that a camera with identity
rotation is upright and ``lyra.geometry.look_at``'s default ``up`` applies. The ground of outdoor
worlds is the plane y = 0 (free space y < 0); indoor floors lie at y = 0 too. Units are metres.

A scene holds three kinds of surfaces:

* **local primitives** ``[P]`` — ellipsoids, oriented boxes and capped cones/cylinders, each in its own
  frame (``center`` [P,3], ``rot`` [P,3,3] local→world, columns = local axes, ``size`` [P,3]:
  ellipsoid radii; box half extents; cone ``(r_bottom, half_height, r_top)`` along local y, bottom at
  local y = +half_height since +y is down). They belong to **objects** ``[O]`` which may move.
* **planes** ``[Q]`` ``(n, h)``: the surface ``n·p = h`` seen from the free side ``n·p > h``.
* **rooms** ``[B]`` axis-aligned boxes ``(min xyz, max xyz)`` whose *union* is the walkable interior
  of an indoor world (rooms plus door passages); rays from inside hit its boundary (walls, floor,
  ceiling). ``room_mat`` [B,3] = materials of (floor, ceiling, walls).

Object ids in renders: 0 = sky, ``o + 1`` for object ``o`` (planes and rooms are objects too).
Motion of object ``o`` at time ``t ∈ [0, 1]``: translation by the cubic Bézier ``B(t)`` with control
offsets ``(0, P1, P2, P3)`` = ``(0, path[o,0], path[o,1], path[o,2])`` and a rotation by ``yaw[o]·t``
about the vertical axis through ``pivot[o]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from lyra.world.textures import MAT_DIM, SKY_DIM

KIND_ELLIPSOID, KIND_BOX, KIND_CONE = 0, 1, 2
N_KINDS = 3
KIND_NAMES = ("ellipsoid", "box", "cone")

#: Light parameters: sun direction (towards the sun) 0:3, sun colour 3:6, sky ambient 6:9, ground ambient
#: 9:12, haze colour 12:15, haze centre 15:18, haze distance scale 18 (inf = none), haze start 19,
#: shadow-map centre 20:23, shadow-map half extent 23, shadow-map depth range 24. Photo style only (0 in classic
#: worlds): indirect-light strength 25, mean scene albedo of the one-bounce term 26, sky radiance gain 27, sun
#: disc radiance gain 28, sky-visibility (ambient occlusion) strength 29, image sky 30 (1 + its index in
#: :func:`lyra.world.photo_textures.sky_infos`; 0 = the procedural sky), image-sky azimuth rotation 31 (radians).
#: The sun's angular radius (soft shadows) is the sky's ``SKY_DIM`` entry 12.
LIGHT_DIM = 32
#: World styles: ``classic`` (the default; every benchmark and the held-out test worlds) and ``photo``
#: (:mod:`lyra.world.photo`: photo textures, glossy and glass-like surfaces, thin structures, soft shadows,
#: indirect light, HDR radiance developed by :mod:`lyra.world.camera_model`).
STYLES = ("classic", "photo")
#: Point lights: position 0:3, colour 3:6, radius 6, region box (min 7:10, max 10:13) where it shines.
POINT_DIM = 13


def rot_y(angle: float | Tensor) -> Tensor:
    """Rotation ``[..., 3, 3]`` by ``angle`` (radians) about the world y axis."""
    a = torch.as_tensor(angle, dtype=torch.float32)
    c, s = torch.cos(a), torch.sin(a)
    z, o = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([torch.stack([c, z, s], -1), torch.stack([z, o, z], -1), torch.stack([-s, z, c], -1)], -2)


def rot_x(angle: float | Tensor) -> Tensor:
    """Rotation ``[..., 3, 3]`` by ``angle`` (radians) about the x axis."""
    a = torch.as_tensor(angle, dtype=torch.float32)
    c, s = torch.cos(a), torch.sin(a)
    z, o = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([torch.stack([o, z, z], -1), torch.stack([z, c, -s], -1), torch.stack([z, s, c], -1)], -2)


def rot_z(angle: float | Tensor) -> Tensor:
    """Rotation ``[..., 3, 3]`` by ``angle`` (radians) about the z axis."""
    a = torch.as_tensor(angle, dtype=torch.float32)
    c, s = torch.cos(a), torch.sin(a)
    z, o = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1), torch.stack([z, z, o], -1)], -2)


def bezier(path: Tensor, t: Tensor) -> Tensor:
    """Cubic Bézier offsets ``[..., 3]`` with control points ``(0, path[...,0,:], path[...,1,:], path[...,2,:])``.

    ``path`` [..., 3, 3], ``t`` broadcastable to ``path.shape[:-2]``.
    """
    t = t[..., None]
    u = 1 - t
    return 3 * u * u * t * path[..., 0, :] + 3 * u * t * t * path[..., 1, :] + t**3 * path[..., 2, :]


def bounding_radius(kind: Tensor, size: Tensor) -> Tensor:
    """Radius ``[P]`` of a sphere around each local primitive's centre that contains it."""
    ell = size.max(-1).values
    box = size.norm(dim=-1)
    cone = torch.sqrt(size[..., 1] ** 2 + torch.maximum(size[..., 0], size[..., 2]) ** 2)
    return torch.where(kind == KIND_ELLIPSOID, ell, torch.where(kind == KIND_BOX, box, cone))


@dataclass
class Scene:
    """One procedural world (see the module doc for every field's meaning). All tensors float32/int64."""

    family: str
    seed: int
    # objects [O]
    obj_pivot: Tensor  # [O, 3]
    obj_path: Tensor  # [O, 3, 3] Bézier control offsets P1..P3
    obj_yaw: Tensor  # [O] total yaw over t ∈ [0, 1] (radians)
    obj_moving: Tensor  # [O] bool
    # local primitives [P]
    prim_kind: Tensor  # [P] long
    prim_center: Tensor  # [P, 3]
    prim_rot: Tensor  # [P, 3, 3] local -> world
    prim_size: Tensor  # [P, 3]
    prim_mat: Tensor  # [P] long
    prim_obj: Tensor  # [P] long
    # planes [Q]
    plane: Tensor  # [Q, 4] (n, h)
    plane_mat: Tensor  # [Q]
    plane_obj: Tensor  # [Q]
    # rooms [B]
    room: Tensor  # [B, 6] (min, max)
    room_mat: Tensor  # [B, 3] floor, ceiling, wall
    room_obj: Tensor  # [B]
    # appearance
    materials: Tensor  # [M, MAT_DIM]
    sky: Tensor  # [SKY_DIM]
    light: Tensor  # [LIGHT_DIM]
    points: Tensor  # [L, POINT_DIM]
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ basics
    @property
    def n_objects(self) -> int:
        return int(self.obj_pivot.shape[0])

    @property
    def n_prims(self) -> int:
        return int(self.prim_kind.shape[0])

    @property
    def dynamic(self) -> bool:
        return bool(self.obj_moving.any())

    @property
    def device(self) -> torch.device:
        return self.prim_center.device

    def to(self, device: torch.device | str) -> Scene:
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in kw.items():
            if isinstance(v, Tensor):
                kw[k] = v.to(device)
        return Scene(**kw)

    def tensors(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), Tensor)}

    # ------------------------------------------------------------------ motion
    def object_offset(self, t: float | Tensor) -> Tensor:
        """Translation ``[..., O, 3]`` of every object at time(s) ``t`` [...] (zero for static objects)."""
        t = torch.as_tensor(t, dtype=torch.float32, device=self.device)
        off = bezier(self.obj_path, t[..., None])
        return off * self.obj_moving[:, None]

    def object_positions(self, t: float | Tensor) -> Tensor:
        """World position ``[..., O, 3]`` of every object's pivot at time(s) ``t``."""
        return self.obj_pivot + self.object_offset(t)

    def prims_at(self, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """Centres ``[..., P, 3]`` and rotations ``[..., P, 3, 3]`` of the local primitives at time(s) ``t``."""
        t = torch.as_tensor(t, dtype=torch.float32, device=self.device)
        return prims_at(self.prim_center, self.prim_rot, self.prim_obj, self.obj_pivot, self.obj_path,
                        self.obj_yaw * self.obj_moving, self.obj_moving, t)

    # ------------------------------------------------------------------ free space
    def prim_contains(self, points: Tensor, t: float | Tensor = 0.0, margin: float = 0.0) -> Tensor:
        """``[N, P]``: whether point n lies inside (or within ``margin`` of) local primitive p at time
        ``t`` (scalar or ``[N]``). Cones are tested by their bounding cylinder (conservative)."""
        points = points.to(self.device, torch.float32)
        t = torch.as_tensor(t, dtype=torch.float32, device=self.device)
        if t.dim() == 0:
            t = t.expand(points.shape[0])
        center, rot = self.prims_at(t)  # [N, P, 3], [N, P, 3, 3]
        q = ((points[:, None, :] - center)[..., None, :] @ rot)[..., 0, :]  # local coords [N, P, 3]
        size = self.prim_size
        kind = self.prim_kind
        ell = ((q / (size + margin)) ** 2).sum(-1) < 1
        box = (q.abs() < size + margin).all(-1)
        rmax = torch.maximum(size[:, 0], size[:, 2])
        cone = (q[..., 1].abs() < size[:, 1] + margin) & (q[..., [0, 2]].norm(dim=-1) < rmax + margin)
        return torch.where(kind == KIND_ELLIPSOID, ell, torch.where(kind == KIND_BOX, box, cone))

    def colliding_objects(self, points: Tensor, t: float | Tensor = 0.0, margin: float = 0.0) -> set[int]:
        """Indices of the objects whose primitives contain any of ``points`` [N, 3] (see :meth:`prim_contains`)."""
        hit = self.prim_contains(points, t, margin).any(0)
        return set(self.prim_obj[hit].tolist())

    def inside(self, points: Tensor, t: float | Tensor = 0.0, margin: float = 0.0) -> Tensor:
        """Whether ``points`` [N, 3] lie inside (or within ``margin`` of) any solid at time ``t``.

        Solid = local primitives, the far side of planes, and (indoor) everything outside the room
        union shrunk by ``margin``. ``t`` is a scalar or ``[N]`` (one time per point).
        """
        points = points.to(self.device, torch.float32)
        solid = self.prim_contains(points, t, margin).any(-1)
        if self.plane.shape[0]:
            solid |= ((points @ self.plane[:, :3].T) - self.plane[:, 3] < margin).any(-1)
        if self.room.shape[0]:
            lo, hi = self.room[:, :3] + margin, self.room[:, 3:] - margin
            in_room = ((points[:, None] > lo) & (points[:, None] < hi)).all(-1).any(-1)
            solid |= ~in_room
        return solid


def prims_at(center: Tensor, rot: Tensor, obj: Tensor, pivot: Tensor, path: Tensor, yaw: Tensor,
             moving: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Move primitives with their objects. Shapes: ``center`` [..., P, 3], ``rot`` [..., P, 3, 3],
    ``obj`` [..., P] (object index), ``pivot`` [..., O, 3], ``path`` [..., O, 3, 3], ``yaw`` [..., O],
    ``moving`` [..., O], ``t`` [...]. Returns centres [..., P, 3] and rotations [..., P, 3, 3]."""
    off = bezier(path, t[..., None]) * moving[..., None]  # [..., O, 3]
    ang = yaw * t[..., None]  # [..., O]
    R = rot_y(ang)  # [..., O, 3, 3]
    obj_e = obj.expand(*t.shape, obj.shape[-1])
    gather3 = obj_e[..., None].expand(*obj_e.shape, 3)
    piv = torch.gather(pivot.expand(*t.shape, *pivot.shape[-2:]), -2, gather3)
    off_p = torch.gather(off, -2, gather3)
    Rp = torch.gather(R, -3, obj_e[..., None, None].expand(*obj_e.shape, 3, 3))
    new_c = piv + (Rp @ (center - piv)[..., None])[..., 0] + off_p
    new_r = Rp @ rot
    return new_c, new_r


# ---------------------------------------------------------------------- building scenes
class SceneBuilder:
    """Accumulates objects, primitives and materials, then freezes them into a :class:`Scene`."""

    def __init__(self, family: str, seed: int) -> None:
        self.family, self.seed = family, seed
        self.objects: list[dict] = []
        self.prims: list[dict] = []
        self.planes: list[dict] = []
        self.rooms: list[dict] = []
        self.materials: list[list[float]] = []
        self.point_lights: list[list[float]] = []
        self.sky = [0.0] * SKY_DIM
        self.light = [0.0] * LIGHT_DIM

    def material(self, col_a: Sequence[float], col_b: Sequence[float] | None = None, pattern: int = 0,
                 freq: float = 1.0, noise: float = 0.0, noise_freq: float = 1.0,
                 direction: Sequence[float] = (0.0, 1.0, 0.0), param: float = 0.1, phase: float = 0.0,
                 emission: float = 0.0, specular: float = 0.0, shininess: float = 0.0, texture: int = 0) -> int:
        """Add a material (see :mod:`lyra.world.textures` for the meaning); returns its index."""
        col_b = col_a if col_b is None else col_b
        d = torch.nn.functional.normalize(torch.tensor(direction, dtype=torch.float32), dim=0).tolist()
        row = [*col_a, *col_b, float(pattern), freq, noise, noise_freq, *d, param, phase, emission, specular,
               shininess, float(texture)]
        assert len(row) == MAT_DIM
        self.materials.append([float(v) for v in row])
        return len(self.materials) - 1

    def new_object(self, pivot: Sequence[float] = (0.0, 0.0, 0.0)) -> int:
        self.objects.append({"pivot": list(pivot), "path": [[0.0] * 3] * 3, "yaw": 0.0, "moving": False})
        return len(self.objects) - 1

    def set_motion(self, obj: int, path: Sequence[Sequence[float]], yaw: float = 0.0) -> None:
        self.objects[obj].update(path=[list(p) for p in path], yaw=float(yaw), moving=True)

    def _prim(self, kind: int, obj: int, center, size, rot, mat: int) -> int:
        rot = torch.eye(3) if rot is None else torch.as_tensor(rot, dtype=torch.float32)
        self.prims.append({"kind": kind, "obj": obj, "center": [float(v) for v in center],
                           "size": [float(v) for v in size], "rot": rot, "mat": mat})
        return len(self.prims) - 1

    def ellipsoid(self, obj: int, center, radii, mat: int, rot=None) -> int:
        return self._prim(KIND_ELLIPSOID, obj, center, radii, rot, mat)

    def box(self, obj: int, center, half, mat: int, rot=None) -> int:
        return self._prim(KIND_BOX, obj, center, half, rot, mat)

    def cone(self, obj: int, center, r_bottom: float, half_height: float, r_top: float, mat: int, rot=None) -> int:
        """A capped cone (cylinder when ``r_bottom == r_top``) along local y; bottom at local +y."""
        return self._prim(KIND_CONE, obj, center, (r_bottom, half_height, r_top), rot, mat)

    def plane(self, normal, offset: float, mat: int) -> int:
        obj = self.new_object()
        self.planes.append({"n": list(normal), "h": offset, "mat": mat, "obj": obj})
        return obj

    def room(self, lo, hi, floor_mat: int, ceiling_mat: int, wall_mat: int) -> int:
        obj = self.new_object()
        self.rooms.append({"box": [*lo, *hi], "mat": [floor_mat, ceiling_mat, wall_mat], "obj": obj})
        return obj

    def point_light(self, pos, color, radius: float, region_lo, region_hi) -> None:
        self.point_lights.append([*pos, *color, radius, *region_lo, *region_hi])

    def remove_objects(self, objs: set[int]) -> None:
        """Drop every primitive of the given objects (the object slots stay, unused)."""
        self.prims = [p for p in self.prims if p["obj"] not in objs]

    def build(self, **meta) -> Scene:
        f32 = torch.float32
        O, P = len(self.objects), len(self.prims)
        prim_rot = torch.stack([p["rot"] for p in self.prims]) if P else torch.zeros(0, 3, 3)
        return Scene(
            family=self.family,
            seed=self.seed,
            obj_pivot=torch.tensor([o["pivot"] for o in self.objects], dtype=f32).reshape(O, 3),
            obj_path=torch.tensor([o["path"] for o in self.objects], dtype=f32).reshape(O, 3, 3),
            obj_yaw=torch.tensor([o["yaw"] for o in self.objects], dtype=f32).reshape(O),
            obj_moving=torch.tensor([o["moving"] for o in self.objects], dtype=torch.bool).reshape(O),
            prim_kind=torch.tensor([p["kind"] for p in self.prims], dtype=torch.long).reshape(P),
            prim_center=torch.tensor([p["center"] for p in self.prims], dtype=f32).reshape(P, 3),
            prim_rot=prim_rot.to(f32),
            prim_size=torch.tensor([p["size"] for p in self.prims], dtype=f32).reshape(P, 3),
            prim_mat=torch.tensor([p["mat"] for p in self.prims], dtype=torch.long).reshape(P),
            prim_obj=torch.tensor([p["obj"] for p in self.prims], dtype=torch.long).reshape(P),
            plane=torch.tensor([[*p["n"], p["h"]] for p in self.planes], dtype=f32).reshape(-1, 4),
            plane_mat=torch.tensor([p["mat"] for p in self.planes], dtype=torch.long).reshape(-1),
            plane_obj=torch.tensor([p["obj"] for p in self.planes], dtype=torch.long).reshape(-1),
            room=torch.tensor([r["box"] for r in self.rooms], dtype=f32).reshape(-1, 6),
            room_mat=torch.tensor([r["mat"] for r in self.rooms], dtype=torch.long).reshape(-1, 3),
            room_obj=torch.tensor([r["obj"] for r in self.rooms], dtype=torch.long).reshape(-1),
            materials=torch.tensor(self.materials, dtype=f32).reshape(-1, MAT_DIM),
            sky=torch.tensor(self.sky, dtype=f32),
            light=torch.tensor([*self.light, *[0.0] * (LIGHT_DIM - len(self.light))], dtype=f32),
            points=torch.tensor(self.point_lights, dtype=f32).reshape(-1, POINT_DIM),
            meta=dict(meta),
        )


# ---------------------------------------------------------------------- batches of scenes
#: Coordinate of the degenerate, far-away boxes that pad room lists (they never contain a ray origin).
ROOM_PAD = 1e9

#: Fill values for padding each per-element field when scenes of different sizes are stacked.
_PAD = {
    "obj_pivot": 0.0, "obj_path": 0.0, "obj_yaw": 0.0, "obj_moving": False,
    "prim_kind": -1, "prim_center": 0.0, "prim_rot": 0.0, "prim_size": 1.0, "prim_mat": 0, "prim_obj": 0,
    "plane": 0.0, "plane_mat": -1, "plane_obj": 0,
    "room": 1e9, "room_mat": 0, "room_obj": 0,
    "materials": 0.0, "points": 0.0,
}


@dataclass
class SceneBatch:
    """Several scenes stacked along a leading dimension ``S`` (padded; same field names as
    :class:`Scene`). Padding primitives have kind -1, padding planes material -1, padding rooms are
    degenerate boxes at ``ROOM_PAD`` (never contain anything), padding lights have zero colour."""

    tensors: dict[str, Tensor]
    families: list[str]
    seeds: list[int]
    style: str = "classic"

    @classmethod
    def pack(cls, scenes: Sequence[Scene], device: torch.device | str | None = None) -> SceneBatch:
        styles = {s.meta.get("style", "classic") for s in scenes}
        if len(styles) > 1:
            raise ValueError(f"SceneBatch.pack: scenes of several styles {sorted(styles)} cannot share a render call")
        out: dict[str, Tensor] = {}
        for name in scenes[0].tensors():
            vals = [getattr(s, name) for s in scenes]
            if name in _PAD:
                n = max(v.shape[0] for v in vals)
                padded = []
                for v in vals:
                    if v.shape[0] < n:
                        pad = torch.full((n - v.shape[0], *v.shape[1:]), _PAD[name], dtype=v.dtype, device=v.device)
                        v = torch.cat([v, pad], 0)
                    padded.append(v)
                vals = padded
            t = torch.stack(vals, 0)
            out[name] = t.to(device) if device is not None else t
        return cls(out, [s.family for s in scenes], [s.seed for s in scenes], styles.pop())

    def __getattr__(self, name: str) -> Tensor:
        try:
            return self.__dict__["tensors"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def device(self) -> torch.device:
        return self.tensors["prim_center"].device

    @property
    def n_scenes(self) -> int:
        return len(self.families)


def light_basis(sun_dir: Tensor) -> tuple[Tensor, Tensor]:
    """Two unit vectors ``u, v`` [..., 3] spanning the plane perpendicular to ``sun_dir`` [..., 3]."""
    ref = torch.tensor([1.0, 0.0, 0.0], device=sun_dir.device).expand_as(sun_dir)
    alt = torch.tensor([0.0, 0.0, 1.0], device=sun_dir.device).expand_as(sun_dir)
    ref = torch.where(((sun_dir * ref).sum(-1, keepdim=True).abs() > 0.9), alt, ref)
    u = torch.nn.functional.normalize(torch.linalg.cross(sun_dir, ref, dim=-1), dim=-1)
    v = torch.linalg.cross(sun_dir, u, dim=-1)
    return u, v

