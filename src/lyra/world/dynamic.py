"""Dynamic worlds: give a few objects in view smooth motion paths over ``t ∈ [0, 1]``.

Motion model (see :mod:`lyra.world.scene`): each moving object is translated along a cubic Bézier
curve from its rest position (control offsets ``0, P1, P2, P3``) and turned about the vertical axis
through its pivot by ``yaw·t``. Ground objects slide or hop (``P1``/``P2`` lifted, ``P3`` on the
ground); displacements are 0.4–2 m, so the motion is visible but objects stay in the scene.
"""

from __future__ import annotations

import math

import torch

from lyra.world import textures as T
from lyra.world.families import CameraProposal, Rng
from lyra.world.scene import SceneBuilder, bezier, bounding_radius

MAX_RADIUS = 1.6  # objects bigger than this (buildings, hills) never move


def _in_view(cam: CameraProposal, p: tuple[float, float, float], max_angle: float, dist: tuple[float, float]) -> bool:
    f = cam.forward()
    v = [p[k] - cam.eye[k] for k in range(3)]
    d = math.sqrt(sum(c * c for c in v))
    if not dist[0] < d < dist[1]:
        return False
    cosang = sum(v[k] * f[k] for k in range(3)) / max(d, 1e-9)
    return cosang > math.cos(max_angle)


def _path_ok(b: SceneBuilder, pivot, path) -> bool:
    """Indoor: the pivot stays inside some room (shrunk by 0.4 m) along the whole path."""
    if not b.rooms:
        return True
    ts = torch.linspace(0, 1, 9)
    pts = torch.tensor(pivot) + bezier(torch.tensor(path, dtype=torch.float32), ts)
    boxes = torch.tensor([r["box"] for r in b.rooms])
    lo, hi = boxes[:, :3] + 0.4, boxes[:, 3:] - 0.4
    xz = [0, 2]
    inside = ((pts[:, None, xz] > lo[None, :, xz]) & (pts[:, None, xz] < hi[None, :, xz])).all(-1).any(-1)
    return bool(inside.all())


def add_motion(b: SceneBuilder, rng: Rng, cam: CameraProposal, max_objects: int = 3) -> list[int]:
    """Make 1..``max_objects`` objects in view move; add a bouncing ball if none fits. Returns their ids."""
    prim_objs: dict[int, list[dict]] = {}
    for p in b.prims:
        prim_objs.setdefault(p["obj"], []).append(p)
    candidates = []
    for o, prims in prim_objs.items():
        kinds = torch.tensor([p["kind"] for p in prims])
        sizes = torch.tensor([p["size"] for p in prims])
        centers = torch.tensor([p["center"] for p in prims])
        radius = float((bounding_radius(kinds, sizes) + (centers - centers.mean(0)).norm(dim=-1)).max())
        c = tuple(centers.mean(0).tolist())
        if radius < MAX_RADIUS and _in_view(cam, c, math.radians(32), (1.8, 14.0)):
            candidates.append(o)
    n = rng.randint(1, max_objects)
    chosen: list[int] = []
    while candidates and len(chosen) < n:
        chosen.append(candidates.pop(rng.randint(0, len(candidates) - 1)))
    if not chosen:
        chosen.append(_add_ball(b, rng, cam))
    moved = []
    for o in chosen:
        pivot = b.objects[o]["pivot"]
        for _ in range(10):
            length = rng.uniform(0.4, 2.0)
            a = rng.uniform(0, 2 * math.pi)
            dx, dz = length * math.cos(a), length * math.sin(a)
            hop = -rng.uniform(0.2, 0.8) if rng.chance(0.3) else 0.0
            w1, w2 = rng.uniform(0.2, 0.45), rng.uniform(0.55, 0.8)
            side = rng.uniform(-0.3, 0.3) * length
            path = [[w1 * dx - side * math.sin(a), hop, w1 * dz + side * math.cos(a)],
                    [w2 * dx + side * math.sin(a), hop, w2 * dz - side * math.cos(a)],
                    [dx, 0.0, dz]]
            if _path_ok(b, pivot, path):
                b.set_motion(o, path, yaw=rng.uniform(-1.5, 1.5))
                moved.append(o)
                break
    if not moved:  # nothing could move safely: a ball rolling towards the camera's side
        o = _add_ball(b, rng, cam)
        b.set_motion(o, [[0.2, -0.3, 0.0], [0.4, -0.3, 0.0], [0.6, 0.0, 0.0]], yaw=1.0)
        moved.append(o)
    return moved


def _add_ball(b: SceneBuilder, rng: Rng, cam: CameraProposal) -> int:
    f = cam.forward()
    d = rng.uniform(2.5, 5.0)
    side = rng.uniform(-0.8, 0.8)
    x = cam.eye[0] + d * f[0] + side * f[2]
    z = cam.eye[2] + d * f[2] - side * f[0]
    r = rng.uniform(0.2, 0.45)
    o = b.new_object((x, 0.0, z))
    m = b.material(rng.hsv((0, 1), (0.6, 0.9), (0.6, 0.95)), rng.hsv((0, 1), (0.6, 0.9), (0.3, 0.9)), T.PAT_STRIPES,
                   rng.uniform(2, 4), 0.05, 2.0, (rng.uniform(-1, 1), 1, rng.uniform(-1, 1)), phase=rng.uniform(0, 10))
    b.ellipsoid(o, (x, -r - 0.01, z), (r, r, r), m)
    return o
