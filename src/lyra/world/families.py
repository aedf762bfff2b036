"""World families: seeded generators of indoor and outdoor scenes around a proposed input camera.

Each generator draws, from one :class:`Rng`, an input camera pose first (eye, yaw, pitch) and then
builds the world around it, so that the view always holds content at several depths:

* ``indoor``: a main room (the camera stands in it) with doorways to 1–3 further rooms (one behind
  the far wall, others beside); furniture built from boxes, cylinders, cones and ellipsoids (tables,
  chairs, shelves, sofas, lamps, plants, pillars, rugs, paintings, balls, crates), a focus object near
  the optical axis; a key light casting shadows plus one point light per room.
* ``outdoor``: ground plane, hills (buried ellipsoids), distant mountains (cones with snowy tops and
  haze), sky with sun and clouds; trees (deciduous, pines), rocks, bushes, buildings with windows or
  bricks and flat or gabled roofs, walls, pillars, sculptures, lamp posts; a focus object ahead.

World -y is up (see :mod:`lyra.world.scene`). All randomness comes from the ``Rng`` (a CPU
``torch.Generator``), so a seed gives the same world on every machine.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lyra.world import textures as T
from lyra.world.scene import SceneBuilder, rot_x, rot_y, rot_z

FAMILIES = ("indoor", "outdoor")


class Rng:
    """Scalar random draws from a CPU ``torch.Generator`` (reproducible on every platform)."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(int(seed))

    def uniform(self, a: float = 0.0, b: float = 1.0) -> float:
        return a + (b - a) * float(torch.rand((), generator=self.g, dtype=torch.float64))

    def loguniform(self, a: float, b: float) -> float:
        return math.exp(self.uniform(math.log(a), math.log(b)))

    def randint(self, a: int, b: int) -> int:
        """Integer in ``[a, b]`` (inclusive)."""
        return int(torch.randint(a, b + 1, (), generator=self.g))

    def chance(self, p: float) -> bool:
        return self.uniform() < p

    def choice(self, seq: Sequence, weights: Sequence[float] | None = None):
        if weights is None:
            return seq[self.randint(0, len(seq) - 1)]
        w = torch.tensor(weights, dtype=torch.float64)
        return seq[int(torch.multinomial(w, 1, generator=self.g))]

    def hsv(self, h: tuple[float, float], s: tuple[float, float], v: tuple[float, float]) -> tuple[float, ...]:
        hue = self.uniform(*h) % 1.0
        return colorsys.hsv_to_rgb(hue, self.uniform(*s), self.uniform(*v))

    def jitter(self, rgb: Sequence[float], amount: float = 0.08) -> tuple[float, ...]:
        return tuple(min(1.0, max(0.0, c * (1 + self.uniform(-amount, amount)))) for c in rgb)

    def seed(self) -> int:
        return int(torch.randint(0, 2**31 - 1, (), generator=self.g))


@dataclass
class CameraProposal:
    """Input camera pose: ``eye`` (world), ``yaw`` (radians, 0 = looking along +z, positive turns
    towards +x) and ``pitch`` (radians, positive looks up)."""

    eye: tuple[float, float, float]
    yaw: float
    pitch: float

    def forward(self) -> tuple[float, float, float]:
        cp = math.cos(self.pitch)
        return (math.sin(self.yaw) * cp, -math.sin(self.pitch), math.cos(self.yaw) * cp)


class Footprints:
    """Occupied discs on the ground (x, z, radius) to keep objects from overlapping."""

    def __init__(self) -> None:
        self.discs: list[tuple[float, float, float]] = []

    def free(self, x: float, z: float, r: float, gap: float = 0.1) -> bool:
        return all((x - a) ** 2 + (z - b) ** 2 > (r + c + gap) ** 2 for a, b, c in self.discs)

    def add(self, x: float, z: float, r: float) -> None:
        self.discs.append((x, z, r))


# ---------------------------------------------------------------------- materials
def _mat_phase(rng: Rng) -> float:
    return rng.uniform(0, 10)


def mat_noise(b: SceneBuilder, rng: Rng, col, col2=None, freq=1.0, noise=0.3, nfreq=2.0) -> int:
    col2 = col2 if col2 is not None else rng.jitter(col, 0.35)
    return b.material(col, col2, T.PAT_NOISE, freq, noise, nfreq, phase=_mat_phase(rng))


def mat_random_surface(b: SceneBuilder, rng: Rng, base, vivid: bool = True) -> int:
    """A random patterned material around colour ``base``."""
    other = rng.hsv((0, 1), (0.2, 0.8), (0.3, 0.95)) if vivid else rng.jitter(base, 0.5)
    pat = rng.choice([T.PAT_NOISE, T.PAT_STRIPES, T.PAT_CHECKS, T.PAT_GRADIENT, T.PAT_MARBLE, T.PAT_BRICKS,
                      T.PAT_PLANKS], [3, 2, 1.5, 1, 1.5, 1, 1])
    freq = {T.PAT_NOISE: rng.uniform(0.5, 3), T.PAT_STRIPES: rng.uniform(1, 6), T.PAT_CHECKS: rng.uniform(1, 4),
            T.PAT_GRADIENT: rng.uniform(0.3, 1.0), T.PAT_MARBLE: rng.uniform(0.5, 2),
            T.PAT_BRICKS: rng.uniform(6, 12), T.PAT_PLANKS: rng.uniform(4, 10)}[pat]
    direction = (rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1))
    if pat in (T.PAT_BRICKS, T.PAT_PLANKS):
        other = rng.jitter(base, 0.4) if pat == T.PAT_PLANKS else (0.75, 0.73, 0.7)
    return b.material(base, other, pat, freq, rng.uniform(0.05, 0.3), rng.uniform(1, 6), direction,
                      param=rng.uniform(0.05, 0.12), phase=_mat_phase(rng))


