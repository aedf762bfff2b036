"""The photo style of the worlds: what :func:`dress` changes in a classic world before it is built.

``style="photo"`` (:func:`lyra.world.sample.sample_world`) keeps a seed's classic layout and input-camera proposal
and then, from its own random stream (the classic draws are untouched):

* **Materials**: colours become linear (``c^2.2``: the classic colours are display values), every material's
  albedo is scaled log-uniformly in [0.5, 1.6] (darker and brighter surfaces than the classic range), about half
  of them take a real photograph as texture (``PAT_PHOTO``, :mod:`lyra.world.photo_textures`: ground and floors
  from the bank's ground crops, room walls from the wall and rock crops, objects from any, facades outdoors
  only), some objects become glossy (varnish, plastic: ``F0`` 0.03–0.08) or metallic (``F0`` 0.5–0.9, dark
  diffuse), some floors polished (``F0`` 0.04).
* **Light** (high dynamic range, :mod:`lyra.world.photo_light`): linear sky and ambient colours, a sun 2.5–5×
  brighter than the classic one against the sky, a sky 1–2× brighter (outdoors), a sun disc 50–200× the sky,
  a sun of angular radius 0.3°–3.4° outdoors (soft shadows; 3.4°–11° indoors, where the key light stands for
  windows), one-bounce indirect light and sky visibility (ambient occlusion). Half the outdoor worlds take a
  **photographed HDR sky** (:func:`lyra.world.photo_textures.image_sky`, turned to the world's sun azimuth; the
  key light, ambient and haze follow the photo).
* **Content**: thin structures and glass — outdoors fences, poles with wires, signs, glass panels in thin frames
  and mirror-like spheres; indoors glass tables on thin legs, open shelves of thin boards and thin floor lamps.

The camera of a photo-style example (:mod:`lyra.world.camera_model`) is drawn by :func:`photo_camera`.
"""

from __future__ import annotations

import math

import torch

from lyra.seeds import mix_seed
from lyra.world import textures as T
from lyra.world.camera_model import LUMA, PhotoCamera, draw_camera
from lyra.world.families import CameraProposal, Rng
from lyra.world.photo_textures import sky_infos, texture_ids
from lyra.world.scene import KIND_BOX, KIND_CONE, LIGHT_DIM, SceneBuilder, rot_y

#: Stream tags mixed with the world seed (never equal to a classic stream).
_DRESS_TAG, _CAMERA_TAG = 0x50484F54, 0x43414D52


def _lin(c) -> list[float]:
    return [max(0.0, float(v)) ** 2.2 for v in c]


def _luma(c) -> float:
    return sum(w * v for w, v in zip(LUMA, c, strict=True))


def _rot_to(d) -> torch.Tensor:
    """A rotation whose local +y axis is the unit vector ``d`` (for cylinders along ``d``)."""
    y = torch.nn.functional.normalize(torch.tensor(d, dtype=torch.float32), dim=0)
    ref = torch.tensor([1.0, 0.0, 0.0]) if abs(float(y[0])) < 0.9 else torch.tensor([0.0, 0.0, 1.0])
    x = torch.nn.functional.normalize(torch.linalg.cross(y, ref), dim=0)
    z = torch.linalg.cross(x, y)
    return torch.stack([x, y, z], 1)