# ---------------------------------------------------------------------- outdoor
def _sky_and_light(b: SceneBuilder, rng: Rng, eye, forward, outdoor: bool) -> None:
    style = rng.choice(["clear", "hazy", "evening", "overcast"], [4, 2, 1.5, 1.5])
    if style == "clear":
        zen, hor = rng.hsv((0.57, 0.63), (0.5, 0.75), (0.6, 0.9)), rng.hsv((0.55, 0.62), (0.1, 0.3), (0.85, 1.0))
        sun_col, cover = (1.0, 0.95, 0.85), rng.uniform(0.0, 0.35)
    elif style == "hazy":
        zen, hor = rng.hsv((0.55, 0.62), (0.3, 0.5), (0.65, 0.85)), rng.hsv((0.1, 0.6), (0.05, 0.15), (0.85, 0.95))
        sun_col, cover = (0.95, 0.9, 0.8), rng.uniform(0.2, 0.5)
    elif style == "evening":
        zen, hor = rng.hsv((0.6, 0.7), (0.4, 0.7), (0.35, 0.6)), rng.hsv((0.03, 0.1), (0.4, 0.7), (0.85, 1.0))
        sun_col, cover = (1.0, 0.7, 0.45), rng.uniform(0.1, 0.5)
    else:
        zen, hor = rng.hsv((0.55, 0.65), (0.05, 0.15), (0.6, 0.8)), rng.hsv((0.55, 0.65), (0.02, 0.08), (0.8, 0.92))
        sun_col, cover = (0.6, 0.6, 0.62), rng.uniform(0.5, 0.8)
    cloud = (0.97, 0.96, 0.95) if style != "evening" else (1.0, 0.8, 0.7)
    b.sky = [*zen, *hor, *cloud, cover, rng.uniform(0.03, 0.12), 0.6, 0.02]
    # sun: elevation and azimuth; mostly from the side or behind the camera so shadows show
    elev = math.radians(rng.uniform(15, 35) if style == "evening" else rng.uniform(25, 70))
    if not outdoor:
        elev = math.radians(rng.uniform(55, 80))
    az = math.atan2(forward[0], forward[2]) + math.pi + rng.uniform(-2.2, 2.2)
    sun = (math.cos(elev) * math.sin(az), -math.sin(elev), math.cos(elev) * math.cos(az))
    amb_sky = tuple(0.55 * c for c in zen) if outdoor else rng.jitter((0.42, 0.42, 0.45), 0.1)
    amb_ground = tuple(0.35 * c for c in hor) if outdoor else rng.jitter((0.25, 0.23, 0.22), 0.1)
    strength = 0.9 if style != "overcast" else 0.45
    if not outdoor:
        strength = rng.uniform(0.35, 0.6)
    sun_c = tuple(strength * c for c in sun_col)
    haze_dist = rng.uniform(120, 400) if outdoor else float("inf")
    if outdoor and style == "hazy":
        haze_dist *= 0.5
    focus = tuple(e + 15.0 * f for e, f in zip(eye, forward, strict=True))
    extent = 45.0 if outdoor else 12.0
    b.light = [*sun, *sun_c, *amb_sky, *amb_ground, *hor, *eye, haze_dist, 15.0,
               focus[0], 0.0, focus[2], extent, 120.0 if outdoor else 30.0]


def _place(rng: Rng, fp: Footprints, eye, yaw: float, r: float, dist: tuple[float, float],
           spread: float, tries: int = 30, min_cam: float = 1.2) -> tuple[float, float] | None:
    """A free ground spot at distance in ``dist`` and within ``±spread`` radians of ``yaw``."""
    for _ in range(tries):
        d = rng.loguniform(*dist)
        a = yaw + rng.uniform(-spread, spread)
        x, z = eye[0] + d * math.sin(a), eye[2] + d * math.cos(a)
        if (x - eye[0]) ** 2 + (z - eye[2]) ** 2 < (r + min_cam) ** 2:
            continue
        if fp.free(x, z, r):
            fp.add(x, z, r)
            return x, z
    return None


def tree(b: SceneBuilder, rng: Rng, x: float, z: float, s: float) -> int:
    o = b.new_object((x, 0.0, z))
    bark = mat_noise(b, rng, rng.hsv((0.05, 0.1), (0.3, 0.6), (0.2, 0.4)), freq=3, noise=0.3, nfreq=4)
    leaves = b.material(rng.hsv((0.2, 0.38), (0.45, 0.8), (0.2, 0.5)), rng.hsv((0.15, 0.35), (0.4, 0.8), (0.3, 0.6)),
                        T.PAT_NOISE, rng.uniform(1.0, 2.5), 0.25, 5.0, phase=_mat_phase(rng))
    if rng.chance(0.4):  # pine
        trunk_h = rng.uniform(0.6, 1.2) * s
        b.cone(o, (x, -trunk_h / 2, z), 0.15 * s, trunk_h / 2 + 0.05, 0.12 * s, bark)
        y = trunk_h
        r = rng.uniform(1.0, 1.6) * s
        for _ in range(rng.randint(2, 3)):
            h = rng.uniform(1.4, 2.2) * s
            b.cone(o, (x, -(y + h / 2), z), r, h / 2, 0.05 * r, leaves, rot=rot_y(rng.uniform(0, 6.3)))
            y += 0.55 * h
            r *= 0.72
    else:
        trunk_h = rng.uniform(1.5, 3.0) * s
        b.cone(o, (x, -trunk_h / 2, z), 0.2 * s, trunk_h / 2, 0.14 * s, bark)
        for k in range(rng.randint(1, 3)):
            rr = rng.uniform(0.9, 1.6) * s
            off = (0, 0, 0)
            if k:
                off = (rng.uniform(-0.6, 0.6) * s, rng.uniform(-0.3, 0.4) * s, rng.uniform(-0.6, 0.6) * s)
            b.ellipsoid(o, (x + off[0], -(trunk_h + 0.6 * rr) + off[1], z + off[2]),
                        (rr, rr * rng.uniform(0.7, 1.0), rr * rng.uniform(0.85, 1.1)), leaves,
                        rot=rot_y(rng.uniform(0, 6.3)))
    return o


def rock(b: SceneBuilder, rng: Rng, x: float, z: float, s: float) -> int:
    o = b.new_object((x, 0.0, z))
    grey = rng.uniform(0.3, 0.6)
    col = rng.jitter((grey, grey * 0.97, grey * 0.92), 0.1)
    mat = b.material(col, rng.jitter(col, 0.4), rng.choice([T.PAT_NOISE, T.PAT_MARBLE]), rng.uniform(1, 3), 0.3,
                     rng.uniform(2, 6), (rng.uniform(-1, 1), 1, rng.uniform(-1, 1)), phase=_mat_phase(rng))
    for k in range(rng.randint(1, 3)):
        r = (rng.uniform(0.5, 1.0) * s, rng.uniform(0.35, 0.7) * s, rng.uniform(0.5, 1.1) * s)
        dx, dz = (rng.uniform(-0.8, 0.8) * s, rng.uniform(-0.8, 0.8) * s) if k else (0.0, 0.0)
        rot = rot_y(rng.uniform(0, 6.3)) @ rot_x(rng.uniform(-0.3, 0.3)) @ rot_z(rng.uniform(-0.3, 0.3))
        b.ellipsoid(o, (x + dx, -0.55 * r[1], z + dz), r, mat, rot=rot)
    return o


def bush(b: SceneBuilder, rng: Rng, x: float, z: float, s: float) -> int:
    o = b.new_object((x, 0.0, z))
    mat = b.material(rng.hsv((0.18, 0.4), (0.4, 0.8), (0.2, 0.45)), rng.hsv((0.15, 0.4), (0.3, 0.8), (0.3, 0.6)),
                     T.PAT_NOISE, 2.5, 0.3, 6.0, phase=_mat_phase(rng))
    for _ in range(rng.randint(1, 3)):
        r = rng.uniform(0.4, 0.9) * s
        b.ellipsoid(o, (x + rng.uniform(-0.5, 0.5) * s, -0.6 * r, z + rng.uniform(-0.5, 0.5) * s),
                    (r, 0.8 * r, r), mat)
    return o


def building(b: SceneBuilder, rng: Rng, x: float, z: float, s: float) -> int:
    o = b.new_object((x, 0.0, z))
    w, d, h = rng.uniform(2.5, 5) * s, rng.uniform(2.5, 5) * s, rng.uniform(3, 10) * s
    R = rot_y(rng.uniform(0, math.pi))
    wall = rng.hsv((0.0, 0.15), (0.05, 0.4), (0.45, 0.9))
    if rng.chance(0.5):
        mat = b.material(wall, rng.hsv((0.5, 0.65), (0.2, 0.5), (0.15, 0.35)), T.PAT_WINDOWS,
                         1 / rng.uniform(2.2, 3.5), 0.08, 3.0, param=rng.uniform(0.35, 0.6), phase=_mat_phase(rng))
    else:
        mat = b.material(rng.hsv((0.0, 0.08), (0.4, 0.7), (0.35, 0.6)), (0.78, 0.76, 0.72), T.PAT_BRICKS,
                         rng.uniform(10, 14), 0.1, 4.0, param=0.08, phase=_mat_phase(rng))
    b.box(o, (x, -h / 2, z), (w / 2, h / 2, d / 2), mat, rot=R)
    roof = b.material(rng.hsv((0.0, 0.08), (0.3, 0.7), (0.2, 0.45)), rng.hsv((0.0, 0.08), (0.3, 0.7), (0.1, 0.3)),
                      T.PAT_STRIPES, rng.uniform(3, 6), 0.1, 3.0, (0, 1, 0.4), phase=_mat_phase(rng))
    if rng.chance(0.55):  # gable: a square beam turned 45° about the building's long axis
        long_x = w >= d
        a = (d if long_x else w) / 2 / math.sqrt(2) * 1.08
        half = (w / 2 + 0.2, a, a) if long_x else (a, a, d / 2 + 0.2)
        turn = rot_x(math.pi / 4) if long_x else rot_z(math.pi / 4)
        b.box(o, (x, -h, z), half, roof, rot=R @ turn)
    else:
        b.box(o, (x, -h - 0.15, z), (w / 2 + 0.15, 0.15, d / 2 + 0.15), roof, rot=R)
    return o


def wall(b: SceneBuilder, rng: Rng, x: float, z: float, s: float) -> int:
    o = b.new_object((x, 0.0, z))
    length, h, t = rng.uniform(3, 8) * s, rng.uniform(0.8, 2.2), rng.uniform(0.2, 0.45)
    col = rng.hsv((0.0, 0.12), (0.1, 0.5), (0.35, 0.75))
    mat = b.material(col, (0.75, 0.73, 0.7), T.PAT_BRICKS, rng.uniform(6, 12), 0.15, 3.0, param=0.08,
                     phase=_mat_phase(rng))
    b.box(o, (x, -h / 2, z), (length / 2, h / 2, t / 2), mat, rot=rot_y(rng.uniform(0, math.pi)))
    return o