# ---------------------------------------------------------------------------------------- materials
def _restyle_materials(b: SceneBuilder, rng: Rng, outdoor: bool) -> None:
    ground = {p["mat"] for p in b.planes} | {r["mat"][0] for r in b.rooms}
    walls = {r["mat"][2] for r in b.rooms}
    objects = {p["mat"] for p in b.prims}
    ground_tex, wall_tex = texture_ids("ground"), texture_ids("wall") + texture_ids("rock")
    any_tex = [i for i in texture_ids() if outdoor or i not in texture_ids("facade")]  # no facades indoors
    for i, row in enumerate(b.materials):
        row[0:3], row[3:6] = _lin(row[0:3]), _lin(row[3:6])
        if row[15] > 0:  # emissive (lamp shades, glowing bulbs): keep
            continue
        gain = rng.loguniform(0.5, 1.6)
        row[0:3] = [min(0.9, c * gain) for c in row[0:3]]
        row[3:6] = [min(0.9, c * gain) for c in row[3:6]]
        is_ground, is_wall = i in ground, i in walls
        if rng.chance(0.6 if (is_ground or is_wall) else 0.45):
            pool = ground_tex if is_ground else wall_tex if is_wall else any_tex
            level = max(0.02, _luma(row[0:3]))
            tint = rng.uniform(0.0, 0.5)  # 0: the photo's own colour, 1: the classic colour
            col = [level * (1 - tint) + c * tint for c in row[0:3]]
            size = rng.uniform(1.0, 4.0) if is_ground else rng.uniform(0.6, 2.5)
            row[0:3] = col
            row[6], row[7] = float(T.PAT_PHOTO), 1.0 / size
            row[8] = rng.uniform(0.0, 0.15)
            row[18] = float(rng.choice(pool))
        if i in objects and not is_ground and not is_wall:
            r = rng.uniform()
            if r < 0.1:  # metal
                row[16], row[17] = rng.uniform(0.5, 0.9), rng.loguniform(30, 400)
                row[0:3] = [0.35 * c for c in row[0:3]]
            elif r < 0.35:  # varnish, plastic
                row[16], row[17] = rng.uniform(0.03, 0.08), rng.loguniform(10, 200)
        elif is_ground and not outdoor and rng.chance(0.4):  # polished floor
            row[16], row[17] = 0.04, rng.loguniform(40, 300)


def _restyle_light(b: SceneBuilder, rng: Rng, outdoor: bool) -> None:
    sky, light = b.sky, b.light
    zen, hor = _lin(sky[0:3]), _lin(sky[3:6])
    sky[0:3], sky[3:6], sky[6:9] = zen, hor, _lin(sky[6:9])
    sky[12] = rng.loguniform(0.005, 0.06) if outdoor else rng.uniform(0.06, 0.2)
    sun_gain = rng.uniform(2.5, 5.0) if outdoor else rng.uniform(1.5, 3.0)
    light[3:6] = [sun_gain * c for c in _lin(light[3:6])]
    if outdoor:
        light[6:9] = [rng.uniform(0.6, 1.0) * c for c in zen]
        light[9:12] = [0.3 * c for c in hor]
    else:
        light[6:9] = [0.5 * c for c in _lin(light[6:9])]
        light[9:12] = [0.5 * c for c in _lin(light[9:12])]
    light[12:15] = hor
    light.extend([0.0] * (LIGHT_DIM - len(light)))
    rho = [_luma(m[0:3]) for m in b.materials if m[15] == 0] or [0.3]
    light[25] = 1.0
    light[26] = min(0.6, sum(rho) / len(rho))
    light[27] = rng.uniform(1.0, 2.0) if outdoor else 1.0
    light[28] = rng.loguniform(50, 200)
    light[29] = rng.uniform(0.7, 1.0)
    skies = sky_infos()
    if outdoor and skies and rng.chance(0.5):
        _image_sky(light, rng, skies, zen, hor)
    for pl in b.point_lights:
        pl[3:6] = [2.0 * c for c in pl[3:6]]


def _image_sky(light: list[float], rng: Rng, skies: list[dict], zen, hor) -> None:
    """Light an outdoor world by a photographed HDR sky: turned so that its sun stands at the world's sun azimuth,
    the key light raised to the photo's sun elevation (at least 10°), its colour the photo's sun colour and its
    strength falling with the photo's sun peak (a veiled sun is weaker), the sky scaled to the procedural sky's
    mean luminance (times the sky gain), the ambient and haze light taken from the photo."""
    i = rng.randint(0, len(skies) - 1)
    s = skies[i]
    az = math.atan2(light[0], light[2])
    el = max(math.radians(10.0), s["sun_elevation"])
    light[0:3] = [math.cos(el) * math.sin(az), -math.sin(el), math.cos(el) * math.cos(az)]
    strength = min(1.0, max(0.25, math.log10(max(s["peak"], 1.0)) / 4.5)) * max(light[3:6])
    light[3:6] = [strength * c for c in s["sun_rgb"]]
    gain = light[27] * _luma([(a + b) / 2 for a, b in zip(zen, hor, strict=True)]) / max(1e-3, _luma(s["mean_rgb"]))
    light[27] = gain
    light[6:9] = [0.8 * gain * c for c in s["mean_rgb"]]
    light[12:15] = list(s["horizon_rgb"])
    light[28] = 0.0  # the photo holds its own sun
    light[30] = float(i + 1)
    light[31] = 2 * math.pi * (s["sun_x"] + 0.5) / s["width"] - az