def pillar(b: SceneBuilder, rng: Rng, x: float, z: float, s: float) -> int:
    o = b.new_object((x, 0.0, z))
    h = rng.uniform(2, 5) * s
    mat = b.material(rng.hsv((0, 1), (0.0, 0.2), (0.6, 0.9)), rng.hsv((0, 1), (0.1, 0.5), (0.2, 0.5)),
                     T.PAT_MARBLE, rng.uniform(0.8, 2), 0.05, 3.0, (rng.uniform(-1, 1), 1, rng.uniform(-1, 1)),
                     phase=_mat_phase(rng))
    if rng.chance(0.5):
        r = rng.uniform(0.25, 0.5) * s
        b.cone(o, (x, -h / 2, z), r, h / 2, r * rng.uniform(0.7, 1.0), mat)
    else:
        r = rng.uniform(0.25, 0.5) * s
        b.box(o, (x, -h / 2, z), (r, h / 2, r), mat, rot=rot_y(rng.uniform(0, 1.6)))
    return o


def sculpture(b: SceneBuilder, rng: Rng, x: float, z: float, s: float) -> int:
    o = b.new_object((x, 0.0, z))
    ped_h, ped_w = rng.uniform(0.5, 1.2) * s, rng.uniform(0.4, 0.8) * s
    stone = mat_noise(b, rng, rng.jitter((0.6, 0.58, 0.55), 0.2), freq=2, noise=0.15, nfreq=3)
    b.box(o, (x, -ped_h / 2, z), (ped_w, ped_h / 2, ped_w), stone, rot=rot_y(rng.uniform(0, 1.6)))
    r = rng.uniform(0.4, 0.9) * s
    mat = mat_random_surface(b, rng, rng.hsv((0, 1), (0.4, 0.9), (0.4, 0.9)))
    if rng.chance(0.5):
        b.ellipsoid(o, (x, -ped_h - r, z), (r, r, r), mat, rot=rot_y(rng.uniform(0, 6.3)) @ rot_x(rng.uniform(0, 1)))
    else:
        R = rot_y(rng.uniform(0, 6.3)) @ rot_x(rng.uniform(0, 0.9)) @ rot_z(rng.uniform(0, 0.9))
        b.box(o, (x, -ped_h - r * 0.9, z), (0.6 * r, 0.6 * r, 0.6 * r), mat, rot=R)
    return o


def lamp_post(b: SceneBuilder, rng: Rng, x: float, z: float, s: float) -> int:
    o = b.new_object((x, 0.0, z))
    h = rng.uniform(2.5, 4.0)
    metal = mat_noise(b, rng, rng.jitter((0.15, 0.15, 0.17), 0.3), noise=0.1)
    b.cone(o, (x, -h / 2, z), 0.08, h / 2, 0.05, metal)
    glow = b.material((1.0, 0.95, 0.8), None, T.PAT_NOISE, 1.0, 0.0, 1.0, emission=0.6)
    b.ellipsoid(o, (x, -h - 0.2, z), (0.22, 0.22, 0.22), glow)
    return o


OUTDOOR_THINGS = {"tree": (tree, 1.4, 4.0), "rock": (rock, 0.9, 2.0), "bush": (bush, 0.8, 1.5),
                  "building": (building, 3.5, 1.5), "wall": (wall, 2.5, 1.0), "pillar": (pillar, 0.6, 1.0),
                  "sculpture": (sculpture, 0.9, 1.0), "lamp": (lamp_post, 0.4, 0.6)}


def outdoor(seed: int, rng: Rng) -> tuple[SceneBuilder, CameraProposal]:
    """An outdoor world and its input-camera proposal."""
    b = SceneBuilder("outdoor", seed)
    cam = CameraProposal((0.0, -rng.uniform(1.3, 2.6), 0.0), rng.uniform(0, 2 * math.pi),
                         math.radians(rng.uniform(-12, 3)))
    eye, fwd = cam.eye, cam.forward()
    _sky_and_light(b, rng, eye, fwd, outdoor=True)
    ground_kind = rng.choice(["grass", "dry", "sand", "snow", "paved"], [4, 2, 1.5, 1, 1.5])
    base = {"grass": rng.hsv((0.2, 0.33), (0.45, 0.75), (0.25, 0.45)),
            "dry": rng.hsv((0.1, 0.16), (0.35, 0.6), (0.35, 0.55)),
            "sand": rng.hsv((0.09, 0.13), (0.25, 0.45), (0.6, 0.8)),
            "snow": rng.hsv((0.55, 0.62), (0.02, 0.08), (0.8, 0.95)),
            "paved": rng.hsv((0.0, 0.1), (0.0, 0.15), (0.35, 0.55))}[ground_kind]
    if ground_kind == "paved":
        gm = b.material(base, rng.jitter(base, 0.3), T.PAT_CHECKS, rng.uniform(0.5, 1.2), 0.15, 2.0,
                        phase=_mat_phase(rng))
    else:
        gm = b.material(base, rng.jitter(base, 0.35), T.PAT_NOISE, rng.uniform(0.05, 0.2), 0.25,
                        rng.uniform(0.5, 2.0), phase=_mat_phase(rng))
    b.plane((0.0, -1.0, 0.0), 0.0, gm)
    fp = Footprints()
    # hills and mountains
    hill_mat = b.material(rng.jitter(base, 0.2), rng.jitter(base, 0.4), T.PAT_NOISE, 0.1, 0.2, 0.8,
                          phase=_mat_phase(rng))
    for _ in range(rng.randint(1, 5)):
        d, a = rng.uniform(25, 90), cam.yaw + rng.uniform(-1.2, 1.2)
        rx, rz, h = rng.uniform(8, 30), rng.uniform(8, 30), rng.uniform(1.5, 7)
        ry = max(rx, rz) * rng.uniform(0.35, 0.6)
        o = b.new_object()
        x, z = eye[0] + d * math.sin(a), eye[2] + d * math.cos(a)
        b.ellipsoid(o, (x, ry - h, z), (rx, ry, rz), hill_mat, rot=rot_y(rng.uniform(0, 3.2)))
        fp.add(x, z, math.sqrt(max(0.0, 1 - ((ry - h) / ry) ** 2)) * max(rx, rz))
    rock_col = rng.hsv((0.55, 0.7), (0.05, 0.25), (0.35, 0.6))
    mountain = b.material(rock_col, (0.95, 0.95, 0.97), T.PAT_GRADIENT, 1 / rng.uniform(50, 120), 0.25, 0.05,
                          (0, -1, 0), phase=_mat_phase(rng))
    for _ in range(rng.randint(2, 6)):
        d, a = rng.uniform(160, 320), cam.yaw + rng.uniform(-1.0, 1.0)
        x, z = eye[0] + d * math.sin(a), eye[2] + d * math.cos(a)
        hh = rng.uniform(25, 90)
        r0 = hh * rng.uniform(1.5, 3.0)
        o = b.new_object()
        b.cone(o, (x, -hh + 5, z), r0, hh, r0 * rng.uniform(0.0, 0.15), mountain, rot=rot_y(rng.uniform(0, 6.3)))
    # focus object ahead, then clutter at several depths
    names = list(OUTDOOR_THINGS)
    weights = [OUTDOOR_THINGS[n][2] for n in names]
    focus_kind = rng.choice(["tree", "rock", "building", "sculpture", "pillar", "wall"], [3, 2, 2, 2, 1, 1])
    fn, r, _ = OUTDOOR_THINGS[focus_kind]
    spot = _place(rng, fp, eye, cam.yaw, r, (5.0, 13.0), math.radians(8))
    if spot:
        fn(b, rng, spot[0], spot[1], rng.uniform(0.8, 1.2))
    for _ in range(rng.randint(8, 20)):
        kind = rng.choice(names, weights)
        fn, r, _ = OUTDOOR_THINGS[kind]
        s = rng.uniform(0.7, 1.3)
        spot = _place(rng, fp, eye, cam.yaw, r * s, (2.5, 45.0), math.radians(rng.choice([40, 70, 110])))
        if spot:
            fn(b, rng, spot[0], spot[1], s)
    return b, cam


# ---------------------------------------------------------------------- indoor
def _room_materials(b: SceneBuilder, rng: Rng) -> tuple[int, int, int]:
    floor_kind = rng.choice(["planks", "tiles", "carpet", "stone"], [3, 2, 2, 1])
    if floor_kind == "planks":
        col = rng.hsv((0.05, 0.1), (0.4, 0.7), (0.3, 0.6))
        floor = b.material(col, rng.jitter(col, 0.3), T.PAT_PLANKS, rng.uniform(5, 9), 0.15, 3.0, param=0.04,
                           phase=_mat_phase(rng))
    elif floor_kind == "tiles":
        c1 = rng.hsv((0, 1), (0.0, 0.3), (0.6, 0.9))
        c2 = rng.hsv((0, 1), (0.1, 0.5), (0.15, 0.5))
        floor = b.material(c1, c2, T.PAT_CHECKS, rng.uniform(1.2, 3), 0.05, 2.0, phase=_mat_phase(rng))
    elif floor_kind == "carpet":
        floor = mat_noise(b, rng, rng.hsv((0, 1), (0.2, 0.6), (0.2, 0.6)), freq=3, noise=0.2, nfreq=8)
    else:
        floor = b.material(rng.jitter((0.55, 0.53, 0.5), 0.2), (0.4, 0.39, 0.38), T.PAT_MARBLE, 0.8, 0.1, 2.0,
                           (1, 0, 0.3), phase=_mat_phase(rng))
    ceiling = mat_noise(b, rng, rng.jitter((0.85, 0.84, 0.8), 0.05), noise=0.05, nfreq=1.0)
    wall_kind = rng.choice(["plain", "stripes", "bricks", "panels"], [3, 2, 1, 1])
    wc = rng.hsv((0, 1), (0.05, 0.4), (0.55, 0.9))
    if wall_kind == "plain":
        wall = b.material(wc, rng.jitter(wc, 0.15), T.PAT_NOISE, rng.uniform(0.3, 1.0), 0.06, 3.0,
                          phase=_mat_phase(rng))
    elif wall_kind == "stripes":
        wall = b.material(wc, rng.jitter(wc, 0.3), T.PAT_STRIPES, rng.uniform(2, 6), 0.05, 2.0,
                          (rng.choice([1, 0]), 0, 1), phase=_mat_phase(rng))
    elif wall_kind == "bricks":
        wall = b.material(rng.hsv((0.0, 0.08), (0.4, 0.7), (0.35, 0.6)), (0.8, 0.78, 0.74), T.PAT_BRICKS,
                          rng.uniform(10, 14), 0.1, 4.0, param=0.08, phase=_mat_phase(rng))
    else:
        wall = b.material(wc, rng.jitter(wc, 0.25), T.PAT_CHECKS, rng.uniform(0.8, 1.6), 0.05, 2.0,
                          phase=_mat_phase(rng))
    return floor, ceiling, wall