# ---------------------------------------------------------------------------------------- content
def _occupied(b: SceneBuilder) -> list[tuple[float, float, float]]:
    out = []
    for p in b.prims:
        s = p["size"]
        r = max(s[0], s[2]) if p["kind"] != KIND_BOX else math.hypot(s[0], s[2])
        if p["kind"] == KIND_CONE:
            r = max(s[0], s[2])
        out.append((p["center"][0], p["center"][2], r))
    return out


def _free_spot(b: SceneBuilder, rng: Rng, eye, yaw: float, r: float, dist: tuple[float, float], spread: float,
               box=None) -> tuple[float, float] | None:
    occ = _occupied(b)
    for _ in range(25):
        d, a = rng.loguniform(*dist), yaw + rng.uniform(-spread, spread)
        x, z = eye[0] + d * math.sin(a), eye[2] + d * math.cos(a)
        if box is not None and not (box[0] + r < x < box[3] - r and box[2] + r < z < box[5] - r):
            continue
        if all((x - ox) ** 2 + (z - oz) ** 2 > (r + orr + 0.15) ** 2 for ox, oz, orr in occ):
            return x, z
    return None


def _metal(b: SceneBuilder, rng: Rng) -> int:
    c = rng.uniform(0.02, 0.25)
    return b.material((c, c, c * 1.05), None, T.PAT_NOISE, 2.0, 0.05, 4.0, specular=rng.uniform(0.4, 0.9),
                      shininess=rng.loguniform(40, 400))


def _glass(b: SceneBuilder, rng: Rng) -> int:
    tint = rng.hsv((0.4, 0.6), (0.0, 0.3), (0.02, 0.08))
    return b.material(tint, None, T.PAT_NOISE, 1.0, 0.0, 1.0, specular=rng.uniform(0.05, 0.1),
                      shininess=rng.loguniform(300, 1500))


def _paint(b: SceneBuilder, rng: Rng) -> int:
    return b.material(_lin(rng.hsv((0, 1), (0.0, 0.8), (0.2, 0.9))), None, T.PAT_NOISE, 1.0, 0.05, 3.0,
                      specular=0.04, shininess=rng.loguniform(10, 100))


def fence(b: SceneBuilder, rng: Rng, x: float, z: float) -> None:
    """Thin posts and two rails along a line of 3–8 m."""
    o = b.new_object((x, 0.0, z))
    length, h, yaw = rng.uniform(3, 8), rng.uniform(0.9, 1.4), rng.uniform(0, math.pi)
    m = _paint(b, rng) if rng.chance(0.5) else _metal(b, rng)
    d = (math.cos(yaw), 0.0, -math.sin(yaw))
    n = max(2, int(length / rng.uniform(0.8, 1.6)) + 1)
    r = rng.uniform(0.02, 0.05)
    for k in range(n):
        t = -length / 2 + length * k / (n - 1)
        b.cone(o, (x + t * d[0], -h / 2, z + t * d[2]), r, h / 2, r, m)
    for y in (0.35 * h, 0.85 * h):
        b.box(o, (x, -y, z), (length / 2, 0.02, 0.012), m, rot=rot_y(yaw))


def poles_and_wires(b: SceneBuilder, rng: Rng, x: float, z: float) -> None:
    """Two poles 5–8 m high, 8–20 m apart, with 1–3 sagging-free wires (1–1.5 cm thick) between their tops."""
    o = b.new_object((x, 0.0, z))
    h, span, yaw = rng.uniform(5, 8), rng.uniform(8, 20), rng.uniform(0, math.pi)
    wood = b.material(_lin(rng.hsv((0.06, 0.1), (0.3, 0.5), (0.2, 0.4))), None, T.PAT_NOISE, 3.0, 0.2, 6.0)
    d = (math.cos(yaw), 0.0, -math.sin(yaw))
    ends = [(x - span / 2 * d[0], z - span / 2 * d[2]), (x + span / 2 * d[0], z + span / 2 * d[2])]
    for ex, ez in ends:
        b.cone(o, (ex, -h / 2, ez), 0.12, h / 2, 0.09, wood)
        b.box(o, (ex, -h + 0.3, ez), (0.04, 0.04, 0.6), wood, rot=rot_y(yaw))
    wire = _metal(b, rng)
    for k in range(rng.randint(1, 3)):
        off = (k - 1) * 0.5
        y = -h + 0.34
        b.cone(o, (x + off * -d[2], y, z + off * d[0]), 0.007, span / 2, 0.007, wire, rot=_rot_to(d))


def sign(b: SceneBuilder, rng: Rng, x: float, z: float) -> None:
    """A thin pole with a metal sign plate."""
    o = b.new_object((x, 0.0, z))
    h = rng.uniform(2.0, 2.8)
    m = _metal(b, rng)
    b.cone(o, (x, -h / 2, z), 0.03, h / 2, 0.03, m)
    plate = b.material(_lin(rng.hsv((0, 1), (0.5, 0.9), (0.4, 0.9))), (0.9, 0.9, 0.9), T.PAT_STRIPES,
                       rng.uniform(2, 5), 0.05, 2.0, (1, 0, 0), specular=0.1, shininess=60.0)
    w, hh = rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.5)
    b.box(o, (x, -h + hh / 2, z), (w / 2, hh / 2, 0.01), plate, rot=rot_y(rng.uniform(0, math.pi)))


def glass_panel(b: SceneBuilder, rng: Rng, x: float, z: float) -> None:
    """A glass pane (bus-shelter wall) in a thin metal frame."""
    o = b.new_object((x, 0.0, z))
    w, h, yaw = rng.uniform(1.2, 2.5), rng.uniform(1.8, 2.4), rng.uniform(0, math.pi)
    R = rot_y(yaw)
    b.box(o, (x, -h / 2 - 0.05, z), (w / 2, h / 2, 0.01), _glass(b, rng), rot=R)
    m = _metal(b, rng)
    d = (math.cos(yaw), 0.0, -math.sin(yaw))
    for s in (-1, 1):
        b.cone(o, (x + s * (w / 2 + 0.03) * d[0], -(h + 0.1) / 2, z + s * (w / 2 + 0.03) * d[2]), 0.03,
               (h + 0.1) / 2, 0.03, m)
    b.box(o, (x, -h - 0.1, z), (w / 2 + 0.06, 0.03, 0.03), m, rot=R)


def mirror_ball(b: SceneBuilder, rng: Rng, x: float, z: float) -> None:
    """A polished metal sphere on a short plinth."""
    o = b.new_object((x, 0.0, z))
    r = rng.uniform(0.3, 0.8)
    stone = b.material(_lin((0.55, 0.53, 0.5)), None, T.PAT_NOISE, 2.0, 0.15, 3.0)
    b.box(o, (x, -0.25, z), (r, 0.25, r), stone)
    chrome = b.material((0.05, 0.05, 0.05), None, T.PAT_NOISE, 1.0, 0.0, 1.0, specular=rng.uniform(0.5, 0.8),
                        shininess=rng.loguniform(300, 2000))
    b.ellipsoid(o, (x, -0.5 - r, z), (r, r, r), chrome)


def glass_table(b: SceneBuilder, rng: Rng, x: float, z: float) -> None:
    """A glass top on four thin metal legs."""
    o = b.new_object((x, 0.0, z))
    w, d, h, yaw = rng.uniform(0.8, 1.6), rng.uniform(0.5, 0.9), rng.uniform(0.42, 0.78), rng.uniform(0, math.pi)
    R = rot_y(yaw)
    b.box(o, (x, -h, z), (w / 2, 0.008, d / 2), _glass(b, rng), rot=R)
    m = _metal(b, rng)
    for sx in (-1, 1):
        for sz in (-1, 1):
            off = R @ torch.tensor([sx * (w / 2 - 0.04), 0.0, sz * (d / 2 - 0.04)])
            b.cone(o, (x + float(off[0]), -(h - 0.01) / 2, z + float(off[2])), 0.012, (h - 0.01) / 2, 0.012, m)