def _furniture_mat(b: SceneBuilder, rng: Rng) -> int:
    if rng.chance(0.4):  # wood
        col = rng.hsv((0.05, 0.11), (0.35, 0.7), (0.2, 0.55))
        return b.material(col, rng.jitter(col, 0.35), T.PAT_STRIPES, rng.uniform(8, 20), 0.25, 6.0,
                          (1, rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2)), phase=_mat_phase(rng))
    return mat_random_surface(b, rng, rng.hsv((0, 1), (0.3, 0.85), (0.3, 0.9)))


def table(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    w, d, h = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0), rng.uniform(0.7, 0.8)
    m = _furniture_mat(b, rng)
    R = rot_y(yaw)
    b.box(o, (x, -h + 0.03, z), (w / 2, 0.03, d / 2), m, rot=R)
    for sx in (-1, 1):
        for sz in (-1, 1):
            off = R @ torch.tensor([sx * (w / 2 - 0.06), 0.0, sz * (d / 2 - 0.06)])
            b.box(o, (x + float(off[0]), -(h - 0.06) / 2, z + float(off[2])), (0.03, (h - 0.06) / 2, 0.03), m, rot=R)
    if rng.chance(0.6):  # something on the table
        r = rng.uniform(0.08, 0.18)
        b.cone(o, (x, -h - 0.06 - r, z), r * 0.7, r, r * rng.uniform(0.3, 1.0),
               mat_random_surface(b, rng, rng.hsv((0, 1), (0.5, 0.9), (0.5, 0.9))))
    return o, max(w, d) / 2 + 0.1


def chair(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    s, h = rng.uniform(0.4, 0.5), rng.uniform(0.42, 0.5)
    m = _furniture_mat(b, rng)
    R = rot_y(yaw)
    b.box(o, (x, -h, z), (s / 2, 0.03, s / 2), m, rot=R)
    back = R @ torch.tensor([0.0, 0.0, -s / 2 + 0.03])
    b.box(o, (x + float(back[0]), -h - 0.25, z + float(back[2])), (s / 2, 0.25, 0.03), m, rot=R)
    for sx in (-1, 1):
        for sz in (-1, 1):
            off = R @ torch.tensor([sx * (s / 2 - 0.04), 0.0, sz * (s / 2 - 0.04)])
            b.box(o, (x + float(off[0]), -h / 2, z + float(off[2])), (0.025, h / 2, 0.025), m, rot=R)
    return o, s * 0.75


def shelf(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    w, d, h = rng.uniform(0.6, 1.6), rng.uniform(0.3, 0.55), rng.uniform(0.8, min(2.2, room_h - 0.3))
    m = _furniture_mat(b, rng)
    b.box(o, (x, -h / 2, z), (w / 2, h / 2, d / 2), m, rot=rot_y(yaw))
    return o, math.hypot(w, d) / 2


def sofa(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    w, d = rng.uniform(1.4, 2.2), rng.uniform(0.8, 1.0)
    m = mat_noise(b, rng, rng.hsv((0, 1), (0.3, 0.8), (0.25, 0.7)), freq=4, noise=0.15, nfreq=10)
    R = rot_y(yaw)
    b.box(o, (x, -0.22, z), (w / 2, 0.22, d / 2), m, rot=R)
    back = R @ torch.tensor([0.0, 0.0, -d / 2 + 0.12])
    b.box(o, (x + float(back[0]), -0.55, z + float(back[2])), (w / 2, 0.33, 0.12), m, rot=R)
    for sx in (-1, 1):
        arm = R @ torch.tensor([sx * (w / 2 - 0.1), 0.0, 0.0])
        b.box(o, (x + float(arm[0]), -0.35, z + float(arm[2])), (0.1, 0.35, d / 2), m, rot=R)
    return o, math.hypot(w, d) / 2


def lamp(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    h = rng.uniform(1.2, 1.8)
    metal = mat_noise(b, rng, rng.jitter((0.2, 0.2, 0.22), 0.4), noise=0.1)
    b.cone(o, (x, -0.02, z), 0.18, 0.02, 0.18, metal)
    b.cone(o, (x, -h / 2, z), 0.025, h / 2, 0.025, metal)
    shade = b.material(rng.hsv((0.05, 0.15), (0.1, 0.5), (0.8, 1.0)), None, T.PAT_NOISE, 1.0, 0.05, 3.0,
                       emission=0.5)
    b.cone(o, (x, -h - 0.12, z), 0.25, 0.15, 0.14, shade)
    return o, 0.3


def plant(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    ph = rng.uniform(0.25, 0.5)
    pot = mat_random_surface(b, rng, rng.hsv((0.0, 0.1), (0.4, 0.8), (0.3, 0.7)))
    b.cone(o, (x, -ph / 2, z), 0.15, ph / 2, 0.22, pot)
    leaves = b.material(rng.hsv((0.22, 0.38), (0.5, 0.8), (0.2, 0.5)), rng.hsv((0.2, 0.35), (0.4, 0.8), (0.35, 0.6)),
                        T.PAT_NOISE, 4.0, 0.25, 10.0, phase=_mat_phase(rng))
    r = rng.uniform(0.3, 0.55)
    b.ellipsoid(o, (x, -ph - r * 0.9, z), (r * 0.8, r, r * 0.8), leaves, rot=rot_y(rng.uniform(0, 6.3)))
    return o, 0.4


def ball(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    r = rng.uniform(0.12, 0.4)
    m = b.material(rng.hsv((0, 1), (0.5, 0.9), (0.5, 0.95)), rng.hsv((0, 1), (0.5, 0.9), (0.3, 0.9)),
                   rng.choice([T.PAT_STRIPES, T.PAT_CHECKS, T.PAT_NOISE]), rng.uniform(2, 6) / r * 0.3, 0.05, 2.0,
                   (rng.uniform(-1, 1), 1, rng.uniform(-1, 1)), phase=_mat_phase(rng))
    b.ellipsoid(o, (x, -r, z), (r, r, r), m, rot=rot_y(rng.uniform(0, 6.3)) @ rot_x(rng.uniform(0, 3)))
    return o, r


def crates(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    m = _furniture_mat(b, rng)
    y = 0.0
    for _ in range(rng.randint(1, 3)):
        s = rng.uniform(0.2, 0.4)
        b.box(o, (x + rng.uniform(-0.05, 0.05), -(y + s), z + rng.uniform(-0.05, 0.05)), (s, s, s), m,
              rot=rot_y(yaw + rng.uniform(-0.4, 0.4)))
        y += 2 * s
    return o, 0.55


def column(b, rng, x, z, yaw, room_h):
    o = b.new_object((x, 0.0, z))
    r = rng.uniform(0.15, 0.3)
    m = b.material(rng.jitter((0.85, 0.84, 0.8), 0.1), rng.hsv((0, 1), (0.1, 0.4), (0.3, 0.6)), T.PAT_MARBLE,
                   rng.uniform(0.8, 2), 0.05, 3.0, (rng.uniform(-1, 1), 1, 0), phase=_mat_phase(rng))
    if rng.chance(0.5):
        b.cone(o, (x, -room_h / 2, z), r, room_h / 2 - 0.005, r, m)
    else:
        b.box(o, (x, -room_h / 2, z), (r, room_h / 2 - 0.005, r), m, rot=rot_y(yaw))
    return o, r * 1.5


def sculpture_in(b, rng, x, z, yaw, room_h):
    o, r = sculpture(b, rng, x, z, rng.uniform(0.6, 0.9)), 0.7
    return o, r


FURNITURE = {"table": (table, 3), "chair": (chair, 2), "shelf": (shelf, 2), "sofa": (sofa, 1.5),
             "lamp": (lamp, 1), "plant": (plant, 1.5), "ball": (ball, 1), "crates": (crates, 1.5),
             "column": (column, 0.7), "sculpture": (sculpture_in, 1)}


def _furnish(b: SceneBuilder, rng: Rng, fp: Footprints, lo, hi, n: int, avoid=None, wall_bias: float = 0.5) -> None:
    """Put ``n`` pieces of furniture in the room box ``lo``..``hi`` (floor at y = 0)."""
    names = list(FURNITURE)
    weights = [FURNITURE[k][1] for k in names]
    room_h = hi[1] - lo[1]
    for _ in range(n):
        kind = rng.choice(names, weights)
        fn = FURNITURE[kind][0]
        for _ in range(20):
            margin = 0.5
            if rng.chance(wall_bias):  # along a wall, facing the room
                side = rng.randint(0, 3)
                if side < 2:
                    x = lo[0] + margin if side == 0 else hi[0] - margin
                    z = rng.uniform(lo[2] + margin, hi[2] - margin)
                    yaw = math.pi / 2 if side == 0 else -math.pi / 2
                else:
                    z = lo[2] + margin if side == 2 else hi[2] - margin
                    x = rng.uniform(lo[0] + margin, hi[0] - margin)
                    yaw = 0.0 if side == 2 else math.pi
            else:
                x, z = rng.uniform(lo[0] + margin, hi[0] - margin), rng.uniform(lo[2] + margin, hi[2] - margin)
                yaw = rng.uniform(0, 2 * math.pi)
            if avoid is not None and avoid(x, z):
                continue
            if fp.free(x, z, 0.45):
                o, r = fn(b, rng, x, z, yaw, room_h)
                fp.add(x, z, r)
                break


def _wall_art(b: SceneBuilder, rng: Rng, lo, hi) -> None:
    """Paintings: thin boxes on the walls."""
    for _ in range(rng.randint(0, 3)):
        side = rng.randint(0, 3)
        w, h = rng.uniform(0.4, 1.4), rng.uniform(0.3, 1.0)
        y = -rng.uniform(1.2, min(2.0, hi[1] - lo[1] - 0.6))
        m = mat_random_surface(b, rng, rng.hsv((0, 1), (0.4, 0.9), (0.3, 0.9)))
        o = b.new_object()
        if side < 2:
            x = lo[0] + 0.02 if side == 0 else hi[0] - 0.02
            z = rng.uniform(lo[2] + w, hi[2] - w)
            b.box(o, (x, y, z), (0.02, h / 2, w / 2), m)
        else:
            z = lo[2] + 0.02 if side == 2 else hi[2] - 0.02
            x = rng.uniform(lo[0] + w, hi[0] - w)
            b.box(o, (x, y, z), (w / 2, h / 2, 0.02), m)


def indoor(seed: int, rng: Rng) -> tuple[SceneBuilder, CameraProposal]:
    """An indoor world (a main room and adjoining rooms) and its input-camera proposal."""
    b = SceneBuilder("indoor", seed)
    W, D, H = rng.uniform(4.5, 8.0), rng.uniform(6.0, 9.5), rng.uniform(2.7, 3.6)
    wt = rng.uniform(0.15, 0.3)  # wall thickness between rooms
    eps = 0.01
    lo_a, hi_a = (-W / 2, -H, 0.0), (W / 2, 0.0, D)
    # Boxes are added main room, door, room, door, room, ... so that walking the union from the main
    # room usually converges in one pass (see raycast._rooms).
    b.room(lo_a, hi_a, *_room_materials(b, rng))
    rooms = [(lo_a, hi_a)]
    door_mat = mat_noise(b, rng, rng.jitter((0.8, 0.78, 0.74), 0.1), noise=0.05)
    # room behind the far wall, seen through a doorway
    Wb, Db, Hb = rng.uniform(3.5, 8), rng.uniform(3, 7), rng.uniform(2.6, 3.6)
    xb = rng.uniform(-W / 2 + 1.0, W / 2 - 1.0)
    lo_b, hi_b = (xb - Wb / 2, -Hb, D + wt), (xb + Wb / 2, 0.0, D + wt + Db)
    ov_lo, ov_hi = max(lo_a[0], lo_b[0]) + 0.1, min(hi_a[0], hi_b[0]) - 0.1
    dw = min(rng.uniform(0.9, 2.4), ov_hi - ov_lo)
    dx = rng.uniform(ov_lo + dw / 2, ov_hi - dw / 2)
    dh = min(rng.uniform(2.0, 2.5), H - 0.2, Hb - 0.2)
    b.room((dx - dw / 2, -dh, D - eps), (dx + dw / 2, 0.0, D + wt + eps), door_mat, door_mat, door_mat)
    b.room(lo_b, hi_b, *_room_materials(b, rng))
    rooms.append((lo_b, hi_b))
    doors = [(dx, D)]
    # side rooms
    for side in (-1, 1):
        if not rng.chance(0.55):
            continue
        Ws, Ds, Hs = rng.uniform(3, 6), rng.uniform(3, 7), rng.uniform(2.6, 3.5)
        zc = rng.uniform(1.5 + Ds / 4, D - 0.5)
        x0 = W / 2 + wt if side > 0 else -W / 2 - wt - Ws
        lo_s, hi_s = (x0, -Hs, zc - Ds / 2), (x0 + Ws, 0.0, zc + Ds / 2)
        zlo, zhi = max(lo_s[2], 0.0) + 0.1, min(hi_s[2], D) - 0.1
        if zhi - zlo < 1.0:
            continue  # no room for a doorway: no side room
        dw = min(rng.uniform(0.9, 2.0), zhi - zlo)
        dz = rng.uniform(zlo + dw / 2, zhi - dw / 2)
        dh = min(rng.uniform(2.0, 2.4), H - 0.2, Hs - 0.2)
        xa = W / 2 - eps if side > 0 else -W / 2 - wt - eps
        b.room((xa, -dh, dz - dw / 2), (xa + wt + 2 * eps, 0.0, dz + dw / 2), door_mat, door_mat, door_mat)
        doors.append((W / 2 * side, dz))
        b.room(lo_s, hi_s, *_room_materials(b, rng))
        rooms.append((lo_s, hi_s))
    # camera in the main room looking roughly towards the far wall
    cam_z = rng.uniform(0.3, 0.42) * D
    cam_x = rng.uniform(-W / 4, W / 4)
    target_x = doors[0][0] if rng.chance(0.6) else rng.uniform(-W / 3, W / 3)
    yaw = math.atan2(target_x - cam_x, D - cam_z) + rng.uniform(-0.35, 0.35)
    cam = CameraProposal((cam_x, -rng.uniform(1.2, 1.7), cam_z), yaw, math.radians(rng.uniform(-14, 2)))
    eye, fwd = cam.eye, cam.forward()
    _sky_and_light(b, rng, eye, fwd, outdoor=False)
    # shadow map covers the whole flat; one point light per room near its ceiling
    all_lo = [min(r[0][k] for r in rooms) for k in range(3)]
    all_hi = [max(r[1][k] for r in rooms) for k in range(3)]
    centre = [(a + c) / 2 for a, c in zip(all_lo, all_hi, strict=True)]
    b.light[20:25] = [centre[0], 0.0, centre[2], max(all_hi[0] - all_lo[0], all_hi[2] - all_lo[2]) / 2 + 1.0, 30.0]
    for lo, hi in rooms:
        col = rng.jitter((1.0, 0.9, 0.75), 0.1)
        strength = rng.uniform(0.35, 0.7)
        pos = (rng.uniform(lo[0] + 0.5, hi[0] - 0.5), lo[1] + 0.3, rng.uniform(lo[2] + 0.5, hi[2] - 0.5))
        b.point_light(pos, tuple(strength * c for c in col), rng.uniform(2.0, 4.0),
                      tuple(v - wt for v in lo), tuple(v + wt for v in hi))
    fp = Footprints()
    fp.add(cam_x, cam_z, 0.6)
    # keep a corridor behind the camera free (zoom-out moves backwards)
    def behind(x: float, z: float) -> bool:
        rel_x, rel_z = x - cam_x, z - cam_z
        along = rel_x * math.sin(yaw) + rel_z * math.cos(yaw)
        across = abs(rel_x * math.cos(yaw) - rel_z * math.sin(yaw))
        return along < 0.3 and across < 1.0
    # focus object ahead
    fd = rng.uniform(2.2, 4.5)
    fx, fz = cam_x + fd * math.sin(yaw) + rng.uniform(-0.3, 0.3), cam_z + fd * math.cos(yaw)
    if lo_a[0] + 0.6 < fx < hi_a[0] - 0.6 and fz < D - 0.6:
        kind = rng.choice(["table", "sculpture", "shelf", "sofa", "crates", "plant", "column"], [3, 2, 1, 1, 1, 1, 0.5])
        o, r = FURNITURE[kind][0](b, rng, fx, fz, rng.uniform(0, 2 * math.pi), H)
        fp.add(fx, fz, r)
    _furnish(b, rng, fp, lo_a, hi_a, rng.randint(5, 10), avoid=behind)
    _wall_art(b, rng, lo_a, hi_a)
    for lo, hi in rooms[1:]:
        _furnish(b, rng, fp, lo, hi, rng.randint(2, 5))
        _wall_art(b, rng, lo, hi)
    return b, cam


GENERATORS = {"indoor": indoor, "outdoor": outdoor}