def open_shelf(b: SceneBuilder, rng: Rng, x: float, z: float) -> None:
    """Four thin uprights and 3–5 thin boards."""
    o = b.new_object((x, 0.0, z))
    w, d, h, yaw = rng.uniform(0.6, 1.2), rng.uniform(0.3, 0.45), rng.uniform(1.2, 2.0), rng.uniform(0, math.pi)
    R = rot_y(yaw)
    m = _metal(b, rng)
    wood = b.material(_lin(rng.hsv((0.05, 0.1), (0.3, 0.6), (0.3, 0.7))), None, T.PAT_STRIPES, 12.0, 0.2, 6.0,
                      (1, 0, 0.1), specular=0.04, shininess=30.0)
    for sx in (-1, 1):
        for sz in (-1, 1):
            off = R @ torch.tensor([sx * w / 2, 0.0, sz * d / 2])
            b.cone(o, (x + float(off[0]), -h / 2, z + float(off[2])), 0.01, h / 2, 0.01, m)
    n = rng.randint(3, 5)
    for k in range(n):
        y = 0.1 + (h - 0.15) * k / (n - 1)
        b.box(o, (x, -y, z), (w / 2, 0.012, d / 2), wood, rot=R)


def floor_lamp(b: SceneBuilder, rng: Rng, x: float, z: float) -> None:
    """A thin pole, a small base and a glowing shade."""
    o = b.new_object((x, 0.0, z))
    h = rng.uniform(1.4, 1.9)
    m = _metal(b, rng)
    b.cone(o, (x, -0.01, z), 0.14, 0.01, 0.14, m)
    b.cone(o, (x, -h / 2, z), 0.01, h / 2, 0.01, m)
    shade = b.material(_lin(rng.hsv((0.08, 0.14), (0.1, 0.4), (0.8, 1.0))), None, T.PAT_NOISE, 1.0, 0.05, 3.0,
                       emission=1.5)
    b.cone(o, (x, -h - 0.1, z), 0.2, 0.12, 0.12, shade)


OUTDOOR_EXTRAS = {"fence": (fence, 2.5, 3.0), "wires": (poles_and_wires, 1.0, 1.0), "sign": (sign, 0.4, 1.5),
                  "glass": (glass_panel, 1.3, 1.5), "ball": (mirror_ball, 0.9, 1.0)}
INDOOR_EXTRAS = {"glass_table": (glass_table, 0.8, 2.0), "shelf": (open_shelf, 0.7, 1.5),
                 "lamp": (floor_lamp, 0.3, 1.0)}


def _add_content(b: SceneBuilder, rng: Rng, cam: CameraProposal, outdoor: bool) -> None:
    table = OUTDOOR_EXTRAS if outdoor else INDOOR_EXTRAS
    names = list(table)
    weights = [table[n][2] for n in names]
    box = None if outdoor else b.rooms[0]["box"]
    for _ in range(rng.randint(2, 5) if outdoor else rng.randint(1, 3)):
        fn, r, _ = table[rng.choice(names, weights)]
        dist = (3.0, 25.0) if outdoor else (1.2, 6.0)
        spot = _free_spot(b, rng, cam.eye, cam.yaw, r, dist, math.radians(50), box)
        if spot is not None:
            fn(b, rng, spot[0], spot[1])


def dress(b: SceneBuilder, seed: int, attempt: int, cam: CameraProposal) -> None:
    """Turn the classic world being built in ``b`` into its photo-style version (see the module doc), drawing
    from a stream of its own (``seed``, ``attempt``: the placement attempt of :func:`sample_world`)."""
    rng = Rng(mix_seed(seed, attempt, _DRESS_TAG))
    outdoor = b.family == "outdoor"
    _restyle_materials(b, rng, outdoor)  # the classic materials (the new objects' are linear already)
    _add_content(b, rng, cam, outdoor)
    _restyle_light(b, rng, outdoor)


def photo_camera(seed: int, center_depth: float) -> PhotoCamera:
    """The camera of the photo-style example of world ``seed`` (focus near its centre depth)."""
    return draw_camera(mix_seed(seed, _CAMERA_TAG), center_depth)
